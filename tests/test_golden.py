"""Golden outputs over the committed runs in results/: what users see must not change by accident.

Each test renders a command's output for the run folders committed under results/ (runs measured
by this repository's code on an H200 and on the CPU build machine) and compares it with a
snapshot in tests/golden/. A snapshot changes only on purpose: regenerate with
`GWBENCH_UPDATE_GOLDEN=1 pytest tests/test_golden.py` and review the diff like code.

The row key sets pin schema v1: an ok row, a skipped row and a sustained row, built by the real
row builder on the CPU, and the same three kinds as stored by the H200 run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from tests.conftest import ROOT

RESULTS = ROOT / "results"
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GWBENCH_UPDATE_GOLDEN") == "1"
RUNS = sorted(p.name for p in RESULTS.iterdir() if (p / "run.json").is_file())
H200_STANDARD = "h200-20261129-220559-standard"
# Pairs that compare has something to say about: the same device and suite, or runs sharing cases.
COMPARE_PAIRS = [
    ("cpu-20261130-000349-memory-quick", "cpu-20261130-000358-memory-quick"),
    ("h200-20261129-211537-gemm", "h200-20261129-220559-standard"),
]
# project --from needs a GEMM row; the attention-only and memory-only runs are refused (tested in
# test_projection.py).
PROJECT_RUNS = [r for r in RUNS if r.startswith("h200-") and "gemm" in (RESULTS / r / "rows.jsonl").read_text()[:4000]]


def _cli(capsys, *argv: str) -> str:
    """Run the CLI in-process (from the repository root, so paths print as users give them)."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(list(argv))
    finally:
        os.chdir(cwd)
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _check(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no snapshot {path}: run with GWBENCH_UPDATE_GOLDEN=1 and review it"
    want = path.read_text(encoding="utf-8")
    if text != want:  # a readable first difference instead of a 200 kB assertion message
        a, b = want.splitlines(), text.splitlines()
        line = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        pytest.fail(f"{name} differs from its snapshot at line {line + 1}:\n"
                    f"  snapshot: {a[line] if line < len(a) else '<end>'}\n"
                    f"  now:      {b[line] if line < len(b) else '<end>'}")


def test_every_committed_run_is_covered():
    assert len(RUNS) >= 8 and H200_STANDARD in RUNS


@pytest.mark.parametrize("fmt", ["md", "json", "csv", "nccl-tests"])
@pytest.mark.parametrize("run", RUNS)
def test_report(capsys, run, fmt):
    _check(f"report/{run}.{fmt}", _cli(capsys, "report", f"results/{run}", "--format", fmt))


@pytest.mark.parametrize("fmt", ["md", "json"])
@pytest.mark.parametrize("a,b", COMPARE_PAIRS)
def test_compare(capsys, a, b, fmt):
    _check(f"compare/{a}--{b}.{fmt}", _cli(capsys, "compare", f"results/{a}", f"results/{b}",
                                            "--format", fmt))


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("run", PROJECT_RUNS)
def test_project_from(capsys, run, fmt):
    _check(f"project/{run}.{fmt}", _cli(capsys, "project", "--from", f"results/{run}",
                                        "--format", fmt, "--samples", "2000"))


def _key_sets(rows: list[dict]) -> dict[str, list[str]]:
    kinds = {"ok": lambda r: r["status"] == "ok" and not r.get("sustained"),
             "skipped": lambda r: r["status"] == "skipped",
             "sustained": lambda r: r["status"] == "ok" and r.get("sustained")}
    out = {}
    for kind, pick in kinds.items():
        found = [r for r in rows if pick(r)]
        assert found, f"no {kind} row"
        keys = {tuple(sorted(r)) for r in found}
        assert len(keys) == 1, f"{kind} rows of one run disagree on their keys"
        out[kind] = list(keys.pop())
    return out


def test_stored_row_keys():
    rows = [json.loads(line) for line in
            (RESULTS / H200_STANDARD / "rows.jsonl").read_text().splitlines() if line.strip()]
    _check("row_keys_h200.json", json.dumps(_key_sets(rows), indent=1) + "\n")


def test_built_row_keys(tmp_path, capsys):
    """The real builder on the CPU: ok and sustained rows (--sustain on the memory family's power
    case, the torch STREAM triad) and skipped rows (tf32 GEMM needs a GPU)."""
    common = ["--device", "cpu", "--warmup-ms", "1", "--rep-ms", "2", "--idle", "0",
              "--telemetry", "none", "--no-projection", "--suite", "quick"]
    rows, metas = [], []
    for i, argv in enumerate((["--only", "memory", "--sustain", "0.05"], ["--only", "gemm", "--dtype", "tf32"])):
        out = tmp_path / str(i)
        code = main(["run", *argv, *common, "--out", str(out)])
        capsys.readouterr()
        assert code == 0
        (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
        rows += [json.loads(line) for line in (run_dir / "rows.jsonl").read_text().splitlines()]
        metas.append(json.loads((run_dir / "run.json").read_text()))
    assert any(r["status"] == "ok" and r.get("sustained") for r in rows)
    _check("row_keys_cpu.json", json.dumps(_key_sets(rows), indent=1) + "\n")
    _check("run_keys_cpu.json", json.dumps(sorted(metas[0]), indent=1) + "\n")


def test_publish(tmp_path, capsys):
    """Every HTML page of the site built from results/ (figures off: their bytes depend on the
    matplotlib version). Run from the checkout with the relative name `results`, as the README
    does; page names are the run folders' names."""
    _cli(capsys, "publish", "results", "--out", str(tmp_path / "site"), "--figures", "none")
    pages = sorted((tmp_path / "site").rglob("*.html"))
    assert len(pages) > len(RUNS)
    for page in pages:
        rel = page.relative_to(tmp_path / "site")
        _check(f"publish/{str(rel).replace('/', '--')}", page.read_text(encoding="utf-8"))
