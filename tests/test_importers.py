"""`gwbench import` of nccl-tests, mamf-finder, BabelStream and nvbandwidth output, and the
published reference figures (harness/data/published.toml) beside a measured run.

The samples in tests/data/tools/ are written by tests/data/tools/generate.py in each tool's
layout (read from its source history) with published figures; every one must import.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.row import rate_at
from harness.core.store import load_run
from harness.present.report import system_facts
from tests.conftest import built_row, gemm_row, write_run_folder

TOOLS = Path(__file__).parent / "data" / "tools"
SAMPLES = sorted(p for p in TOOLS.rglob("*") if p.is_file() and p.parent != TOOLS
                 and not p.name.endswith(".source.txt"))
# Text outputs the importer refuses on purpose: nvbandwidth is imported from its -j JSON.
REFUSED = {"v0.8_text_h200_8gpu.txt", "v0.8_text_gb300_station_c2c.txt"}
NO_DEVICE_NAME = {"v0.5_json_h100_8gpu_azure.json"}  # nvbandwidth added `GPU Device list` in v0.8


def _import(tmp_path, capsys, tool: str, path: Path, *extra: str) -> tuple[int, dict, list[dict]]:
    code = main(["import", tool, str(path), "--out", str(tmp_path), *extra])
    out, err = capsys.readouterr()
    if code == 2:
        return code, {"error": err}, []
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    meta, rows = load_run(run_dir)  # the store's own validation of every row
    return code, meta, rows


def test_every_sample_is_covered():
    tools = {p.parent.name for p in SAMPLES}
    assert tools == {"nccl-tests", "mamf-finder", "babelstream", "nvbandwidth"} and len(SAMPLES) >= 40
    for p in SAMPLES:
        assert p.with_name(p.name + ".source.txt").is_file(), f"{p} has no source sidecar"


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_imports(tmp_path, capsys, path):
    code, meta, rows = _import(tmp_path, capsys, path.parent.name, path)
    if path.name in REFUSED:
        assert code == 2 and "run it with -j (JSON)" in meta["error"]
        return
    assert code in (0, 1), meta.get("error")
    assert rows and meta["status"] == "complete"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["imported_from"]["sha256"] == digest
    for r in rows:
        src = r["source"]
        assert src["tool"] == path.parent.name and src["sha256"] == digest and src["version"]
        assert r["backend"] == path.parent.name and r["power_w"] is None
    synthetic_wrong = path.name.startswith("synthetic_")
    assert (code == 1) == synthetic_wrong  # only the invented #wrong counts fail rows
    # Every file but nvbandwidth v0.5's (no device list) names its GPU, and the report says it.
    device = dict(system_facts(meta))["device"]
    assert "None" not in device and "None" not in " ".join(meta["imported_from"]["header"])
    if path.name not in NO_DEVICE_NAME:
        assert meta["device"]["name"] and device.startswith(meta["device"]["name"])
        assert isinstance(meta["device"]["count"], int) and meta["device"]["count"] >= 1


def _one(rows, **want):
    got = [r for r in rows if all((r["params"] | r).get(k) == v for k, v in want.items())]
    assert len(got) == 1, (want, len(got))
    return got[0]


def test_nccl_tests_values(tmp_path, capsys):
    nt = TOOLS / "nccl-tests"
    code, meta, rows = _import(tmp_path / "a", capsys, "nccl-tests", nt / "head-v2.19_a100_all_reduce_8gpu.txt")
    assert code == 0 and len(rows) == 40 and meta["imported_from"]["version"] == "nccl-tests 2.19.6"
    big = _one(rows, size_bytes=16 << 30, placement="in_place")
    assert big["extra"]["busbw_gbps"] == 234.89 and big["extra"]["count"] == 4 << 30
    assert big["extra"]["time_us"] == 127997 and big["world_size"] == 8
    # -I 1 per-iteration columns and -S 1 timestamps
    _, _, rows = _import(tmp_path / "b", capsys, "nccl-tests", nt / "head-v2.19-I_b200_all_reduce_nvls_8GiB.txt")
    assert rows[0]["extra"]["iter_p99_us"] == 17938.4 and rows[0]["extra"]["busbw_gbps"] == 838.0
    _, _, rows = _import(tmp_path / "c", capsys, "nccl-tests", nt / "head-v2.19-S_h200_all_gather_ring_16GiB.txt")
    assert rows[0]["extra"]["timestamp"] == "2026-08-09 14:02:11" and rows[0]["op"] == "all_gather"
    assert rows[0]["extra"]["count"] == 536870912  # per rank: 16 GiB / 8 ranks / 4 bytes
    # %g #wrong counts
    code, _, rows = _import(tmp_path / "d", capsys, "nccl-tests", nt / "synthetic_head_a100_all_reduce_wrong_exponent.txt")
    bad = _one(rows, size_bytes=2 << 30, placement="out_of_place")
    assert code == 1 and bad["status"] == "failed" and bad["extra"]["wrong"] == 536871000
    _, _, rows = _import(tmp_path / "e", capsys, "nccl-tests", nt / "synthetic_v2.13-group_a100_all_reduce_wrong_1e6.txt")
    assert _one(rows, size_bytes=1 << 20, placement="out_of_place")["extra"]["wrong"] == 1_000_000
    # before 2022: no Group in the rank lines, the `error` column (a max deviation, not a count)
    code, meta, rows = _import(tmp_path / "f", capsys, "nccl-tests", nt / "legacy-v2.11_h200_all_gather_16GiB.txt")
    assert code == 0 and meta["distributed"]["world_size"] == 8
    assert rows[0]["extra"]["wrong"] is None and rows[0]["check"]["max_abs_error"] == 0.0
    # -J JSON: one device entry for a -g 8 process, so ranks = 1 × nthreads 1 × ngpus 8
    code, meta, rows = _import(tmp_path / "g", capsys, "nccl-tests", nt / "head-v2.19-J_h200_all_reduce_nvls_16GiB.json")
    assert code == 0 and {r["world_size"] for r in rows} == {8} and rows[0]["extra"]["busbw_gbps"] == 480.0
    # alltoall's in-place #wrong is N/A in nccl-tests: a row without a count, not a failure
    _, _, rows = _import(tmp_path / "h", capsys, "nccl-tests", nt / "illustrative_head-v2.19_alltoall_8gpu.txt")
    ip = [r for r in rows if r["params"]["placement"] == "in_place"]
    assert ip and all(r["extra"]["wrong"] is None and r["status"] == "ok" for r in ip)


@pytest.mark.parametrize("sample,name,count", [
    ("head-v2.19-I_b200_all_reduce_nvls_8GiB.txt", "NVIDIA B200", 8),            # Group, [0000:1b:00]
    ("v2.13-group-2024_h100_all_reduce_8gpu_azure.txt", "NVIDIA H100 80GB HBM3", 8),  # Group, [0x18]
    ("v2.13.0-2022_nogroup_a100_all_reduce_8gpu.txt", "NVIDIA A100-SXM4-80GB", 8),  # no Group
    ("legacy-v2.11_h200_all_gather_16GiB.txt", "NVIDIA H200", 8),
    ("v2.16-2025_gb200_all_reduce_4gpu_azure.txt", "NVIDIA GB200", 4),
    ("head-v2.19-J_h200_all_reduce_nvls_16GiB.json", "NVIDIA H200", 8),           # -J: device_info
])
def test_nccl_tests_device_from_the_rank_lines(tmp_path, capsys, sample, name, count):
    """The rank lines end with the GPU's name: the run names it, so the report finds its spec."""
    _, meta, _ = _import(tmp_path, capsys, "nccl-tests", TOOLS / "nccl-tests" / sample)
    assert meta["device"]["name"] == name and meta["device"]["count"] == count
    assert dict(system_facts(meta))["device"].startswith(f"{name} (nccl-tests) × {count}; spec entry")


