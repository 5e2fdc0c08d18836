"""Report pivots: golden Markdown, spec shares, noisy flags, every format's content, rows of an
unexpected shape never crash. Rows come from the real builder (tests/conftest.built_row)."""

from __future__ import annotations

import csv
import io
import json

import pytest

from harness.core.store import SCHEMA_VERSION, RunStore
from harness.present import report
from tests.conftest import built_row, gwbench
from tests.conftest import gemm_row as built_gemm

META = {"schema_version": SCHEMA_VERSION, "run_id": "r1", "status": "complete",
        "device": {"name": "NVIDIA H200", "backend": "cuda", "count": 1, "host": "h",
                   "driver_version": "580.1", "power_limit_w": 700,
                   "software": {"torch": "2.11", "torch_cuda": "13.0", "python": "3.12", "nccl": "2.27"}}}


def gemm(dtype, m, tflops, noisy=False, status="ok", power=None):
    if status != "ok":
        return built_row("gemm", "matmul", dtype, {"m": m, "n": m, "k": m, "data": "randn"}, status=status)
    return built_gemm(tflops, dtype=dtype, n=m, noisy=noisy, power_w=power)


GOLDEN = """### GEMM: TFLOP/s by shape (m×n×k) and dtype

| shape | bf16 | fp8 |
|---|---:|---:|
| 4096×4096×4096 | 742 (75%) 1.06/W | 1500 (76%)~ |
| 8192×8192×8192 | 791 (80%) | failed |"""


def test_gemm_pivot_golden():
    rows = [gemm("bf16", 4096, 742.0, power=700), gemm("fp8", 4096, 1500.0, noisy=True),
            gemm("bf16", 8192, 791.0), gemm("fp8", 8192, None, status="failed")]
    (pv,) = report.pivots(META, rows)["gemm"]
    assert report.pivot_md(pv) == GOLDEN


def test_header_has_system_and_legend():
    text = report.render(META, [gemm("bf16", 4096, 700.0)], "md")
    assert "NVIDIA H200 (cuda) × 1; spec entry H200" in text
    assert "torch 2.11, CUDA 13.0, cuDNN not recorded, NCCL 2.27, driver 580.1" in text and "limit 700 W" in text
    assert "git: not recorded" in text and "None" not in text
    assert "`~` noisy" in text and "projection:" in text


def _attention(backend, seq, tflops):
    flop = 4 * 2 * 8 * seq * seq * 128 // 2  # FlashAttention's causal forward count
    return built_row("attention", "fwd", "bf16", {"seq": seq, "head_dim": 128, "causal": True, "batch": 2,
                                                  "heads": 8, "kv_heads": 8},
                     backend=backend, flop=flop, time_s=flop / (tflops * 1e12))


def _measured_rows():
    n = 1 << 28
    return [
        _attention("sdpa-flash", 1024, 400.0), _attention("sdpa-math", 512, 100.0),
        built_row("collectives", "all_reduce", "bf16", {"size_bytes": 1 << 30, "placement": "in_place"},
                  backend="nccl", world_size=8, nbytes=1 << 30, time_s=(1 << 30) / 200e9,
                  extra={"size_bytes": 1 << 30, "algbw_gbps": 200.0, "busbw_gbps": 350.0}),
        built_row("memory", "triad", "fp32", {"n": n}, nbytes=3 * 4 * n, time_s=3 * 4 * n / 4000e9,
                  extra={"array_bytes": 4 * n}),
    ]


