"""The generations view (analysis/generations.py, present/generations.py, `gwbench generations`):
spec, measured and published figures kept apart and named; measured figures at the statistic
asked for, per joule from trusted windows only; ratios measured only where both sides were; the
terminal's tables fit its width; bad input is one line and exit 2."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from harness.analysis.generations import LINEUP, runs_from, view
from harness.cli import main
from harness.core.errors import UsageError
from harness.present import generations as render
from tests.conftest import built_row, gemm_row, write_run_folder

H100 = {"name": "NVIDIA H100 80GB HBM3", "backend": "cuda", "count": 1}
H200 = {"name": "NVIDIA H200", "backend": "cuda", "count": 1}
CPU = {"name": "AMD EPYC", "backend": "cpu", "count": 1}


def _gemm_mean_below_median(median_tflops: float, n: int = 8192, **kw) -> dict:
    """A bf16 GEMM row whose mean time is 1.25x its median: TFLOP/s at the mean = 0.8 x median."""
    flop = 2 * n ** 3
    t = flop / (median_tflops * 1e12)
    return built_row("gemm", "matmul", "bf16", {"m": n, "n": n, "k": n, "data": "randn"}, flop=flop,
                     time_s=t, samples_s=[t] * 30 + [2 * t] * 10, **kw)


def _rows(name: str, tflops: float, power_w: float | None = None, window_s: float = 2.0) -> tuple:
    rows = [_gemm_mean_below_median(tflops, power_w=power_w, window_s=window_s),
            gemm_row(tflops / 2, n=4096), gemm_row(None, dtype="fp8", n=4096, error="fp8 needs a GPU")]
    return (name, {"run_id": name, "device": H200 if "h200" in name else H100}, rows)


def _row(v: dict, key: str) -> dict:
    return next(r for r in v["rows"] if r["key"] == key)


def test_spec_and_published_only_every_generation_marked():
    v = view()
    assert [r["key"] for r in v["rows"]] == [k for line in LINEUP for k in line]
    h100, v100, rubin = _row(v, "h100"), _row(v, "v100"), _row(v, "rubin")
    assert h100["spec"]["bf16_tflops"]["value"] == 989 and "REF" in h100["spec"]["bf16_tflops"]["source"]
    assert h100["published"]["gemm_bf16"]["value"] == 794.5 and h100["published"]["gemm_bf16"]["tool"] == "mamf-finder"
    assert h100["published"]["gemm_bf16"]["share_of_peak"] == pytest.approx(794.5 / 989)
    assert all(m is None for r in v["rows"] for m in r["measured"].values())  # nothing measured, nothing shown
    assert v100["spec"]["bf16_tflops"] is None and v100["spec"]["train_dtype"] == "fp16"
    assert h100["spec"]["tflop_per_j"]["value"] == pytest.approx(989 / 700)
    assert rubin["spec"]["tflop_per_j"] is None  # no published TDP: nothing invented
    # A ratio uses one kind of figure on both sides: published where both have one, else spec.
    assert h100["vs_previous"]["gemm_bf16"] == {"value": pytest.approx(794.5 / 271.2), "basis": "published"}
    assert rubin["vs_previous"]["gemm_bf16"] == {"value": pytest.approx(4000 / 2500), "basis": "spec"}
    assert _row(v, "a100")["vs_previous"]["gemm_bf16"]["note"] == "bf16 vs fp16"
    assert _row(v, "mi300x")["previous"] is None and _row(v, "mi355x")["previous"] == "mi300x"
    p = h100["projection"]
    assert p["accelerators_1gw"] > 0 and p["flop_per_year_10gw"] == pytest.approx(10 * p["flop_per_year_1gw"])


def test_measured_figures_name_statistic_run_and_case():
    runs = [_rows("h200-gemm", 800.0, power_w=700.0), ("cpu-x", {"run_id": "c", "device": CPU}, [gemm_row(1.0)])]
    v = view(runs)
    m = _row(v, "h200")["measured"]
    g = m["gemm_bf16"]
    assert g["value"] == pytest.approx(0.8 * 800.0) and g["statistic"] == "mean"  # mamf-finder's statistic
    assert g["run"] == "h200-gemm" and g["case"] == "8192×8192×8192" and g["share_of_peak"] == pytest.approx(640 / 989)
    assert view(runs, statistic="median")["rows"][3]["measured"]["gemm_bf16"]["value"] == pytest.approx(800.0)
    assert m["tflop_per_j"]["value"] == pytest.approx(800.0 / 700.0)  # median TFLOP/s over trusted W
    assert m["gemm_fp8"] is None  # a skipped row measures nothing
    assert v["not_placed"] == [{"run": "cpu-x", "device": "AMD EPYC", "why": "a CPU run"}]
    # H200 measured, H100 not: the ratio stays published over published.
    assert _row(v, "h200")["vs_previous"]["gemm_bf16"]["basis"] == "published"
    with pytest.raises(UsageError):
        view(runs, statistic="p99")


def test_short_power_window_gives_no_per_joule_and_both_measured_gives_a_measured_ratio():
    v = view([_rows("h200-short", 800.0, power_w=1200.0, window_s=0.1), _rows("h100-a", 600.0, power_w=650.0)])
    assert _row(v, "h200")["measured"]["tflop_per_j"] is None  # a 0.1 s window is not trusted
    ratio = _row(v, "h200")["vs_previous"]
    assert ratio["gemm_bf16"] == {"value": pytest.approx(800.0 / 600.0), "basis": "measured"}
    assert ratio["per_watt"]["basis"] == "spec"  # measured on one side only


def test_renderings_mark_sources_and_fit_the_terminal():
    v = view([_rows("h200-gemm", 800.0, power_w=700.0)])
    md = render.render_md(v)
    assert "bf16 GEMM measured here (mean)" in md and "bf16 GEMM published" in md and "bf16 spec" in md
    assert "640 (65%)~ [1]" in md and "[1] h200-gemm" in md and "[a] mamf-finder" in md
    for width in (80, 100, 160):
        buf = io.StringIO()
        render.print_text(v, Console(file=buf, width=width, force_terminal=False, color_system=None))
        lines = buf.getvalue().splitlines()
        assert max(len(line) for line in lines) <= width, width
        assert any("[1]" in line for line in lines) and any("[a]" in line for line in lines)  # not eaten as markup
    html = render.render_html(v)
    assert 'class="measured"' in html and 'class="published"' in html and 'class="spec"' in html
    assert json.loads(render.render_json(v))["kind"] == "gwbench.generations_view"


def test_html_escapes_a_planted_folder_name():
    evil = "<img src=x onerror=alert(1)>"
    html = render.render_html_body(view([_rows(evil, 800.0)]), {evil: "runs/x.html"})
    assert evil not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_command_reads_run_folders_and_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    name, meta, rows = _rows("h200-gemm", 800.0)
    write_run_folder(tmp_path / "res" / "h200-gemm", rows, H200)
    (tmp_path / "res" / "notes").mkdir()  # not a run: ignored inside a results folder
    assert [label for label, _, _ in runs_from([tmp_path / "res"])] == ["h200-gemm"]
    assert main(["generations", str(tmp_path / "res"), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"][0]["run"] == "h200-gemm" and _row(out, "h200")["measured"]["gemm_bf16"]["run"] == "h200-gemm"
    for bad, why in ((tmp_path / "res" / "notes", "not a gwbench run folder"), (tmp_path / "missing", "no such run folder")):
        assert main(["generations", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and why in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:  # argparse's own refusal, one line
        main(["generations", "--statistic", "p99"])
    assert exc.value.code == 2 and capsys.readouterr().err.count("\n") == 1
