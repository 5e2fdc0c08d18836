"""nccl-tests semantics: busbw factors, the log importer and the nccl-tests report layout."""

import json
from pathlib import Path

import pytest

from harness.analysis import nccl_tests as nt
from harness.present.nccl_tests import format_nccl_tests
from harness.core.flops import BUSBW_FACTORS, busbw_factor, busbw_gbps, gbps
from tests.conftest import gwbench

SAMPLE = Path(__file__).parent / "data" / "all_reduce_perf_sample.log"

# nccl-tests doc/PERFORMANCE.md, written out for each n rather than through the formula.
FACTORS = {
    2: {"all_reduce": 1.0, "all_gather": 0.5, "reduce_scatter": 0.5, "alltoall": 0.5,
        "broadcast": 1.0, "reduce": 1.0, "sendrecv": 1.0},
    4: {"all_reduce": 1.5, "all_gather": 0.75, "reduce_scatter": 0.75, "alltoall": 0.75,
        "broadcast": 1.0, "reduce": 1.0, "sendrecv": 1.0},
    8: {"all_reduce": 1.75, "all_gather": 0.875, "reduce_scatter": 0.875, "alltoall": 0.875,
        "broadcast": 1.0, "reduce": 1.0, "sendrecv": 1.0},
}


@pytest.mark.parametrize("n", [2, 4, 8])
@pytest.mark.parametrize("coll", sorted(BUSBW_FACTORS))
def test_busbw_factor(n, coll):
    assert busbw_factor(coll, n) == pytest.approx(FACTORS[n][coll])


def test_algbw_busbw_units():
    # 1 GB in 10 ms = 100 GB/s algbw; all_reduce on 8 ranks: busbw = 175 GB/s.
    assert gbps(1e9, 0.01) == pytest.approx(100.0)
    assert busbw_gbps("all_reduce", 8, 1e9, 0.01) == pytest.approx(175.0)
    with pytest.raises(ValueError, match="unknown collective"):
        busbw_factor("allreduce", 2)


def test_parse_sample_log():
    parsed = nt.parse_log(SAMPLE.read_text(), "all_reduce")
    assert parsed["nranks"] == 8 and parsed["hosts"] == ["gpu-node-01"]
    res = parsed["results"]
    assert [r["size_bytes"] for r in res] == [1024 * 4 ** i for i in range(11)]
    last = res[-1]
    assert last["count"] == 268435456 and last["type"] == "float" and last["redop"] == "sum"
    assert last["out_of_place"] == {"time_us": 5261.76, "algbw_gbps": 204.06,
                                    "busbw_gbps": 357.11, "wrong": 0}
    # The sample's figures obey nccl-tests' own formulas (to the printed rounding).
    for r in res:
        for half in (r["out_of_place"], r["in_place"]):
            alg = gbps(r["size_bytes"], half["time_us"] / 1e6)
            assert half["algbw_gbps"] == pytest.approx(alg, rel=1e-3, abs=0.006)
            assert half["busbw_gbps"] == pytest.approx(alg * 1.75, rel=1e-3, abs=0.01)


def test_collective_from_name():
    assert nt.collective_from_name("logs/all_reduce_perf.log") == "all_reduce"
    assert nt.collective_from_name("alltoall_perf-8gpu.txt") == "alltoall"
    assert nt.collective_from_name("reduce_scatter_perf.out") == "reduce_scatter"
    assert nt.collective_from_name("reduce_perf.out") == "reduce"
    assert nt.collective_from_name("run.log") is None


def _lines():
    return SAMPLE.read_text().splitlines()


def test_truncated_log_names_the_line():
    lines = _lines()
    cut = next(i for i, s in enumerate(lines) if s.strip().startswith("268435456"))
    text = "\n".join(lines[:cut] + [lines[cut][:60]])  # the row cut off mid-way
    with pytest.raises(nt.LogError, match=rf"line {cut + 1}: .*truncated"):
        nt.parse_log(text, "all_reduce")
    # Rows complete but the footer missing: also truncated.
    with pytest.raises(nt.LogError, match="Avg bus bandwidth"):
        nt.parse_log("\n".join(lines[:cut]), "all_reduce")


def test_garbage_row_and_not_a_log():
    lines = _lines()
    cut = next(i for i, s in enumerate(lines) if s.strip().startswith("4096"))
    bad = lines[:cut] + ["        4096          1024     float     sum      -1    abc    0.17    0.30      0    23.52    0.17    0.30      0"] + lines[cut + 1:]
    with pytest.raises(nt.LogError, match=rf"line {cut + 1}: expected a number for time, got 'abc'"):
        nt.parse_log("\n".join(bad), "all_reduce")
    with pytest.raises(nt.LogError, match="no nccl-tests result rows"):
        nt.parse_log("hello\nworld\n", "all_reduce")


def test_ranks_from_factor_without_rank_lines():
    text = "\n".join(s for s in _lines() if "Rank" not in s)
    assert nt.parse_log(text, "all_reduce")["nranks"] == 8


SOURCE = {"tool": "nccl-tests", "file": "sample.log", "sha256": "0" * 64}


