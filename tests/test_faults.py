"""Faults, concurrency and hostile input: nothing lost, nothing escapes.

What an audit did as a hostile but fair user, kept as tests: kill -9 and resume, a last row
without its newline, two resumes at once, an interrupted 2-rank gloo run resumed, symlinks
planted at every name gwbench writes, a full disk, signals at every stage of a process, and
generated corrupt rows and run.json through every reader. The properties checked everywhere:
no traceback, the exit-code contract (0 / 1 failed or storage fault / 2 usage / 130
interrupted), no valid row lost or written twice, nothing written outside the folder named.

Real subprocesses only where the process is the point (signals, kill -9, locks held by another
process, a launcher and its ranks, a real full file system); everything else runs in-process.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import FAST, ROOT, built_row, gemm_row, write_run_folder
from harness import runner
from harness.cli import main
from harness.core import store as storemod
from harness.core.errors import UsageError
from harness.core.store import LOCK_FILE, RunStore, read_rows
from harness.measure import dist as distmod

H200 = {"backend": "cuda", "name": "NVIDIA H200", "count": 1, "host": "node1"}
ENV = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
# Every case is skipped at once on a CPU (tf32 and fp8 need a GPU): real runner rows, no waiting.
CHEAP = dict(only=["gemm"], dtypes=["tf32", "fp8"], device="cpu", idle_s=0.0, telemetry="none",
             warmup_ms=1.0, rep_ms=5.0)
# 8 tiny fp32 GEMMs (the search's shapes): a real run with rows to lose, in a few seconds.
TINY = ["--device", "cpu", "--search", "--m-range", "64:512:64", "--n-range", "64", "--k-range", "64",
        "--dtype", "fp32", "--warmup-ms", "1", "--rep-ms", "5", "--idle", "0", "--telemetry", "none",
        "--no-projection"]


# ------------------------------------------------------------------ helpers


def cli(capsys, *argv) -> tuple[int, str, str]:
    """The CLI in-process; an exception other than the contract's would fail the test here."""
    capsys.readouterr()  # what came before is not this command's
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def lines_of(run_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (run_dir / "rows.jsonl").read_text().splitlines()]


_TEMPLATE: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def _template(tmp_path_factory):
    """One run folder written by the real runner (4 skipped rows), copied by cheap_run."""
    code, store = runner.run(runner.RunConfig(**CHEAP), tmp_path_factory.mktemp("template"), ["test"])
    assert code == 0
    _TEMPLATE[:] = [store.dir]
    yield
    _TEMPLATE.clear()


def cheap_run(out: Path, status: str | None = "interrupted", keep: int | None = 2) -> Path:
    """A copy of the runner-written template under `out`, made resumable: the last rows
    removed and run.json marked `status`, as an interrupted run leaves it."""
    d = Path(out) / _TEMPLATE[0].name
    shutil.copytree(_TEMPLATE[0], d)
    if keep is not None:
        data = (d / "rows.jsonl").read_bytes().splitlines(keepends=True)
        (d / "rows.jsonl").write_bytes(b"".join(data[:keep]))
    if status is not None:
        with RunStore.open(d, write=True) as s:
            s.write_meta(status=status)
    return d


def gemm_folder(parent: Path, name: str = "h200", rows: list[dict] | None = None, **meta) -> Path:
    rows = rows or [gemm_row(t, n=n, power_w=650.0) for t, n in ((700.0, 8192), (650.0, 4096), (500.0, 2048))]
    return write_run_folder(parent / name, rows, dict(H200), **meta)


def assert_one_line_error(err: str, *parts: str) -> None:
    """One `gwbench: error:` line holding `parts` (a run's progress lines, `[n/N] ...`, aside)."""
    lines = [x for x in err.strip().splitlines() if not re.match(r"\[\d+/\d+\] ", x)]
    assert len(lines) == 1 and lines[0].startswith("gwbench: error: "), err
    for p in parts:
        assert p in lines[0], (p, err)


