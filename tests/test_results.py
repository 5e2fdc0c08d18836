import json

import pytest

from harness.core.errors import UsageError
from harness.core.frame import to_frame
from harness.core.store import SCHEMA_VERSION, RunStore, load_run, make_run_id, read_rows


def _row(i, status="ok"):
    return {"schema_version": SCHEMA_VERSION, "run_id": "r", "case_id": f"gemm/x/{i}",
            "family": "gemm", "op": "matmul", "dtype": "bf16", "params": {"m": i},
            "status": status, "samples_s": [1.0, 2.0], "tflops": float("nan")}


def test_round_trip(tmp_path):
    store = RunStore.create(tmp_path, "run1", {"device": {"name": "cpu"}})
    for i in range(3):
        store.append(_row(i))
    meta, rows = load_run(store.dir)
    assert meta["status"] == "running" and meta["schema_version"] == SCHEMA_VERSION
    assert [r["case_id"] for r in rows] == ["gemm/x/0", "gemm/x/1", "gemm/x/2"]
    assert rows[0]["tflops"] is None  # NaN is stored as null, the file stays valid JSON
    frame = to_frame(rows)
    assert list(frame["p_m"]) == [0, 1, 2]
    store.write_meta(status="complete")
    assert json.loads((store.dir / "run.json").read_text())["status"] == "complete"


def test_same_run_id_twice_gets_new_folder(tmp_path):
    a = RunStore.create(tmp_path, "same", {})
    b = RunStore.create(tmp_path, "same", {})
    assert a.dir != b.dir and b.dir.name == "same-2"


def test_corrupt_line_is_named(tmp_path):
    store = RunStore.create(tmp_path, "run", {})
    store.append(_row(0))
    with open(store.rows_file, "a") as f:
        f.write("{not json\n")
    with pytest.raises(UsageError, match=r"rows.jsonl:2: corrupt row"):
        read_rows(store.dir)


def test_unknown_schema_version(tmp_path):
    store = RunStore.create(tmp_path, "run", {})
    store.write_meta(schema_version=99)
    with pytest.raises(UsageError, match="schema version 99 is not supported"):
        load_run(store.dir)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(UsageError, match="no such run folder"):
        load_run(tmp_path / "missing")
    with pytest.raises(UsageError, match="not a gwbench run folder"):
        load_run(tmp_path)


def test_partial_tail_dropped_whole_last_row_kept(tmp_path):
    store = RunStore.create(tmp_path, "run", {})
    store.append(_row(0))
    with open(store.rows_file, "a") as f:
        f.write('{"case_id": "half')
    said = []
    assert len(read_rows(store.dir, warn=said.append)) == 1  # readers read every whole row
    assert "rows.jsonl:2: the last line is incomplete" in said[0]
    assert store.repair_tail() == "dropped line 2: an incomplete row of 17 bytes"
    assert store.repair_tail() is None
    with open(store.rows_file, "a") as f:  # a whole row that lost only its newline
        f.write(json.dumps(_row(1)))
    assert store.repair_tail() == "kept"
    assert [r["case_id"] for r in read_rows(store.dir)] == ["gemm/x/0", "gemm/x/1"]
    assert store.rows_file.read_bytes().endswith(b"}\n")


def test_run_id_is_filesystem_safe():
    from datetime import datetime, timezone

    rid = make_run_id("node 1/a", "cuda", datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert rid == "20260102-030405-node-1-a-cuda"


def test_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError, match="cannot write results"):
        RunStore.create(blocker, "run", {})


def test_readme_figures_are_the_committed_rows(capsys):
    """README's measured figures come from scripts/readme_figures.py over results/:
    each of these is in both, so a README edit or a changed reader that moves one fails here."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("readme_figures", root / "scripts" / "readme_figures.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main()
    table = capsys.readouterr().out
    readme = (root / "README.md").read_text()
    for script_text, readme_text in (
            ("790.2~ mean (median 834.5, IQR 17.6%)", "790.2~ TFLOP/s mean (median 834.5; IQR 17.6%"),
            ("662.9 median, 663.7 mean", "662.9 TFLOP/s median (663.7 mean)"),
            ("1438~ (h200-20261129-211537-gemm) / 1279 (h200-20261129-220559-standard)", "1438~ / 1279 TFLOP/s"),
            ("2111 (4223) median", "2111 GB/s (4223) median"),
            ("120–123 W; 0.01–0.14% apart", "120–123 W mean; 0.01–0.14% apart"),
            ("5.9e27 / p50 5.98e27 (p5–p95 4.39e27–8.04e27)", "5.90e27 / 5.98e27 bf16 FLOP/year (p5–p95 4.39e27–8.04e27)"),
            ("(MFU 0.3–0.55)", "MFU range of that day, 0.30–0.55"),
            ("p50 5.83e27", "has the p50 at 5.83e27"),
            ("629,932 / p50 614,560 GPUs", "629,932 / 614,560 GPUs")):
        assert script_text in table, script_text
        assert readme_text in readme, readme_text


def test_gpu_check_script_parses():
    """scripts/gpu_check.sh runs on a lent GPU only; here at least it must parse (its CPU dry
    run, GWBENCH_DEVICE=cpu SMALL=1, takes ~40 s and is not part of the suite)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