def test_rows_and_nccl_tests_format_roundtrip():
    parsed = nt.parse_log(SAMPLE.read_text(), "all_reduce")
    rows = nt.rows_from_log(parsed, "r1", SOURCE)
    assert len(rows) == 22 and all(r["status"] == "ok" for r in rows)
    big = [r for r in rows if r["params"] == {"size_bytes": 1 << 30, "placement": "in_place"}][0]
    assert big["extra"]["busbw_gbps"] == 353.63 and big["gbps"] == 202.07
    assert big["world_size"] == 8 and big["backend"] == "nccl-tests" and big["dtype"] == "fp32"
    assert big["source"]["line"] == 28 and big["source"]["version"].startswith("nccl-tests (version not printed")
    out = format_nccl_tests(rows)
    lines = out.splitlines()
    assert lines[:2] == ["# Collective test starting: all_reduce_perf",
                         "# gwbench: ranks 8, type float, backend nccl-tests"]
    assert any(s.split()[:2] == ["#", "size"] and s.split()[-1] == "#wrong" for s in lines)
    row = next(s for s in lines if s.strip().startswith("1073741824")).split()
    assert row == ["1073741824", "268435456", "float", "sum", "-1", "5261.76", "204.06", "357.11", "0",
                   "5313.64", "202.07", "353.63", "0"]
    assert "# Avg bus bandwidth" in out


def test_imported_rows_have_the_measured_rows_fields():
    """The imported-row builder and the measured-row builder (core/row.py) give the same fields,
    and an imported row passes the store's validation."""
    from harness.core.cases import Case
    from harness.core.result import Measurement, Outcome, check_within
    from harness.core.row import build_row, validate

    imported = nt.rows_from_log(nt.parse_log(SAMPLE.read_text(), "all_reduce"), "r1", SOURCE)[0]
    case = Case.make("collectives", "all_reduce", "fp32", backend="gloo", world_size=2,
                     size_bytes=1024, placement="in_place")
    m = Measurement(samples_s=[1e-3, 2e-3, 3e-3], n_warmup=5, estimate_s=2e-3, window_s=0.1)
    outcome = Outcome(measurement=m, nbytes=1024, check=check_within(0.0, 0.0, "exact"))
    measured = build_row(case, "r1", "ok", outcome, error=None, started_at="2025-01-01T00:00:00Z", wall_s=1.0)
    assert set(imported) - {"source"} == set(measured) and imported["source"]["tool"] == "nccl-tests"
    assert set(measured["check"]) == {"ok", "max_rel_err", "tol", "reference"} <= set(imported["check"])
    assert validate(imported, "imported") is imported


def test_format_with_missing_and_failed_cells():
    ok = {"family": "collectives", "op": "all_reduce", "dtype": "bf16", "world_size": 2, "status": "ok",
          "params": {"size_bytes": 1024, "placement": "in_place"},
          "extra": {"count": 512, "time_us": 10.0, "algbw_gbps": 0.1, "busbw_gbps": 0.1, "wrong": 0,
                    "redop": "sum", "root": -1}}
    skipped = {"family": "collectives", "op": "all_reduce", "dtype": "bf16", "world_size": 2,
               "status": "skipped", "params": {"size_bytes": 2048, "placement": "in_place"}, "extra": {}}
    out = format_nccl_tests([ok, skipped, {"family": "gemm", "op": "matmul"}])
    r1 = next(s for s in out.splitlines() if s.strip().startswith("1024")).split()
    assert r1[5:9] == ["-", "-", "-", "-"] and r1[9:] == ["10.00", "0.10", "0.10", "0"]
    assert next(s for s in out.splitlines() if s.strip().startswith("2048")).split()[-1] == "skip"
    assert format_nccl_tests([]).startswith("# no collectives rows")


def test_import_command_and_report(tmp_path):
    p = gwbench("import", "nccl-tests", str(SAMPLE), "--out", str(tmp_path), "--collective", "all_reduce")
    assert p.returncode == 0, p.stderr
    (run_dir,) = list(tmp_path.iterdir())
    rows = [json.loads(s) for s in (run_dir / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 22 and {r["op"] for r in rows} == {"all_reduce"}
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["distributed"]["world_size"] == 8
    assert len(meta["imported_from"]["sha256"]) == 64
    rep = gwbench("report", str(run_dir), "--format", "nccl-tests")
    assert rep.returncode == 0, rep.stderr
    assert "  1073741824     268435456" in rep.stdout and "357.11" in rep.stdout
    md = gwbench("report", str(run_dir))
    assert md.returncode == 0 and "all_reduce" in md.stdout


def test_import_errors(tmp_path):
    bad = tmp_path / "all_reduce_perf.log"
    bad.write_text("\n".join(_lines()[:-4]) + "\n")  # footer cut off
    p = gwbench("import", "nccl-tests", str(bad), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "truncated" in p.stderr and "Traceback" not in p.stderr
    other = tmp_path / "run.log"
    other.write_text(SAMPLE.read_text())
    p = gwbench("import", "nccl-tests", str(other), "--out", str(tmp_path / "o"))
    assert p.returncode == 2 and "--collective" in p.stderr
    p = gwbench("import", "nccl-tests", str(tmp_path / "missing.log"))
    assert p.returncode == 2 and "cannot read" in p.stderr


def test_log_without_root_column_formats():
    """Rows without a root column (nccl-tests before 2022 printed none for all_reduce): the
    report must still print -1."""
    text = SAMPLE.read_text()
    lines = [" ".join(ln.split()[:4] + ln.split()[5:]) if ln.strip()[:1].isdigit() else
             ln.replace("redop    root", "redop") for ln in text.splitlines()]
    parsed = nt.parse_log("\n".join(lines), "all_reduce")
    out = format_nccl_tests(nt.rows_from_log(parsed, "r1", SOURCE))
    row = next(s for s in out.splitlines() if s.strip().startswith("1073741824")).split()
    assert row[4] == "-1" and row[-1] == "0"