def test_nccl_tests_without_rank_lines_say_not_recorded(tmp_path, capsys):
    text = (TOOLS / "nccl-tests" / "head-v2.19_a100_all_reduce_8gpu.txt").read_text()
    log = tmp_path / "all_reduce_perf.log"
    log.write_text("\n".join(s for s in text.splitlines() if "Rank" not in s) + "\n")
    _, meta, _ = _import(tmp_path / "o", capsys, "nccl-tests", log)
    assert meta["device"]["name"] is None  # data keeps null: nothing guessed
    assert main(["report", str(tmp_path / "o" / meta["run_id"])]) == 0
    out = capsys.readouterr().out
    assert "- device: device name not recorded (nccl-tests) × 8;" in out and "None" not in out


def test_project_from_a_max_only_mamf_log_says_what_is_missing(tmp_path, capsys):
    """A 2024-08 mamf-finder log printed only the max: the import has an ok row, but no median."""
    _import(tmp_path, capsys, "mamf-finder", TOOLS / "mamf-finder" / "v0-2024-08_h100_bf16_legacy_max_only.txt")
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert main(["project", "--from", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "1 ok bf16 GEMM row has no median TFLOP/s, only the fastest sample" in err
    assert "has no ok bf16 GEMM rows" not in err and err.count("\n") == 1


def test_import_counts_in_the_right_number(tmp_path, capsys):
    log = TOOLS / "mamf-finder" / "v0-2024-08_h100_bf16_legacy_max_only.txt"
    assert main(["import", "mamf-finder", str(log), "--out", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out.startswith("imported 1 row (1 bf16 shape) into ")
    json_ = TOOLS / "nvbandwidth" / "v0.5_json_h100_8gpu_azure.json"
    assert main(["import", "nvbandwidth", str(json_), "--out", str(tmp_path / "b")]) == 0
    assert capsys.readouterr().out.startswith("imported 72 rows (3 testcases) into ")


def test_mamf_finder_values(tmp_path, capsys):
    mf = TOOLS / "mamf-finder"
    _, meta, (row,) = _import(tmp_path / "a", capsys, "mamf-finder", mf / "v2-2025_h100_sxm_bf16_best_shape.txt")
    assert meta["device"]["name"] == "NVIDIA H100 80GB HBM3"
    assert meta["imported_from"]["version"] == "mamf-finder benchmark version 2"
    assert (row["params"]["m"], row["params"]["n"], row["params"]["k"]) == (2048, 2048, 13312)
    assert row["params"]["b_layout"] == "nk" and row["params"]["out_rewrite"] is True
    assert rate_at(row, "tflops", "mean") == pytest.approx(794.5)
    assert row["tflops"] == pytest.approx(794.5) and row["tflops_best"] == pytest.approx(794.5)
    _, _, (fp8,) = _import(tmp_path / "b", capsys, "mamf-finder", mf / "v2-2025_h200_sxm_fp8_best_shape.txt")
    assert fp8["dtype"] == "fp8" and fp8["params"]["out"] == "fp8"
    assert fp8["tflops_mean"] == pytest.approx(1453.4)
    # 2024-08 log: the max only, and the middle number of MxNxK was the shared dimension then
    _, _, (old,) = _import(tmp_path / "c", capsys, "mamf-finder", mf / "v0-2024-08_h100_bf16_legacy_max_only.txt")
    assert (old["params"]["m"], old["params"]["n"], old["params"]["k"]) == (2048, 13312, 2048)
    assert old["tflops_best"] == pytest.approx(794.5) and old["tflops"] is None and old["tflops_mean"] is None
    assert old["params"]["out_rewrite"] is False


def test_babelstream_values(tmp_path, capsys):
    bs = TOOLS / "babelstream"
    _, meta, rows = _import(tmp_path / "a", capsys, "babelstream", bs / "v4.0_cuda_h200_azure.csv")
    assert meta["device"]["name"] == "NVIDIA H200"
    triad, scale = _one(rows, op="triad"), _one(rows, op="scale")
    assert triad["gbps_best"] == pytest.approx(4150) and triad["dtype"] == "fp64"
    assert triad["bytes"] == 3 * 8 * 2**25 and triad["time_s"] is None  # BabelStream prints no median
    assert scale["extra"]["babelstream_kernel"] == "Mul" and scale["gbps_best"] == pytest.approx(4000)
    _, _, rows = _import(tmp_path / "b", capsys, "babelstream", bs / "head-develop_cuda_h100_gigabytes.csv")
    assert _one(rows, op="triad")["gbps_best"] == pytest.approx(2970)
    _, meta, rows = _import(tmp_path / "c", capsys, "babelstream", bs / "head-develop_hip_mi300x_azure.txt")
    assert meta["device"]["name"] == "AMD Instinct MI300X" and meta["imported_from"]["version"] == "BabelStream 5.0"
    dot = _one(rows, op="dot")
    assert dot["gbps_best"] == pytest.approx(3870) and dot["gbps_mean"] is None  # 5-decimal runtimes
    _, _, rows = _import(tmp_path / "d", capsys, "babelstream", bs / "v5.0_cuda_a100_azure.csv")
    assert len(rows) == 5  # the v5.0 Init/Read phase table is not a kernel


def test_nvbandwidth_values(tmp_path, capsys):
    nv = TOOLS / "nvbandwidth"
    _, meta, rows = _import(tmp_path / "a", capsys, "nvbandwidth", nv / "v0.8_json_h200_8gpu.json")
    assert meta["device"] == {"backend": "nvbandwidth", "host": "h200-node", "name": "NVIDIA H200", "count": 8}
    # v0.5 wrote no device list: the name is not recorded, the count is the GPU columns' width
    _, old, _ = _import(tmp_path / "b", capsys, "nvbandwidth", nv / "v0.5_json_h100_8gpu_azure.json")
    assert old["device"]["name"] is None and old["device"]["count"] == 8
    assert dict(system_facts(old))["device"].startswith("device name not recorded (nvbandwidth) × 8")
    h2d = [r for r in rows if r["op"] == "host_to_device_memcpy_ce"]
    assert len(h2d) == 8 and {r["gbps"] for r in h2d} == {55.43}
    bidir = [r for r in rows if r["op"] == "device_to_device_bidirectional_memcpy_write_ce"]
    assert {r["params"]["matrix"] for r in bidir} == {"write1", "write2", "total"} and len(bidir) == 3 * 56
    assert _one(bidir, matrix="total", row=0, column=1)["gbps"] == pytest.approx(783.73)
    assert len(rows) == 8 + 8 + 56 + 3 * 56  # N/A diagonals left out


@pytest.mark.parametrize("tool,text", [
    ("nccl-tests", "hello\nworld\n"), ("mamf-finder", "** Dtype: torch.bfloat16\nnothing\n"),
    ("babelstream", "function,num_times\n"), ("nvbandwidth", "{\"x\": 1}"), ("nvbandwidth", "not json")])
def test_bad_files_are_one_line_errors(tmp_path, capsys, tool, text):
    f = tmp_path / "all_reduce_perf.log"
    f.write_text(text)
    assert main(["import", tool, str(f), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gwbench: error: ") and err.count("\n") == 1 and not (tmp_path / "o").exists()


# ------------------------------------------------------------------ published figures


def test_published_figures_load_and_each_has_a_source():
    from harness.analysis import published

    figs = published.load()
    gens = published.by_generation(figs)
    assert {"a100", "h100", "h200", "b200", "gb200", "mi300x"} <= set(gens)
    assert all(f.published and f.source and f.value > 0 for f in figs)
    mamf = [f for f in gens["h200"] if f.tool == "mamf-finder"]
    assert {(f.match["dtype"], f.value) for f in mamf} == {("bf16", 794.5), ("fp8", 1453.4)}


def test_published_file_is_checked(tmp_path):
    from harness.analysis import published
    from harness.core.errors import UsageError

    good = ('schema_version = 1\n[[figure]]\ngeneration = "h100"\ntool = "t"\nwhat = "w"\nvalue = 1.0\n'
            'unit = "GB/s"\ntool_statistic = "s"\nstatistic = "median"\nconditions = "c"\nsource = "S"\n')
    (tmp_path / "ok.toml").write_text(good)
    assert published.load(tmp_path / "ok.toml")[0].value == 1.0
    for bad, msg in ((good.replace('source = "S"', 'source = " "'), "needs a source"),
                     (good.replace('"h100"', '"h1000"'), "not a hardware.toml accelerator key"),
                     (good + 'colour = "x"\n', "unknown keys colour"),
                     (good.replace('"median"', '"p99"'), "statistic one of")):
        (tmp_path / "bad.toml").write_text(bad)
        with pytest.raises(UsageError, match=msg):
            published.load(tmp_path / "bad.toml")


def _h200_run(tmp_path, method: dict) -> Path:
    flop = 2 * 4096**3
    rows = [built_row("gemm", "matmul", "bf16", {"m": 4096, "n": 4096, "k": 4096, "data": "randn", **method},
                      flop=flop, time_s=flop / 790e12),
            built_row("memory", "triad", "fp64", {"n": 1 << 27}, backend="cupy-kernel",
                      nbytes=3 * 8 << 27, time_s=3 * 8 * (1 << 27) / 4393e9)]
    return write_run_folder(tmp_path / "h200", rows, {"name": "NVIDIA H200", "backend": "cuda", "count": 1})


def test_a_run_beside_the_published_figures(tmp_path, capsys):
    from harness.analysis.published import beside

    run = _h200_run(tmp_path, {"b_layout": "nk", "out_rewrite": True})
    result = beside(*load_run(run))
    assert result["generation"] == "h200"
    by_what = {line["figure"]["what"]: line for line in result["lines"]}
    gemm = by_what["GEMM bf16, best shape of a sweep (the table's H100 SXM row)"]
    assert gemm["measured"]["value"] == pytest.approx(790) and gemm["measured"]["statistic"] == "mean"
    assert gemm["ratio"] == pytest.approx(790 / 794.5) and gemm["measured"]["note"] == ""
    assert by_what["HBM triad (fp64, 2^25 elements)"]["ratio"] == pytest.approx(4393 / 4150)
    assert by_what["all_reduce busbw, 8 GPUs, 8 GiB, in place, NVLS"]["measured"] is None
    assert main(["compare", str(run), "--published"]) == 0
    out = capsys.readouterr().out
    assert "beside published figures (h200)" in out and "794.5 TFLOP/s (published)" in out
    assert main(["report", str(run), "--published"]) == 0
    assert "| GEMM bf16, best shape of a sweep" in capsys.readouterr().out
    assert main(["report", str(run), "--published", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["published"]["generation"] == "h200"


def test_a_run_of_another_method_is_marked_beside_the_published(tmp_path):
    """Rows measured before mamf-finder's method was the default (B (k, n), no C rewrite) are compared with a note."""
    from harness.analysis.published import beside

    run = _h200_run(tmp_path, {})
    line = next(x for x in beside(*load_run(run))["lines"] if x["figure"]["tool"] == "mamf-finder"
                and x["figure"]["match"]["dtype"] == "bf16")
    assert line["measured"]["note"].startswith("method differs from the tool's: b_layout not recorded")


def test_cpu_run_has_no_generation(tmp_path, capsys):
    run = write_run_folder(tmp_path / "cpu", [gemm_row(1.0, n=256)], {"name": "cpu", "backend": "cpu"})
    assert main(["compare", str(run), "--published"]) == 0
    assert "No published figure for this hardware" in capsys.readouterr().out
