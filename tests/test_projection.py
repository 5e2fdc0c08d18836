"""The gigawatt projection: units, the chain, calibration against public runs, the measured-run
rule, Monte Carlo determinism and speed, bad input, and the end-of-run summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis import projection as P
from harness.core import specs
from harness.core.errors import UsageError
from harness.present.projection import render_generations
from harness.present.tables import fmt_value
from tests.conftest import built_row, project_cli, write_run_folder
from tests.conftest import gemm_row as conftest_gemm_row




def gemm_row(tflops, power_w=690.0, dtype="bf16", status="ok", n=8192, **kw):
    """A square GEMM row from the real builder, power read over a trusted (2 s) window."""
    if status != "ok":
        return built_row("gemm", "matmul", dtype, {"m": n, "n": n, "k": n, "data": "randn"},
                         status=status)
    return conftest_gemm_row(tflops, dtype=dtype, n=n, power_w=power_w, **kw)


@pytest.fixture
def make_run(tmp_path):
    """A run folder as the runner writes it (the real store): run.json + rows.jsonl."""
    def make(rows, name="NVIDIA H200", backend="cuda", rows_file=True):
        run_dir = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        write_run_folder(run_dir, rows, {"backend": backend, "name": name, "count": 1})
        if not rows_file:
            (run_dir / "rows.jsonl").unlink()
        return run_dir
    return make


@pytest.fixture(scope="module")
def table():
    return specs.load()


def point(result, key, site=0):
    return result["sites"][site]["outputs"][key]["point"]


# ---------------------------------------------------------------- units


@pytest.mark.parametrize("text, watts", [("1GW", 1e9), ("500MW", 5e8), ("750kW", 7.5e5), ("1e9", 1e9),
                                         ("1.5 GW", 1.5e9), ("10gw", 1e10), ("2500W", 2500.0), (3e9, 3e9)])
def test_parse_power(text, watts):
    assert P.parse_power(text) == pytest.approx(watts)


@pytest.mark.parametrize("text", ["0", "0GW", "-1GW", "abc", "1XW", "nan", "inf", "", "1 G W"])
def test_parse_power_rejects_bad_input(text):
    with pytest.raises(UsageError, match="power must be positive"):
        P.parse_power(text)


@given(st.floats(min_value=1e-3, max_value=1e6), st.sampled_from([("kW", 1e3), ("MW", 1e6), ("GW", 1e9)]))
def test_parse_power_round_trips(value, unit):
    assert P.parse_power(f"{value!r}{unit[0]}") == pytest.approx(value * unit[1])


def test_parse_range():
    assert P.parse_range("0.45", "mfu") == P.Range.fixed(0.45, "set on the command line")
    r = P.parse_range("0.3:0.4:0.5", "mfu")
    assert (r.low, r.mode, r.high) == (0.3, 0.4, 0.5)
    with pytest.raises(UsageError, match="LOW:MODE:HIGH"):
        P.parse_range("0.3:0.4", "mfu")


# ---------------------------------------------------------------- the chain


def test_chain_is_the_published_formula():
    out = P.chain(peak_tflops=1000, mfu=0.5, goodput=0.8, pue=1.25, node_w=1900, network_w=100,
                  days=10, facility_w=1e9, gpus_per_system=8)
    assert out["it_mw"] == pytest.approx(800)  # 1 GW / 1.25
    assert out["accelerators"] == pytest.approx(400_000)  # 800 MW / 2 kW
    assert out["systems"] == pytest.approx(50_000)
    eff = 400_000 * 1000e12 * 0.5 * 0.8
    assert out["effective_eflops"] == pytest.approx(eff / 1e18)
    assert out["run_flop"] == pytest.approx(eff * 10 * 86400)
    assert out["flop_per_joule"] == pytest.approx(eff / 1e9)
    assert out["energy_twh_per_year"] == pytest.approx(8.76)
    n = out["optimal_params"]  # C = 6 N D with D = 20 N
    assert 6 * n * out["optimal_tokens"] == pytest.approx(out["run_flop"])
    assert out["llama3_405b_runs"] == pytest.approx(out["run_flop"] / 3.8e25)


def test_chain_broadcasts_over_samples():
    out = P.chain(peak_tflops=989, mfu=np.array([0.3, 0.4]), goodput=0.9, pue=np.array([1.1, 1.2]),
                  node_w=1275, network_w=50, days=1, facility_w=1e9)
    assert out["accelerators"].shape == (2,)


# ---------------------------------------------------------------- calibration (docs/sources.md)


def test_10gw_of_gb300_class_systems_is_a_few_million_accelerators(table):
    # Public statements (Jensen Huang, Sept 2025): 10 GW ~ 4-5 million GPUs.
    result = P.project(P.from_spec("GB300 NVL72", table), P.Assumptions(samples=20_000), sites_w=[1e10])
    acc = result["sites"][0]["outputs"]["accelerators"]
    assert 4e6 <= acc["point"] <= 5e6
    assert 4e6 <= acc["p50"] <= 5e6
    assert 2e6 <= acc["p5"] and acc["p95"] <= 6e6  # "a few million" across the whole range


def test_fixed_cluster_reproduces_llama31_405b(table):
    # 16,384 H100 at ~400 TFLOP/s each (Llama 3 Table 4); 3.8e25 FLOP implies ~67 days of
    # effective compute, so goodput is 1 for that implied duration.
    mfu = 400 / 989
    days = 3.8e25 / (16_384 * 400e12) / 86_400
    assert days == pytest.approx(67, abs=0.5)
    a = P.Assumptions(mfu=P.Range.fixed(mfu, "Llama 3"), goodput=P.Range.fixed(1.0, "implied"), days=days,
                      samples=1000)
    result = P.project(P.from_spec("h100", table), a, accelerators=16_384)
    assert point(result, "run_flop") == pytest.approx(3.8e25, rel=1e-6)
    assert point(result, "llama3_405b_runs") == pytest.approx(1.0, rel=1e-6)
    assert not result["sites"][0]["flags"]  # far below Epoch's 1e28


def test_fixed_cluster_defaults_match_llama31_gpu_hours(table):
    # Model card: 30.84M H100 GPU-hours for 3.8e25 FLOP. The default MFU x goodput over those
    # hours lands within 10%, and 3.8e25 sits inside the Monte Carlo p5-p95.
    days = 30.84e6 / 16_384 / 24
    a = P.Assumptions(days=days, samples=20_000)
    result = P.project(P.from_spec("h100", table), a, accelerators=16_384)
    out = result["sites"][0]["outputs"]["run_flop"]
    assert out["point"] == pytest.approx(3.8e25, rel=0.10)
    assert out["p5"] < 3.8e25 < out["p95"]


def test_scale_limit_is_flagged(table):
    result = P.project(P.from_spec("gb300", table), P.Assumptions(samples=1000))
    assert all(any("2411.01137" in f for f in s["flags"]) for s in result["sites"])  # 1e28+ per year-long run
    short = P.project(P.from_spec("h100", table), P.Assumptions(samples=1000, days=1))
    assert not any(s["flags"] for s in short["sites"])


# ---------------------------------------------------------------- Monte Carlo


def test_monte_carlo_is_deterministic_with_a_seed(table):
    basis = P.from_spec("h200", table)
    a = P.Assumptions(samples=5000, seed=7)
    assert P.project(basis, a) == P.project(basis, a)
    other = P.project(basis, P.Assumptions(samples=5000, seed=8))
    p50 = [r["sites"][0]["outputs"]["run_flop"]["p50"] for r in (other, P.project(basis, a))]
    assert p50[0] != p50[1]


def test_percentiles_are_ordered_and_bracket_the_point(table):
    result = P.project(P.from_spec("gb200", table), P.Assumptions(samples=20_000))
    for site in result["sites"]:
        for key, o in site["outputs"].items():
            assert o["p5"] <= o["p50"] <= o["p95"], key
            assert o["p5"] * 0.999 <= o["point"] <= o["p95"] * 1.001, key


def test_fixed_assumptions_collapse_the_range(table):
    fixed = {k: P.Range.fixed(v, "test") for k, v in (("pue", 1.2), ("mfu", 0.4), ("goodput", 0.9),
                                                       ("network_w", 50))}
    a = P.Assumptions(samples=100, **fixed)
    o = P.project(P.from_spec("h100", table), a)["sites"][0]["outputs"]["run_flop"]
    assert o["p5"] == pytest.approx(o["p95"]) == pytest.approx(o["point"])


# ---------------------------------------------------------------- sources (a), (b), (c)


def test_healthy_measured_node_matches_the_spec_projection(make_run, table):
    # GEMM exactly at mamf-finder's achievable and GPU at TDP: the measured projection must
    # equal the spec one (the MFU rule's reason to exist).
    run = make_run([gemm_row(794.5, power_w=700.0)])
    measured = P.project(P.from_run(run, table), P.Assumptions(samples=1000))
    spec = P.project(P.from_spec("h200", table), P.Assumptions(samples=1000))
    for key in ("accelerators", "run_flop", "sustained_tflops"):
        assert point(measured, key) == pytest.approx(point(spec, key))
    assert measured["basis"]["source"] == "measured"
    assert measured["basis"]["label"].startswith("measured: NVIDIA H200")


def test_mfu_scales_with_measured_over_reference_efficiency(make_run, table):
    run = make_run([gemm_row(0.9 * 794.5), gemm_row(500.0), gemm_row(900.0, dtype="fp8")])
    basis = P.from_run(run, table)
    e_meas, e_ref = 0.9 * 794.5 / 989, 794.5 / 989
    assert basis.measured["efficiency"] == pytest.approx(e_meas)
    assert basis.mfu_scale == pytest.approx(e_meas / e_ref) == pytest.approx(0.9)
    result = P.project(basis, P.Assumptions(samples=1000))
    assert point(result, "sustained_tflops") == pytest.approx(989 * 0.40 * 0.9)


def test_measured_power_uses_the_system_overhead_factor(make_run, table):
    basis = P.from_run(make_run([gemm_row(780.0, power_w=600.0)]), table)
    assert basis.node_w.mode == pytest.approx(600 * 1275 / 700)  # DGX H200: 10.2 kW / 8 / 700 W
    assert basis.sensor_error == P.SENSOR_ERROR


def test_run_without_power_falls_back_to_spec_power_and_says_so(make_run, table):
    run = make_run([gemm_row(780.0, power_w=None)])
    basis = P.from_run(run, table)
    assert "power not read" in basis.label and basis.sensor_error == 0
    assert basis.node_w.mode == pytest.approx(1275)
    with pytest.raises(UsageError, match="power was not read"):
        P.from_run(run, table, require_power=True)


def test_efficiency_carried_onto_another_generation(make_run, table):
    run = make_run([gemm_row(0.9 * 794.5)])
    basis = P.from_run(run, table, as_name="Rubin")
    assert basis.source == "carried" and "projection:" in basis.label and "not measured on" in basis.label
    assert basis.peak_tflops == 4000 and basis.mfu_scale == pytest.approx(0.9)
    assert basis.node_w.mode == pytest.approx(210_000 / 72)  # Rubin's system, not the H200 reading


def test_generation_without_mamf_figure_uses_h100_reference(make_run, table):
    run = make_run([gemm_row(1000.0, power_w=700.0)], name="AMD Instinct MI300X")
    basis = P.from_run(run, table)
    assert "H100" in basis.measured["reference_source"]
    assert basis.mfu_scale == pytest.approx((1000 / 1307.4) / (794.5 / 989))


@pytest.mark.parametrize("rows, kwargs, match", [
    ([gemm_row(780.0, dtype="fp16")], {}, "no ok bf16 GEMM rows"),
    ([gemm_row(780.0, status="failed")], {}, "no ok bf16 GEMM rows"),
    ([gemm_row(None)], {}, "no ok bf16 GEMM rows"),
    ([gemm_row(1500.0)], {}, "exceeds"),
])
def test_unusable_runs_are_usage_errors(make_run, table, rows, kwargs, match):
    with pytest.raises(UsageError, match=match):
        P.from_run(make_run(rows), table, **kwargs)


def test_cpu_and_unknown_devices_are_usage_errors(make_run, table):
    with pytest.raises(UsageError, match="CPU run"):
        P.from_run(make_run([gemm_row(1.0)], name="Intel(R) Xeon(R)", backend="cpu"), table)
    with pytest.raises(UsageError, match="unknown hardware"):
        P.from_run(make_run([gemm_row(100.0)], name="NVIDIA GeForce RTX 4090"), table)


# ---------------------------------------------------------------- generations


def test_generations_table(table):
    result = P.generations(table)
    rows = {r["key"]: r for r in result["rows"]}
    assert set(rows) == set(table.accelerators)
    assert rows["h100"]["vs_h100"] == pytest.approx(1.0)
    assert rows["h200"]["vs_h100"] == pytest.approx(1.0)  # same compute, same DGX power
    assert rows["b200"]["vs_h100"] > 1.4 and rows["a100"]["vs_h100"] < 1
    assert rows["v100"]["dtype"] == "fp16"  # no bf16 on Volta: labelled
    assert "skipped" in rows["rubin-ultra"]  # no published bf16 peak
    assert result["source"] == "spec" and "not measured" in result["label"]
    text = render_generations(result, "md")
    assert "| H100 SXM |" in text and "not shown: Rubin Ultra" in text
    assert rows["gb300"]["sites"][1]["above_scale_limit"] and "2411.01137" in text
    assert not rows["v100"]["sites"][0]["above_scale_limit"]


# ---------------------------------------------------------------- `gwbench project`


def test_project_command_formats(capsys):
    assert project_cli(["--hardware", "h100", "--samples", "1000", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["basis"]["source"] == "spec" and len(data["sites"]) == 2
    assert project_cli(["--hardware", "b200", "--power", "1GW,500MW", "--samples", "1000", "--format", "md"]) == 0
    md = capsys.readouterr().out
    assert "| accelerators | count |" in md and "500 MW p50" in md and "spec: B200" in md
    assert project_cli(["--generations", "--format", "text"]) == 0
    assert "GB300 (per GPU)" in capsys.readouterr().out


def test_project_command_fixed_cluster(capsys):
    argv = ["--hardware", "H100", "--accelerators", "16384", "--days", "67.1", "--mfu", str(400 / 989),
            "--goodput", "1", "--samples", "1000", "--format", "json"]
    assert project_cli(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["mode"] == "fixed-cluster"
    assert data["sites"][0]["outputs"]["run_flop"]["point"] == pytest.approx(3.8e25, rel=0.01)


def test_project_command_from_run(make_run, capsys):
    run = make_run([gemm_row(780.0)])
    assert project_cli(["--from", str(run), "--as", "gb300", "--samples", "1000"]) == 0
    assert "carried onto GB300" in capsys.readouterr().out


@pytest.mark.parametrize("argv, match", [
    (["--hardware", "h100", "--power", "0"], "power must be positive"),
    (["--hardware", "h100", "--power=-1GW"], "power must be positive"),
    (["--hardware", "h100", "--pue", "0.9"], "--pue must be >= 1"),
    (["--hardware", "h100", "--mfu", "1.2"], r"--mfu must be in \(0, 1\]"),
    (["--hardware", "h100", "--mfu", "0"], r"--mfu must be in \(0, 1\]"),
    (["--hardware", "h100", "--goodput", "0"], r"--goodput must be in \(0, 1\]"),
    (["--hardware", "h100", "--goodput", "1.5"], r"--goodput must be in \(0, 1\]"),
    (["--hardware", "h100", "--mfu", "0.5:0.4:0.6"], "low <= value <= high"),
    (["--hardware", "h100", "--days", "0"], "--days must be positive"),
    (["--hardware", "h100", "--accelerators", "0"], "--accelerators must be positive"),
    (["--hardware", "H1000"], "closest: H100 SXM"),
    (["--hardware", "h100", "--dtype", "fp4"], "H100 SXM has no fp4 peak"),
    (["--from", "/nonexistent/run"], "no such run folder"),
    (["--hardware", "h100", "--from", "/tmp"], "exactly one of"),
    ([], "exactly one of"),
    (["--hardware", "h100", "--as", "rubin"], "--as NAME needs --from"),
    (["--hardware", "h100", "--hardware-file", "/nonexistent.toml"], "not found"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, match):
    assert project_cli(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gwbench: error: ") and err.count("\n") == 1
    assert __import__("re").search(match, err), err


def test_run_without_bf16_gemm_rows_exits_2(make_run, capsys):
    run = make_run([built_row("memory", "copy", "fp32", {"n": 1 << 20}, nbytes=8 << 20)])
    assert project_cli(["--from", str(run)]) == 2
    assert "no ok bf16 GEMM rows" in capsys.readouterr().err


def test_malformed_hardware_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "hw.toml"
    bad.write_text('schema_version = 1\n[accelerators.x]\nname = "X"\n')
    assert project_cli(["--hardware", "x", "--hardware-file", str(bad)]) == 2
    assert "missing" in capsys.readouterr().err


# ---------------------------------------------------------------- end of `gwbench run`


def _project_run(run_dir):
    """What `gwbench run` does at its end: project, write projection.json/.md; the text written."""
    from harness.commands.run import write_projection
    from harness.core.store import RunStore

    assert write_projection(RunStore.open(run_dir)) is not None
    return (run_dir / "projection.md").read_text()


def test_project_run_measured(make_run):
    run = make_run([gemm_row(780.0), gemm_row(600.0, n=4096)])
    text = _project_run(run)
    assert "measured: NVIDIA H200" in text and "| accelerators | count |" in text
    assert "1 GW p50" in text and "10 GW p50" in text
    data = json.loads((run / "projection.json").read_text())
    assert data["basis"]["source"] == "measured"
    assert text.strip().startswith("- gwbench projection — measured")


@pytest.mark.parametrize("case", ["cpu", "unknown", "no_gemm", "no_power", "no_rows_file"])
def test_project_run_falls_back_to_spec_generations(make_run, case):
    kwargs = {"cpu": dict(rows=[], name="AMD EPYC 9654", backend="cpu"),
              "unknown": dict(rows=[gemm_row(100.0)], name="NVIDIA GeForce RTX 4090"),
              "no_gemm": dict(rows=[gemm_row(780.0, status="skipped")]),
              "no_power": dict(rows=[gemm_row(780.0, power_w=None)]),
              "no_rows_file": dict(rows=[], rows_file=False)}[case]
    run = make_run(**kwargs)
    text = _project_run(run)
    first = text.splitlines()[0]
    assert first.startswith("No measured projection (") and "spec-based" in first and "not measured" in first
    data = json.loads((run / "projection.json").read_text())
    assert data["source"] == "spec" and data["fallback_reason"]
    assert [r["key"] for r in data["rows"]] == list(P.REFERENCE_GENERATIONS)
    assert "| H100 SXM |" in text and "| Rubin (preliminary) |" in text


def test_format_value():
    assert fmt_value(4_330_000.4, "count") == "4,330,000"
    assert fmt_value(16_384.0, "count") == "16,384"
    assert fmt_value(1.2345e28) == "1.23e28"
    assert fmt_value(1925.4, "W") == "1,925"
    assert fmt_value(None) == "—"


def test_through_the_real_cli(capsys):
    from harness import cli

    assert cli.main(["project", "--hardware", "h100", "--mfu", "1.5"]) == 2
    assert capsys.readouterr().err.startswith("gwbench: error: --mfu must be in (0, 1]")
    assert cli.main(["specs", "NVIDIA B200", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["key"] == "b200"


def test_sustained_row_and_trusted_window_chosen_over_a_short_burst(make_run, table):
    """As on a real H200 run: a 0.1 s burst reads 779 TFLOP/s at a bogus 1148 W, the 5 s
    sustained power case 672 TFLOP/s at 696 W. The projection takes the sustained row."""
    burst = gemm_row(779.0, power_w=1148.0, window_s=0.1)
    steady = gemm_row(672.0, power_w=696.0, sustained=True, window_s=5.0, samples=400)
    assert burst["telemetry_short_window"] and not steady["telemetry_short_window"]
    basis = P.from_run(make_run([burst, steady]), table)
    assert basis.measured["best_tflops"] == pytest.approx(672.0) and basis.measured["best_sustained"] is True
    assert basis.measured["power_w"] == pytest.approx(696.0)
    assert "(sustained)" in basis.mfu_rule
    # Only short windows: no power is taken from them.
    basis = P.from_run(make_run([burst]), table)
    assert basis.measured["power_w"] is None and "power not read" in basis.label
