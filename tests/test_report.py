"""Report pivots: golden Markdown, spec shares, noisy flags, missing fields never crash."""

from __future__ import annotations

import json

from harness.present import report
from harness.core.store import SCHEMA_VERSION, RunStore
from tests.conftest import gwbench

META = {"schema_version": SCHEMA_VERSION, "run_id": "r1", "status": "complete",
        "device": {"name": "NVIDIA H200", "backend": "cuda", "count": 1, "host": "h",
                   "driver_version": "580.1", "power_limit_w": 700,
                   "software": {"torch": "2.11", "torch_cuda": "13.0", "python": "3.12", "nccl": "2.27"}}}


def gemm(dtype, m, tflops, noisy=False, status="ok", power=None):
    return {"schema_version": SCHEMA_VERSION, "case_id": f"gemm/matmul/{dtype}/torch/m={m}",
            "family": "gemm", "op": "matmul", "dtype": dtype, "backend": "torch", "label": "",
            "params": {"m": m, "n": m, "k": m}, "status": status, "tflops": tflops if status == "ok" else None,
            "noisy": noisy, "power_w": power, "tflops_per_w": tflops / power if power else None,
            "time_s": 1e-3}


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
    assert "driver 580.1, CUDA 13.0, torch 2.11, NCCL 2.27" in text and "limit 700 W" in text
    assert "`~` noisy" in text and "projection:" in text


def test_other_families_pivot_and_missing_fields_skip():
    rows = [
        {"case_id": "a1", "family": "attention", "op": "fwd", "dtype": "bf16", "backend": "sdpa-flash",
         "params": {"seq": 1024, "head_dim": 128, "causal": True, "batch": 2, "heads": 8},
         "status": "ok", "tflops": 400.0},
        {"case_id": "a2", "family": "attention", "op": "fwd", "dtype": "bf16", "backend": "sdpa-math",
         "params": {"seq": 512, "head_dim": 128, "causal": True}, "status": "ok", "tflops": 100.0},
        {"case_id": "c1", "family": "collectives", "op": "all_reduce", "dtype": "bf16", "backend": "nccl",
         "world_size": 8, "params": {"size_bytes": 1 << 30, "placement": "in_place"}, "status": "ok",
         "extra": {"algbw_gbps": 200.0, "busbw_gbps": 350.0}},
        {"case_id": "m1", "family": "memory", "op": "triad", "dtype": "fp32", "backend": "torch",
         "params": {"n": 1 << 28}, "extra": {"array_bytes": 1 << 30}, "status": "ok", "gbps": 4000.0},
        {"case_id": "x", "family": "attention", "op": "fwd", "status": "ok"},  # no seq: skipped
        {"case_id": "y", "family": "memory", "status": "failed"},  # nothing: skipped
        {"case_id": "z", "family": "newfamily", "status": "ok"},
    ]
    pv = report.pivots(META, rows)
    att = report.pivot_md(pv["attention"][0])
    assert "| 512 |" in att and "| 1024 |" in att and "400 (40%)" in att
    coll = report.pivot_md(pv["collectives"][0])
    assert "| 1 GiB | 200 / 350 (78%) |" in coll and "all_reduce in-place" in coll
    mem = report.pivot_md(pv["memory"][0])
    assert "triad (torch)" in mem and "4000 (83%)" in mem
    for fmt in report.FORMATS:  # every format renders these odd rows
        if fmt != "nccl-tests":
            assert report.render(META, rows, fmt)


def test_cpu_run_has_no_share_and_html_escapes():
    meta = json.loads(json.dumps(META))
    meta["device"].update(backend="cpu", name="<script>alert(1)</script>", host="<b>x</b>")
    text = report.render(meta, [gemm("bf16", 256, 0.5)], "html")
    assert "<script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "(%" not in report.render(meta, [gemm("bf16", 256, 0.5)], "md")


def test_cli_formats_and_bad_format(tmp_path):
    store = RunStore.create(tmp_path, "r1", {k: v for k, v in META.items() if k not in ("schema_version", "run_id")})
    store.append(gemm("bf16", 4096, 742.0) | {"run_id": "r1"})
    for fmt in ("md", "html", "csv", "json"):
        r = gwbench("report", str(store.dir), "--format", fmt)
        assert r.returncode == 0 and r.stdout, r.stderr
    assert "| 4096×4096×4096 | 742 (75%) |" in gwbench("report", str(store.dir)).stdout
    bad = gwbench("report", str(store.dir), "--format", "pdf")
    assert bad.returncode == 2 and "unknown format 'pdf'" in bad.stderr


def test_per_watt_only_from_windows_long_enough_to_trust():
    from harness.present.report import _cell

    row = {"status": "ok", "tflops_per_w": 1.5, "noisy": False}
    assert _cell(row, 700.0, 989.0).per_w == 1.5
    assert _cell(dict(row, telemetry_short_window=True), 700.0, 989.0).per_w is None


def _att_row(backend, tflops, seq=8192, heads=32, kv=32):
    return {"family": "attention", "op": "fwd", "dtype": "bf16", "backend": backend, "status": "ok",
            "tflops": tflops, "params": {"seq": seq, "head_dim": 128, "causal": False,
                                         "heads": heads, "kv_heads": kv}}


def test_attention_pivot_names_best_backend_and_keeps_gqa_apart():
    from harness.present.report import pivots

    rows = [_att_row("sdpa-flash", 347.0), _att_row("sdpa-cudnn", 602.0),
            _att_row("sdpa-flash", 500.0, heads=32, kv=8)]
    tables = pivots({}, rows)["attention"]
    assert len(tables) == 2  # GQA rows are their own table, not folded into MHA cells
    mha = next(t for t in tables if "GQA" not in t.title)
    assert mha.cells[(8192, "best")].text == "sdpa-cudnn"
    assert mha.cells[(8192, "sdpa-flash")].value == 347.0


def test_spread_across_ranks_names_the_slowest_gpu():
    from harness.present.report import pivots

    def gemm(rank, host, tflops):
        return {"family": "gemm", "op": "matmul", "dtype": "bf16", "status": "ok", "case_id": "g/1",
                "tflops": tflops, "params": {"m": 8, "n": 8, "k": 8}, "rank": rank, "host": host,
                "local_rank": rank % 2}

    rows = [gemm(0, "a", 700.0), gemm(1, "a", 665.0), gemm(2, "b", 690.0)]
    (sp,) = pivots({}, rows)["every GPU"]
    assert sp.cells[("g/1", "GPUs")].text == "3"
    assert sp.cells[("g/1", "spread")].text == "5.0%"
    assert sp.cells[("g/1", "slowest")].text == "a rank 1 (local rank 1, its GPU on a CUDA run)"
    assert "every GPU" not in pivots({}, rows[:1])  # one rank: no spread table