def test_other_families_pivot_and_missing_fields_skip():
    odd = [  # rows of an unexpected shape (another tool's, a hand-edited file): left out, no crash
        {"case_id": "x", "family": "attention", "op": "fwd", "status": "ok"},  # no seq
        {"case_id": "y", "family": "memory", "status": "failed"},  # nothing
        {"case_id": "z", "family": "newfamily", "status": "ok"},
    ]
    rows = _measured_rows() + odd
    pv = report.pivots(META, rows)
    att = report.pivot_md(pv["attention"][0])
    assert "| 512 |" in att and "| 1024 |" in att and "400 (40%)" in att
    coll = report.pivot_md(pv["collectives"][0])
    assert "| 1 GiB | 200 / 350 (78%) |" in coll and "all_reduce in-place" in coll
    mem = report.pivot_md(pv["memory"][0])
    assert "triad (torch)" in mem and "4000 (83%)" in mem
    # Every format renders the odd rows too, each with its own content.
    md = report.render(META, rows, "md")
    assert "## newfamily" in md and "### attention: all rows" in md
    html = report.render(META, rows, "html")
    assert html.startswith("<!DOCTYPE html>") and html.count("<table") >= 4
    table = list(csv.DictReader(io.StringIO(report.render(META, rows, "csv"))))
    assert [r["case_id"] for r in table] == [r["case_id"] for r in rows]
    assert table[2]["busbw_GB_per_s"] == "350.0" and table[3]["family"] == "memory"
    data = json.loads(report.render(META, rows, "json"))
    assert len(data["rows"]) == len(rows) and set(data["pivots"]) == {"attention", "collectives", "memory"}


def test_cpu_run_has_no_share_and_html_escapes():
    meta = json.loads(json.dumps(META))
    meta["device"].update(backend="cpu", name="<script>alert(1)</script>", host="<b>x</b>")
    text = report.render(meta, [gemm("bf16", 256, 0.5)], "html")
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count("<script>") == 1  # the page's own sorting script, allowed by its hash
    assert "(%" not in report.render(meta, [gemm("bf16", 256, 0.5)], "md")


def test_cli_formats_and_bad_format(tmp_path):
    store = RunStore.create(tmp_path, "r1", {k: v for k, v in META.items() if k not in ("schema_version", "run_id")})
    store.append(gemm("bf16", 4096, 742.0) | {"run_id": "r1"})
    out = {fmt: gwbench("report", str(store.dir), "--format", fmt) for fmt in ("md", "html", "csv", "json")}
    assert all(r.returncode == 0 for r in out.values()), [r.stderr for r in out.values()]
    assert "| 4096×4096×4096 | 742 (75%) |" in out["md"].stdout
    assert "742 (75%)" in out["html"].stdout and "<table class=\"pivot\">" in out["html"].stdout
    (row,) = csv.DictReader(io.StringIO(out["csv"].stdout))
    assert float(row["TFLOP_per_s"]) == 742.0 and row["p_m"] == "4096" and row["noisy"] == "false"
    assert json.loads(out["json"].stdout)["rows"][0]["tflops"] == 742.0
    bad = gwbench("report", str(store.dir), "--format", "pdf")
    assert bad.returncode == 2 and "unknown format 'pdf'" in bad.stderr


def test_per_watt_only_from_windows_long_enough_to_trust():
    from harness.present.report import _cell

    row = {"status": "ok", "tflops": 700.0, "power_w": 500.0, "tflops_per_w": 1.4, "noisy": False,
           "power_source": "nvml:energy_counter", "telemetry_short_window": False}
    assert _cell(row, 700.0, 989.0).per_w == 1.4
    assert _cell(dict(row, telemetry_short_window=True), 700.0, 989.0).per_w is None
    # A row without the flag (or its window) is judged from its window: none, so not trusted.
    assert _cell({k: v for k, v in row.items() if k != "telemetry_short_window"}, 700.0, 989.0).per_w is None


def _att_row(backend, tflops, seq=8192, heads=32, kv=32):
    flop = 4 * heads * seq * seq * 128
    return built_row("attention", "fwd", "bf16", {"seq": seq, "head_dim": 128, "causal": False,
                                                  "heads": heads, "kv_heads": kv, "batch": 1},
                     backend=backend, flop=flop, time_s=flop / (tflops * 1e12))