def strict_json(text: str):
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def catches_sigterm(pid: int) -> bool:
    """Whether process `pid` has a handler for SIGTERM yet (/proc SigCgt): gwbench installs one
    first thing, so a signal sent after this is a signal to gwbench, not to Python's start-up."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:"):
                return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    except OSError:
        pass
    return False


def wait_for(predicate, timeout: float = 120.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting")


def rows_count(out: Path) -> int:
    files = list(out.glob("*/rows.jsonl"))
    return len(files[0].read_bytes().splitlines()) if files else 0


def no_half_folders(out: Path) -> None:
    """Every visible folder under `out` is a whole run folder (run.json, rows.jsonl)."""
    for d in out.iterdir() if out.exists() else ():
        if d.is_dir() and not d.name.startswith("."):
            assert (d / "run.json").is_file() and (d / "rows.jsonl").is_file(), d


# ------------------------------------------------------------------ 1. a last row without newline


def test_resume_never_deletes_a_whole_row(tmp_path, capsys):
    d = cheap_run(tmp_path, status=None, keep=None)  # complete, 4 rows
    whole = (d / "rows.jsonl").read_bytes()
    (d / "rows.jsonl").write_bytes(whole[:-1])  # an editor dropped the final newline
    code, _, err = cli(capsys, "run", "--resume", d)
    assert code == 2 and "already complete" in err
    assert (d / "rows.jsonl").read_bytes() == whole[:-1]  # refused, and nothing touched

    lines = whole.splitlines(keepends=True)
    (d / "rows.jsonl").write_bytes(b"".join(lines[:2]) + lines[2].rstrip(b"\n"))  # row 3 lost its newline
    with RunStore.open(d, write=True) as s:
        s.write_meta(status="interrupted")
    code, _, err = cli(capsys, "run", "--resume", d, "--no-projection")
    assert code == 0, err
    after = lines_of(d)
    assert after[:3] == [json.loads(x) for x in lines[:3]]  # the whole row kept, not re-measured
    assert [r["case_id"] for r in after] == [json.loads(x)["case_id"] for x in lines]

    (d / "rows.jsonl").write_bytes(b"".join(lines[:3]) + lines[3][:40])  # a cut row: dropped, re-measured
    with RunStore.open(d, write=True) as s:
        s.write_meta(status="interrupted")
    code, _, err = cli(capsys, "run", "--resume", d, "--no-projection")
    assert code == 0 and "dropped line 4: an incomplete row of 40 bytes" in err
    assert [r["case_id"] for r in lines_of(d)] == [json.loads(x)["case_id"] for x in lines]


def test_readers_read_every_whole_row_before_a_cut_one(tmp_path, capsys):
    d = gemm_folder(tmp_path)
    with open(d / "rows.jsonl", "ab") as f:
        f.write(json.dumps(gemm_row(600.0, n=1024)).encode()[:100])
    before = (d / "rows.jsonl").read_bytes()
    code, out, err = cli(capsys, "report", d, "--format", "json")
    assert code == 0 and len(strict_json(out)["rows"]) == 3
    assert "rows.jsonl:4: the last line is incomplete" in err and err.startswith("gwbench: warning: ")
    for argv in (["compare", d, d], ["project", "--from", d, "--samples", "500"], ["model", "--from", d, "--hardware", "H200"]):
        code, _, err = cli(capsys, *argv)
        assert code == 0 and "last line is incomplete" in err, argv
    assert (d / "rows.jsonl").read_bytes() == before  # readers never repair: that is the writer's


# ------------------------------------------------------------------ 2. one writer per folder


def test_one_writer_per_run_folder(tmp_path, capsys):
    d = cheap_run(tmp_path)
    holder = RunStore.open(d, write=True)
    assert json.loads((d / LOCK_FILE).read_text())["pid"] == os.getpid()
    code, _, err = cli(capsys, "run", "--resume", d)
    assert_one_line_error(err, f"pid {os.getpid()} on host {socket.gethostname()}", "one writer")
    assert code == 2 and len(lines_of(d)) == 2
    holder.close()
    assert not (d / LOCK_FILE).exists()  # released and removed: no stale file to clean by hand
    code, _, err = cli(capsys, "run", "--resume", d, "--no-projection")
    assert code == 0, err
    assert len(lines_of(d)) == 4


def test_a_file_system_without_flock_runs_unguarded_and_says_so(tmp_path, monkeypatch, capsys):
    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(storemod.fcntl, "flock", no_flock)
    with RunStore.create(tmp_path, "run", {}) as s:
        s.append(_row_dict())
    assert "has no flock (No locks available)" in capsys.readouterr().err
    assert len(read_rows(s.dir)) == 1 and not (s.dir / LOCK_FILE).exists()


def _row_dict() -> dict:
    return built_row("gemm", "matmul", "fp32", {"m": 8, "n": 8, "k": 8})


def test_kill_9_then_two_resumes_at_once(tmp_path):
    """kill -9 mid-run: the lock dies with the process; of two resumes started together one
    finishes the run, the other is refused (naming the holder, or the run complete if it came
    late); no row lost or written twice."""
    out = tmp_path / "o"
    args = [sys.executable, "-m", "harness", "run", *TINY, "--out", str(out)]
    p = subprocess.Popen(args, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for(lambda: rows_count(out) >= 2 or p.poll() is not None)
    p.kill()
    p.communicate(timeout=60)
    run_dir = next(out.iterdir())
    before = lines_of(run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "running" and len(before) < meta["n_cases"]
    assert (run_dir / LOCK_FILE).exists()  # left by the dead process: its lock is gone with it

    resume = [sys.executable, "-m", "harness", "run", "--resume", str(run_dir), "--no-projection"]
    ps = [subprocess.Popen(resume, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True) for _ in range(2)]
    results = sorted((q.wait(timeout=120), q.stderr.read()) for q in ps)
    assert [c for c, _ in results] == [0, 2], results
    # The loser either met the winner's lock or, on a machine that ran the winner to its end
    # before the loser started, found the run complete: both are refusals, neither measures.
    # (The lock's own message is checked deterministically in test_one_writer_per_run_folder.)
    refused = results[1][1]
    if "already complete" in refused:
        assert_one_line_error(refused, "this run is already complete; nothing to resume")
    else:
        assert_one_line_error(refused, "is being written by gwbench pid", "one writer per run folder")
    after = lines_of(run_dir)
    ids = [r["case_id"] for r in after]
    assert len(ids) == len(set(ids)) == meta["n_cases"]
    assert after[: len(before)] == before
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert not (run_dir / LOCK_FILE).exists()


# ------------------------------------------------------------------ 3, 4. a multi-rank world


def test_interrupted_two_rank_run_resumes_the_same_world(tmp_path):
    """SIGTERM to the --nproc launcher reaches its ranks (exit 130, `interrupted`, no rank left
    running); --resume restarts 2 ranks and measures only the missing cases."""
    out = tmp_path / "o"
    args = [sys.executable, "-m", "harness", "run", "--only", "collectives", "--nproc", "2", "--device",
            "cpu", "--dtype", "fp32", "--sizes", "1K:4K:4", "--iters", "20", "--out", str(out), *FAST]
    p = subprocess.Popen(args, env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: rows_count(out) >= 2 or p.poll() is not None)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    run_dir = next(out.iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["config"]["nproc"] == 2
    before = lines_of(run_dir)
    time.sleep(0.5)
    assert lines_of(run_dir) == before  # the ranks stopped with their launcher
    assert 2 <= len(before) < meta["n_cases"]

    code = main(["run", "--resume", str(run_dir), "--no-projection"])  # the launcher here, its ranks apart
    assert code == 0
    after = lines_of(run_dir)
    keys = [(x["case_id"], x["rank"]) for x in after]
    assert len(keys) == len(set(keys)) == meta["n_cases"]
    assert {x["world_size"] for x in after} == {2} and after[: len(before)] == before
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


def test_resume_refuses_another_world(tmp_path):
    with pytest.raises(UsageError, match=r"measured by 2 rank\(s\) and this launch has 1"):
        runner._check_world({"distributed": {"world_size": 2}}, None, tmp_path)
    with pytest.raises(UsageError, match="measured by 1 rank"):
        runner._check_world({}, {"rank": 0, "world_size": 4}, tmp_path)
    runner._check_world({"distributed": {"world_size": 4}}, {"rank": 3, "world_size": 4}, tmp_path)


def test_a_case_is_run_again_only_for_the_ranks_that_lack_it():
    from harness.core.cases import Case

    world = distmod.World(rank=0, world_size=2)
    gemm = Case.make("gemm", "matmul", "fp32", m=8, n=8, k=8)
    coll = Case.make("collectives", "all_reduce", "fp32", world_size=2, size_bytes=1024)
    assert runner._missing(gemm, {(gemm.id, 0)}, world)  # rank 1's row is missing
    assert not runner._missing(gemm, {(gemm.id, 0), (gemm.id, 1)}, world)
    assert not runner._missing(coll, {(coll.id, 0)}, world)  # a collective keeps rank 0's row only
    assert runner._missing(gemm, set(), distmod.World())
    assert runner._row_key(built_row("gemm", "matmul", "fp32", {"m": 8}) | {"rank": 1})[1] == 1


def test_nproc_is_recorded_for_the_ranks_it_started(monkeypatch):
    env = {"RANK": "1", "WORLD_SIZE": "2", distmod.NPROC_ENV: "2"}
    assert distmod.launched_nproc(env) == 2
    assert distmod.launched_nproc({"RANK": "1", "WORLD_SIZE": "2"}) is None  # torchrun's world
    assert distmod.launched_nproc({distmod.NPROC_ENV: "2"}) is None


# ------------------------------------------------------------------ 5. planted symlinks


def test_no_write_goes_through_a_planted_link(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious\n")
    res = tmp_path / "results"
    d = cheap_run(res)
    planted = ("projection.md", "projection.json", "run.json.tmp", "projection.md.tmp", "power.csv")
    for name in planted:
        (d / name).unlink(missing_ok=True)
        (d / name).symlink_to(victim)
    code, _, err = cli(capsys, "run", "--resume", d)
    assert code == 0, err
    assert victim.read_text() == "precious\n"
    assert (d / "projection.md").is_file() and not (d / "projection.md").is_symlink()

    # Links at the names gwbench reads or appends to: refused, never followed.
    for name in ("rows.jsonl", "run.json", LOCK_FILE):
        e = cheap_run(tmp_path / f"r-{name}")
        copy = outside / f"copy-{name}"
        if (e / name).exists():
            shutil.copy(e / name, copy)
            (e / name).unlink()
        else:
            copy.write_text("")
        (e / name).symlink_to(copy)
        snapshot = copy.read_bytes()
        code, _, err = cli(capsys, "run", "--resume", e, "--no-projection")
        assert code == 2 and "symbolic link" in err, (name, err)
        assert copy.read_bytes() == snapshot, name

    # publish: the site's pages, their old temporary names, figures, README.md and its temporary.
    pub = tmp_path / "pub"
    gemm_folder(pub)
    from harness.present import figures, publish

    slug = publish.load_runs(pub)[0].slug
    site = tmp_path / "site"
    (site / "runs" / slug).mkdir(parents=True)
    names = ["index.html", "index.html.tmp", "compare.html", "compare.html.tmp", "projection.html",
             "projection.png", "generations.html", "README.md", ".gwbench-write-probe", f"runs/{slug}.html",
             f"runs/{slug}.html.tmp", f"runs/{slug}/run.json", f"runs/{slug}/rows.jsonl", f"runs/{slug}/power.csv"]
    names += [f"runs/{slug}/{n}.{ext}" for n, _ in figures.RUN_FIGURES for ext in ("png", "svg")]
    for name in names:
        (site / name).symlink_to(victim)
    for name in ("README.md", "README.md.tmp"):
        (pub / name).symlink_to(victim)
    code, _, err = cli(capsys, "publish", pub, "--out", site, "--index", "--figures", "all")
    assert code == 0, err
    assert victim.read_text() == "precious\n"
    assert (site / "index.html").is_file() and not (site / "index.html").is_symlink()
    assert not (site / "README.md").is_symlink() and (pub / "README.md").is_symlink()  # --index went under --out
    code, _, err = cli(capsys, "publish", pub, "--index")  # no --out: the results folder's README.md
    assert code == 0, err
    assert victim.read_text() == "precious\n" and not (pub / "README.md").is_symlink()


# ------------------------------------------------------------------ 6. bad folders


def _row_line(**fields) -> bytes:
    row = gemm_row(400.0, n=1024) | {"run_id": "x"}
    row.update(fields)
    return json.dumps(row).encode() + b"\n"


BAD_LINES = {
    "not UTF-8": b'{"case_id": "\xff\xfe"}\n',
    "nested 5000 deep": b'{"case_id": "a", "params": ' + b"[" * 5000 + b"]" * 5000 + b"}\n",
    "nested 100 deep": _row_line(params={"m": json.loads("[" * 100 + "]" * 100)}),
    "a 5000-digit integer": _row_line().replace(b'"m": 1024', b'"m": ' + b"9" * 5000),
    "a 4000-digit integer": _row_line().replace(b'"m": 1024', b'"m": ' + b"9" * 4000),
    "params a list": _row_line(params=[1, 2]),
    "case_id a number": _row_line(case_id=7),
    "rank text": _row_line(rank="0"),
    "dtype null": _row_line(dtype=None),
    "no family": _row_line().replace(b'"family"', b'"familie"'),
}


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_a_bad_row_is_one_line_and_skipped_among_many(tmp_path, capsys, kind):
    good = gemm_folder(tmp_path / "res", "a-good")
    bad = gemm_folder(tmp_path / "res", "b-bad")
    with open(bad / "rows.jsonl", "ab") as f:
        f.write(BAD_LINES[kind] + _row_line(case_id="after"))  # the bad line is line 4, not the last
    where = f"{bad / 'rows.jsonl'}:4"
    for argv in (["report", bad], ["report", bad, "--format", "json"], ["compare", bad, good],
                 ["compare", good, bad], ["project", "--from", bad], ["model", "--from", bad]):
        code, out, err = cli(capsys, *argv)
        assert code == 2, (argv, err)
        assert_one_line_error(err, where)
    code, out, err = cli(capsys, "compare", good, bad, good)  # one bad folder of many: skipped
    assert code == 0 and err.count("\n") == 1 and f"warning: skipped {bad}: {where}" in err
    code, out, err = cli(capsys, "publish", tmp_path / "res", "--out", tmp_path / "site", "--figures", "none")
    assert code == 0 and err.count("\n") == 1 and where in err, err
    assert "a-good" in (tmp_path / "site" / "index.html").read_text()


def test_a_bad_row_refuses_a_resume_without_touching_it(tmp_path, capsys):
    d = cheap_run(tmp_path)
    with open(d / "rows.jsonl", "ab") as f:
        f.write(BAD_LINES["not UTF-8"] + (d / "rows.jsonl").read_bytes().splitlines(keepends=True)[0])
    before = (d / "rows.jsonl").read_bytes()
    code, _, err = cli(capsys, "run", "--resume", d)
    assert code == 2
    assert_one_line_error(err, "rows.jsonl:3: corrupt row (not UTF-8 text")
    assert (d / "rows.jsonl").read_bytes() == before


def test_an_unreadable_run_json_is_one_line(tmp_path, capsys):
    d = gemm_folder(tmp_path)
    for data in (b"\xff{}", b"[" * 5000 + b"]" * 5000, b'{"schema_version": 1, "n_cases": ' + b"9" * 5000 + b"}",
                 json.dumps({"schema_version": 1, "device": "NVIDIA H200"}).encode()):
        (d / "run.json").write_bytes(data)
        for argv in (["report", d], ["project", "--from", d], ["model", "--from", d, "--hardware", "H200"], ["run", "--resume", d]):
            code, _, err = cli(capsys, *argv)
            assert code == 2, (argv, data[:30], err)
            assert_one_line_error(err, "run.json")


# ------------------------------------------------------------------ 7. storage faults


class _Disk:
    """The os module as core/store.py sees it, with a disk that has `room` bytes left for rows
    (a write past it is cut short, the next one fails with ENOSPC, as a filling disk does)
    and, with `read_only`, a lock file that cannot be created (EROFS)."""

    def __init__(self, room: int | None = None, read_only: bool = False):
        self.room, self.read_only = room, read_only

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        if self.room is None:
            return os.write(fd, data)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = os.write(fd, bytes(data[: self.room]))
        self.room -= n
        return n

    def open(self, path, flags, *args, **kw):
        if self.read_only and str(path).endswith(LOCK_FILE):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return os.open(path, flags, *args, **kw)


def test_a_full_disk_is_reported_as_such_and_resumable(tmp_path, capsys, monkeypatch):
    d = cheap_run(tmp_path, keep=None)
    one_row = len((d / "rows.jsonl").read_bytes().splitlines()[0])
    (d / "rows.jsonl").write_bytes(b"")  # interrupted before any row
    monkeypatch.setattr(storemod, "os", _Disk(room=int(1.5 * one_row)))
    code, _, err = cli(capsys, "run", "--resume", d, "--no-projection")
    assert code == 1
    assert_one_line_error(err, f"{d / 'rows.jsonl'}: cannot append a row: No space left on device (errno 28)")
    assert len(lines_of(d)) == 1  # the cut second row was undone: every line is a whole row
    meta = json.loads((d / "run.json").read_text())
    assert meta["status"] == "failed" and "No space left" in meta["error"]
    monkeypatch.setattr(storemod, "os", os)
    code, _, err = cli(capsys, "run", "--resume", d, "--no-projection")
    assert code == 0, err
    ids = [r["case_id"] for r in lines_of(d)]
    assert len(ids) == len(set(ids)) == 4


def test_storage_faults_at_creation_and_on_a_read_only_folder(tmp_path, capsys, monkeypatch):
    def full(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(storemod, "write_atomic", full)
    code, _, err = cli(capsys, "run", "--device", "cpu", "--only", "gemm", "--dtype", "fp8",
                       "--out", tmp_path / "o", *FAST)
    assert code == 1
    assert_one_line_error(err, "No space left on device")
    assert list((tmp_path / "o").iterdir()) == []  # no folder without its run.json
    monkeypatch.undo()

    d = cheap_run(tmp_path / "r")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    monkeypatch.setattr(storemod, "os", _Disk(read_only=True))
    code, _, err = cli(capsys, "run", "--resume", d)
    assert code == 1
    assert_one_line_error(err, f"{d / LOCK_FILE}: cannot lock the run folder: Read-only file system")
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_rows_file_deleted_mid_run_is_noticed(tmp_path, capsys, monkeypatch):
    d = cheap_run(tmp_path, keep=0)
    real_append = RunStore.append

    def append_then_delete(self, row):
        real_append(self, row)
        self.rows_file.unlink()

    monkeypatch.setattr(RunStore, "append", append_then_delete)
    code, _, err = cli(capsys, "run", "--resume", d, "--no-projection")
    assert code == 1
    assert_one_line_error(err, "rows.jsonl: cannot append a row (deleted while the run was going?)")
    assert not (d / "rows.jsonl").exists()  # not silently re-created with the later rows alone


FULL_FS = r"""
set -u
M=$1 PY=$2 T=$3
mount -t tmpfs -o size=24k tmpfs "$M" || exit 77
shift 3
"$PY" -m harness run "$@" --out "$M/o" >/dev/null 2>"$T/err"
echo $? > "$T/rc"
cp -a "$M/o" "$T/o"
"""


def test_a_real_full_file_system(tmp_path, capsys):
    """A 24 KiB tmpfs in a user+mount namespace (no root needed, nothing left mounted): the row
    that does not fit fails the run with the OS's reason, exit 1; the folder copied out is
    finished by --resume."""
    if not shutil.which("unshare") or not sys.platform.startswith("linux"):
        pytest.skip("needs unshare(1) on Linux to mount a small tmpfs")
    (tmp_path / "mnt").mkdir()
    r = subprocess.run(["unshare", "-rm", "sh", "-c", FULL_FS, "sh", str(tmp_path / "mnt"), sys.executable,
                        str(tmp_path), *TINY], env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if r.returncode == 77 or "unshare" in r.stderr:
        pytest.skip(f"cannot mount a tmpfs here (user namespaces off?): {r.stderr.strip()[:200]}")
    assert (tmp_path / "rc").read_text().strip() == "1", (tmp_path / "err").read_text()
    err = (tmp_path / "err").read_text()
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("gwbench: error:")]
    assert len(line) == 1 and line[0].endswith("No space left on device (errno 28)") and "/o/" in line[0], err
    run_dir = next((tmp_path / "o").iterdir())
    before = lines_of(run_dir)  # every line whole
    assert len(before) < 8
    code, _, err = cli(capsys, "run", "--resume", run_dir, "--no-projection")
    assert code == 0, err
    after = lines_of(run_dir)
    assert after[: len(before)] == before and len({r["case_id"] for r in after}) == len(after) == 8


# ------------------------------------------------------------------ 8. creation is all or nothing


def test_a_run_folder_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    real = storemod.write_atomic

    def killed(path, text):  # a kill -9 (or Ctrl-C) while run.json is being written
        raise KeyboardInterrupt

    monkeypatch.setattr(storemod, "write_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        RunStore.create(tmp_path, "run", {})
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(storemod, "write_atomic", real)
    with RunStore.create(tmp_path, "run", {}) as s:
        assert (s.dir / "run.json").is_file() and s.dir.name == "run"
        assert oct(s.dir.stat().st_mode & 0o777) != "0o700"  # not private like mkdtemp's


# ------------------------------------------------------------------ 10. exit codes and signals


def test_signals_at_any_point_exit_130_without_a_traceback(tmp_path):
    """SIGTERM or SIGINT as soon as gwbench holds its handlers (imports still going), later in
    start-up, and kill -9 during start-up: 130 and one line, never 143, never a traceback, never
    a half-made run folder."""
    plans = [(signal.SIGTERM, 0.0), (signal.SIGINT, 0.0), (signal.SIGTERM, 0.7), (signal.SIGKILL, 0.7)]
    procs = []
    for i, (sig, delay) in enumerate(plans):
        # Each process is started only when the one before it has had its signal: started all
        # at once, a later one could run on past start-up while the test waits on an earlier.
        out = tmp_path / f"o{i}"
        p = subprocess.Popen(
            [sys.executable, "-m", "harness", "run", "--device", "cpu", "--only", "gemm", "--dtype", "fp32",
             "--out", str(out), "--warmup-ms", "1", "--rep-ms", "100", "--idle", "0", "--no-projection"],
            env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append((out, p))
        wait_for(lambda p=p: catches_sigterm(p.pid) or p.poll() is not None, step=0.002)
        time.sleep(delay)
        p.send_signal(sig)
    for (sig, delay), (out, p) in zip(plans, procs):
        _, err = p.communicate(timeout=120)
        if sig == signal.SIGKILL:
            assert p.returncode == -9
        else:
            assert p.returncode == 130 and "interrupted" in err, (sig, p.returncode, err)
            assert "Traceback" not in err
        if delay == 0.0:  # it was start-up that the signal stopped: nothing was written
            assert not out.exists() or not any(out.iterdir())
        no_half_folders(out)


def test_signal_while_printing_the_results_is_130(tmp_path):
    """After the work, while output is still being written (a pipe nobody reads)."""
    d = gemm_folder(tmp_path, rows=[gemm_row(100.0 + i, n=64 + i, samples=4) for i in range(600)])
    p = subprocess.Popen([sys.executable, "-m", "harness", "report", str(d)], env=ENV, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: catches_sigterm(p.pid))
    try:  # until it blocks on the full pipe (where the kernel tells: /proc/PID/wchan)
        wait_for(lambda: "pipe_write" in Path(f"/proc/{p.pid}/wchan").read_text() or p.poll() is not None,
                 timeout=20)
    except (AssertionError, OSError):
        pass
    assert p.poll() is None
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)  # read at last: it can finish exiting
    assert p.returncode == 130
    assert "Traceback" not in err.decode() and err.decode().strip().endswith("interrupted")


LATE = """
import atexit, os, signal, sys, time
def late():  # another library's exit hook, interrupted
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(2)
atexit.register(late)
sys.argv = ["gwbench", "specs", "H100"]
from harness.cli import main
sys.exit(main())
"""


def test_a_signal_as_the_process_exits_is_130_not_an_atexit_traceback():
    r = subprocess.run([sys.executable, "-c", LATE], env=ENV, cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 130 and "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    assert "H100" in r.stdout  # the output came out whole first


# ------------------------------------------------------------------ 9, 11. numbers and small things


def test_json_output_is_always_valid():
    assert storemod.json_text({"a": float("nan"), "b": [float("inf")], "c": 1.5}) == \
        '{"a": null, "b": [null], "c": 1.5}'


def test_model_refuses_rates_above_the_spec_peak(tmp_path, capsys):
    d = gemm_folder(tmp_path, rows=[gemm_row(2500.0, power_w=650.0)])  # H200 dense bf16: 989
    for argv in (["model", "--from", d, "--hardware", "H200"], ["project", "--from", d]):
        code, _, err = cli(capsys, *argv)
        assert code == 2 and "exceeds H200 SXM's dense peak" in err, argv


def test_error_messages_are_capped_and_printable(capsys):
    code, _, err = cli(capsys, "project", "--hardware", "\x1b[2J" + "x" * 100_000)
    assert code == 2 and len(err) < 700 and "\x1b" not in err and "\\x1b[2J" in err
    code, _, err = cli(capsys, "compare", "a", "b", "--format", "\x1b]0;pwned\x07" + "y" * 10_000)
    assert code == 2 and len(err) < 700 and "\x1b" not in err and "\x07" not in err


def test_import_streams_a_large_log(tmp_path, capsys):
    src = (ROOT / "tests" / "data").glob("*all_reduce*")
    sample = next(src).read_text().splitlines(keepends=True)
    noise = "NCCL INFO " + "x" * 990 + "\n"
    cut = next(i for i, x in enumerate(sample) if "size" in x and "count" in x)
    log = tmp_path / "all_reduce_perf.log"
    with open(log, "w") as f:  # 40 MB of NCCL_DEBUG=INFO noise inside the table
        f.writelines(sample[: cut + 1])
        for _ in range(40):
            f.write(noise * 1000)
        f.writelines(sample[cut + 1:])
    tracemalloc.start()
    try:
        code, out, err = cli(capsys, "import", "nccl-tests", log, "--out", tmp_path / "o")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert code == 0, err
    assert peak < 10e6, peak  # read a line at a time: far below the 40 MB file


def test_output_to_an_ascii_terminal_is_escaped_not_a_crash():
    r = subprocess.run([sys.executable, "-m", "harness", "project", "--hardware", "H100", "--samples", "100"],
                       env=ENV | {"PYTHONIOENCODING": "ascii"}, cwd=ROOT, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr and "\\u2014" in r.stdout


def test_resume_options_must_match_the_run(tmp_path, capsys):
    d = cheap_run(tmp_path)
    code, _, err = cli(capsys, "run", "--resume", d, "--suite", "standard", "--rep-ms", "7")
    assert code == 2
    assert_one_line_error(err, "--suite standard (the run's: quick)", "--rep-ms 7.0 (the run's: 5.0)")
    code, _, err = cli(capsys, "run", "--resume", d, "--device", "cpu", "--rep-ms", "5", "--no-projection")
    assert code == 0, err  # the same values are no conflict
    e = cheap_run(tmp_path / "e")
    meta = json.loads((e / "run.json").read_text())
    del meta["config"]
    (e / "run.json").write_text(json.dumps(meta))
    code, _, err = cli(capsys, "run", "--resume", e)
    assert code == 2 and "records no configuration" in err
    meta["config"] = {"suite": 3}
    (e / "run.json").write_text(json.dumps(meta))
    code, _, err = cli(capsys, "run", "--resume", e)
    assert code == 2 and "config field 'suite' holds 3" in err


# ------------------------------------------------------------------ 12, 13. other formats, privacy


def test_every_format_escapes_planted_text(tmp_path, capsys):
    evil = "<img src=x onerror=alert(1)>[x](javascript:alert(1))\x1b[31m|\u202e"
    rows = [gemm_row(500.0, n=512), built_row("gemm", "matmul", "bf16", {"m": 8, "n": 8, "k": 8}, status="failed",
                                               error="=1+2" + evil)]
    d = write_run_folder(tmp_path / "res" / "javascript:alert(1)", rows, dict(H200, name=evil))
    code, out, _ = cli(capsys, "report", d)
    assert code == 0
    assert "<img" not in out and "](javascript" not in out and "\x1b" not in out and "\u202e" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out and "\\x1b[31m" in out
    code, out, _ = cli(capsys, "report", d, "--format", "csv")
    assert ",'=1+2<img" in out and "\x1b" not in out
    code, out, _ = cli(capsys, "report", d, "--format", "html")
    assert "<img" not in out and "\x1b" not in out
    code, out, _ = cli(capsys, "publish", tmp_path / "res", "--index")
    readme = (tmp_path / "res" / "README.md").read_text()
    assert "(./javascript%3Aalert%281%29/)" in readme and "](javascript" not in readme and "<img" not in readme


def test_publish_leaves_serials_and_uuids_out(tmp_path, capsys):
    uuid = "GPU-5f0c1e2d-1a2b-3c4d-5e6f-0123456789ab"
    rows = [gemm_row(500.0), built_row("gemm", "matmul", "fp8", {"m": 8, "n": 8, "k": 8}, status="failed",
                                       error=f"NVML: {uuid} fell off the bus")]
    write_run_folder(tmp_path / "res" / "r", rows, dict(H200, serial="1652826070908", uuid=uuid))
    code, _, err = cli(capsys, "publish", tmp_path / "res", "--out", tmp_path / "site", "--index", "--figures", "none")
    assert code == 0, err
    published = [p for p in (tmp_path / "site").rglob("*") if p.is_file()]  # pages, README.md, data copies
    text = "".join(p.read_text(errors="replace") for p in published)
    assert uuid not in text and "1652826070908" not in text and "withheld (publish --keep-serials)" in text
    code, _, err = cli(capsys, "publish", tmp_path / "res", "--out", tmp_path / "kept", "--figures", "none",
                       "--keep-serials")
    assert code == 0 and uuid in "".join(p.read_text() for p in (tmp_path / "kept").rglob("*.html"))


# ------------------------------------------------------------------ generated corrupt input, every reader

_JSON = st.recursive(st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
                     | st.floats() | st.text(max_size=12),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                     max_leaves=8)
_ROW_FIELDS = ("case_id", "family", "op", "dtype", "backend", "world_size", "params", "label", "status",
               "error", "samples_s", "time_s", "tflops", "gbps", "flop", "bytes", "extra", "check", "power_w",
               "power_source", "telemetry_short_window", "rank", "host", "noisy", "sustained", "schema_version")
_META_FIELDS = ("run_id", "status", "device", "config", "distributed", "started_at", "finished_at", "counts",
                "git", "telemetry", "argv", "n_cases", "schema_version", "idle", "imported_from")
_TOKENS = (b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 30, b"[" * 3000, b'"\\u001b[2J"', b'"\\ud800"')


def _mutated(obj: dict, fields) -> st.SearchStrategy[bytes]:
    def put(field_value):
        field, value = field_value
        return json.dumps(obj | {field: value}).encode()

    def sub(field_token):  # a raw token JSON libraries disagree on, at a field
        field, token = field_token
        return json.dumps(obj | {field: "@@"}).encode().replace(b'"@@"', token)

    return st.one_of(st.tuples(st.sampled_from(fields), _JSON).map(put),
                     st.tuples(st.sampled_from(fields), st.sampled_from(_TOKENS)).map(sub),
                     st.binary(max_size=64),
                     st.sampled_from([b"", b"[]", b"null", b'"row"']))


READERS = ("report md", "report json", "report csv", "report html", "report nccl-tests", "compare",
           "publish", "project", "model", "resume")


def _read(reader: str, d: Path, base: Path, site: Path) -> tuple[int, str, str]:
    import contextlib
    import io

    argv = {"compare": ["compare", base, d, base], "publish": ["publish", d.parent, "--out", site, "--figures", "none"],
            "project": ["project", "--from", d, "--samples", "200", "--format", "json"],
            "model": ["model", "--from", d, "--hardware", "H200", "--format", "json"]}.get(reader)
    if argv is None and reader.startswith("report"):
        argv = ["report", d, "--format", reader.split()[1]]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if reader == "resume":  # the resume's reading half: lock, repair, rows (no case is run)
            try:
                plan = runner._plan(runner.RunConfig(), d, None)
                plan.store.close()
                code = 0
            except UsageError as exc:
                print(f"gwbench: error: {exc}", file=sys.stderr)
                code = 2
        else:
            code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _check_reader(reader: str, code: int, out: str, err: str) -> None:
    event(f"{reader}: exit {code}")  # --hypothesis-show-statistics shows what was reached
    assert code in (0, 2), (reader, code, err)
    assert "Traceback" not in err
    for line in err.splitlines():
        assert line.startswith("gwbench: ") and len(line) < 700, line
    if code == 2:
        assert err.count("gwbench: error: ") == 1
    if code == 0 and reader in ("report json", "compare", "project", "model") and out.lstrip().startswith(("{", "[")):
        strict_json(out)


@pytest.fixture(scope="module")
def fuzz_base(tmp_path_factory):
    """A measured-looking H200 run (report, compare, publish, project, model read it) and a
    runner-written interrupted one (resume reads it)."""
    root = tmp_path_factory.mktemp("fuzz")
    base = gemm_folder(root / "base", "h200")
    resumable = cheap_run(root / "resumable")
    return base, resumable


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), reader=st.sampled_from(READERS), where=st.sampled_from(("middle", "last", "cut last")))
def test_generated_corrupt_rows_through_every_reader(fuzz_base, data, reader, where):
    base, resumable = fuzz_base
    src = resumable if reader == "resume" else base
    lines = (src / "rows.jsonl").read_bytes().splitlines()
    bad = data.draw(_mutated(json.loads(lines[0]), _ROW_FIELDS), label="bad line")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "runs" / "r"
        shutil.copytree(src, d)
        body = {"middle": lines[:1] + [bad] + lines[1:], "last": lines + [bad]}.get(where, lines + [bad])
        text = b"\n".join(body) + (b"" if where == "cut last" else b"\n")
        (d / "rows.jsonl").write_bytes(text)
        code, out, err = _read(reader, d, base, Path(tmp) / "site")
        _check_reader(reader, code, out, err)
        if reader == "resume":  # only the writer repairs, and only a line that is not a whole row
            kept = (d / "rows.jsonl").read_bytes()
            assert all(x in kept.splitlines() for x in lines), "a valid row was lost"
        else:
            assert (d / "rows.jsonl").read_bytes() == text  # readers never write
        if reader == "report json" and where == "cut last" and code == 0:
            assert len(json.loads(out)["rows"]) >= len(lines)  # every whole row read


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), reader=st.sampled_from(READERS))
def test_generated_corrupt_run_json_through_every_reader(fuzz_base, data, reader):
    base, resumable = fuzz_base
    src = resumable if reader == "resume" else base
    meta = json.loads((src / "run.json").read_text())
    bad = data.draw(_mutated(meta, _META_FIELDS), label="run.json")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "runs" / "r"
        shutil.copytree(src, d)
        (d / "run.json").write_bytes(bad)
        rows_before = (d / "rows.jsonl").read_bytes()
        code, out, err = _read(reader, d, base, Path(tmp) / "site")
        _check_reader(reader, code, out, err)
        assert (d / "rows.jsonl").read_bytes() == rows_before


# ------------------------------------------------------------------ on a GPU (scripts/gpu_check.sh)


@pytest.mark.gpu
def test_cuda_run_interrupted_resumed_and_published_without_its_serial(tmp_path, capsys):
    """The same contract with CUDA work in flight: SIGTERM mid-run is 130 and `interrupted`,
    --resume finishes without a repeated case, and the published site leaves the serial out."""
    out = tmp_path / "o"
    p = subprocess.Popen([sys.executable, "-m", "harness", "run", "--device", "cuda", "--only", "gemm", "--dtype",
                          "bf16,fp32", "--out", str(out), "--warmup-ms", "5", "--rep-ms", "50", "--idle", "0",
                          "--sustain", "0", "--no-projection"],
                         env=ENV, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: rows_count(out) >= 2 or p.poll() is not None)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and "Traceback" not in err, err[-2000:]
    run_dir = next(out.iterdir())
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted"
    code, _, err = cli(capsys, "run", "--resume", run_dir, "--no-projection")
    assert code in (0, 1), err
    ids = [r["case_id"] for r in lines_of(run_dir)]
    assert len(ids) == len(set(ids)) == meta["n_cases"]
    serial = json.loads((run_dir / "run.json").read_text())["device"].get("serial")
    code, _, err = cli(capsys, "publish", out, "--out", tmp_path / "site", "--figures", "none")
    assert code == 0, err
    if serial:
        assert all(serial not in f.read_text() for f in (tmp_path / "site").rglob("*.html"))