def test_attention_pivot_names_best_backend_and_keeps_gqa_apart():
    from harness.present.report import pivots

    rows = [_att_row("sdpa-flash", 347.0), _att_row("sdpa-cudnn", 602.0),
            _att_row("sdpa-flash", 500.0, heads=32, kv=8)]
    tables = pivots({}, rows)["attention"]
    assert len(tables) == 2  # GQA rows are their own table, not folded into MHA cells
    mha = next(t for t in tables if "GQA" not in t.title)
    assert mha.cells[(8192, "best")].text == "sdpa-cudnn"
    assert mha.cells[(8192, "sdpa-flash")].value == pytest.approx(347.0)


def test_spread_across_ranks_names_the_slowest_gpu():
    from harness.present.report import pivots

    from harness.core.row import tag_rank

    def gemm(rank, host, tflops):
        return tag_rank(built_gemm(tflops, n=8192), host, rank, rank % 2)

    rows = [gemm(0, "a", 700.0), gemm(1, "a", 665.0), gemm(2, "b", 690.0)]
    (sp,) = pivots({}, rows)["every GPU"]
    case_id = rows[0]["case_id"]
    assert sp.cells[(case_id, "GPUs")].text == "3"
    assert sp.cells[(case_id, "spread")].text == "5.0%"
    assert sp.cells[(case_id, "slowest")].text == "a rank 1 (local rank 1, its GPU on a CUDA run)"
    assert "every GPU" not in pivots({}, rows[:1])  # one rank: no spread table


def test_csv_is_typed_and_safe_in_a_spreadsheet():
    import pandas as pd

    rows = [gemm("bf16", 4096, 742.0, power=700), gemm("fp8", 4096, None, status="skipped"),
            built_row("gemm", "matmul", "bf16", {"m": 8, "n": 8, "k": 8, "data": "randn"}, status="failed",
                      error="=HYPERLINK(\"http://x\")")]
    text = report.render(META, rows, "csv")
    frame = pd.read_csv(io.StringIO(text))
    assert str(frame["n_samples"].dtype) in ("int64", "float64") and text.splitlines()[1].count(",40,") == 1
    first = next(csv.DictReader(io.StringIO(text)))
    assert first["n_samples"] == "40" and first["noisy"] == "false" and first["short_window"] == "false"
    assert float(first["TFLOP_per_J"]) == pytest.approx(742.0 / 700)  # a 2 s window: trusted
    assert float(first["time_stddev_s"]) == pytest.approx(0.0, abs=1e-15)
    assert "'=HYPERLINK" in text  # a formula stays text in a spreadsheet


def test_per_joule_only_from_trusted_windows():
    burst = gemm_row_short = built_gemm(700.0, n=4096, power_w=1100.0, window_s=0.1)
    assert gemm_row_short["telemetry_short_window"]
    first = next(csv.DictReader(io.StringIO(report.render(META, [burst], "csv"))))
    assert first["TFLOP_per_J"] == "" and first["short_window"] == "true"


def test_json_pivots_have_numbers_and_normalize():
    import pandas as pd

    rows = [gemm("bf16", 4096, 742.0, power=700), gemm("fp8", 4096, 1500.0, noisy=True)]
    data = json.loads(report.render(META, rows, "json"))
    (table,) = data["pivots"]["gemm"]
    cells = pd.DataFrame(table["cells"])
    bf16 = cells[cells["column"] == "bf16"].iloc[0]
    assert bf16["value"] == pytest.approx(742.0) and bf16["share_of_peak"] == pytest.approx(742 / 989)
    assert bool(cells[cells["column"] == "fp8"].iloc[0]["noisy"]) is True
    flat = pd.json_normalize(data["rows"])
    assert {"params.m", "extra.out_dtype", "check.ok"} <= set(flat.columns) or "params.m" in flat.columns


def test_python_api_loads_typed_frames(tmp_path):
    import harness
    from tests.conftest import write_run_folder

    rows = [gemm("bf16", 4096, 742.0, power=700), gemm("fp8", 4096, None, status="skipped")]
    write_run_folder(tmp_path / "a", rows, META["device"])
    write_run_folder(tmp_path / "b", rows[:1], META["device"])
    frame = harness.load_run(tmp_path / "a")
    assert str(frame["n_samples"].dtype) == "Int64" and str(frame["noisy"].dtype) == "boolean"
    assert frame["p_m"].tolist() == [4096, 4096] and frame.attrs["run"]["run_id"] == "a"
    both = harness.load_runs(tmp_path)
    assert sorted(both["run_id"].unique()) == ["a", "b"] and len(both) == 3


def test_csv_and_json_carry_the_short_window_flag_and_no_short_per_watt():
    """A 0.1 s window's power (an H200 read 1371 W in one against its 700 W cap) is shown in
    parentheses and never divided into a per-watt figure; CSV and JSON carry the flag."""
    import csv
    import io

    from harness.present.report import render, render_csv

    short = built_row("gemm", "matmul", "fp16", {"m": 8192, "n": 8192, "k": 8192}, flop=2 * 8192**3,
                      time_s=1.65e-3, power_w=1371.0, window_s=0.1, samples=60)
    long = built_row("gemm", "matmul", "bf16", {"m": 8192, "n": 8192, "k": 8192}, flop=2 * 8192**3,
                     time_s=1.65e-3, power_w=699.0, window_s=5.0, samples=3000, sustained=True)
    assert short["tflops_per_w"] is None and long["tflops_per_w"] == pytest.approx(long["tflops"] / 699.0)
    old = dict(short, tflops_per_w=0.485)  # as a row written before the per-watt rule stored it
    table = list(csv.DictReader(io.StringIO(render_csv({}, [old, long]))))
    assert table[0]["short_window"] == "true" and table[0]["TFLOP_per_J"] == ""
    assert float(table[1]["TFLOP_per_J"]) == pytest.approx(long["tflops"] / 699.0)
    assert table[0]["TFLOP_per_s_mean"] and table[0]["time_mean_s"]
    md = render({"device": {"name": "x"}}, [old, long], "md")
    assert "| (1371) |" in md and "0.485" not in md


def test_readme_names_csv_columns_as_the_csv_writes_them():
    """README once said the CSV carries `telemetry_short_window`: that is the row's field; the
    CSV's column is `short_window`."""
    import re
    from pathlib import Path

    from harness.core.row import FIELDS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    named = re.findall(r"the CSV's column for it is `(\w+)`", readme)
    assert named == ["short_window"] and set(named) <= set(report.CSV_COLUMNS)
    assert "telemetry_short_window" in FIELDS and "telemetry_short_window" not in report.CSV_COLUMNS


def test_a_gemm_method_other_than_mamf_finders_is_named_where_its_figure_is_shown():
    """The report's column and the generation table's case say the same words for a GEMM not
    measured as mamf-finder measures (B (k, n), no C rewrite, fp8 written as bf16)."""
    from harness.analysis.generations import _case
    from harness.core.row import gemm_method

    def row(**method):
        r = built_gemm(1000.0, dtype="fp8", n=4096)
        r["params"] = {**r["params"], **method}
        return r

    mamf, other = row(b_layout="nk", out_rewrite=True, out="fp8"), row(b_layout="kn", out_rewrite=False, out="bf16")
    assert gemm_method(mamf["params"]) == "" and gemm_method({}) == ""
    assert gemm_method(other["params"]) == "B kn, no C rewrite, out bf16"
    (pv,) = report.pivots(META, [mamf, other])["gemm"]
    assert pv.col_keys == ["fp8", "fp8 (B kn, no C rewrite, out bf16)"]
    assert _case(mamf) == "4096×4096×4096" and _case(other) == "4096×4096×4096; B kn, no C rewrite, out bf16"
