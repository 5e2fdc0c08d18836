"""Collectives family: real gloo runs on the CPU, the launcher, timeouts, the SLURM script."""

from dataclasses import replace

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from harness.measure import dist as distmod
from harness.analysis import nccl_tests as nt
from harness.present.nccl_tests import float_str
from harness.benchmarks import collectives as coll
from harness.core.errors import SkipCase, UsageError
from tests.conftest import FAST, ROOT, gwbench

SBATCH = ROOT / "scripts" / "slurm" / "gwbench.sbatch"


def _run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, f"expected exactly one run folder, got {dirs}"
    return dirs[0]


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(s) for s in (run_dir / "rows.jsonl").read_text().splitlines()]


def test_world_size_one_measures_as_nccl_tests_on_one_gpu(fast_ctx):
    """One rank runs on a one-rank process group (gloo here, NCCL on a GPU): algbw measured,
    busbw = algbw × 0 for all_reduce / all_gather, × 1 for broadcast; sendrecv to itself is
    a skipped row on gloo, which cannot send to its own rank."""
    from harness.runner import measure_case

    cases = coll.cases("quick", fast_ctx)
    assert {(c.op, c.p["placement"]) for c in cases} == set(coll.OPS)
    got = {}
    for op, pl in (("all_reduce", "in_place"), ("all_gather", "out_of_place"), ("broadcast", "in_place"),
                   ("sendrecv", "out_of_place")):
        case = next(c for c in cases if (c.op, c.p["placement"]) == (op, pl))
        got[op] = measure_case(case, fast_ctx)
    for op in ("all_reduce", "all_gather", "broadcast"):
        status, outcome, error = got[op]
        assert status == "ok", error
        ex = outcome.extra
        assert ex["nranks"] == 1 and ex["algbw_gbps"] > 0 and ex["wrong"] == 0
        assert ex["busbw_gbps"] == (ex["algbw_gbps"] if op == "broadcast" else 0.0)
    assert got["sendrecv"][0] == "skipped" and "gloo cannot" in got["sendrecv"][2]


def test_sizes_and_bad_sizes():
    assert coll.sizes("cpu", "quick", "1K:16K:4") == [1024, 4096, 16384]
    assert coll.sizes("cpu", "quick", "1M:1M") == [1 << 20]
    assert coll.sizes("cpu", "quick", "1M:4M:+1M") == [1 << 20, 2 << 20, 3 << 20, 4 << 20]  # -i form
    assert coll.sizes("cpu", "quick", "8:40:+16") == [8, 24, 40]
    assert coll.sizes("cuda", "standard")[-1] == 1 << 30
    assert coll.sizes("cuda", "full")[-1] == 8 << 30
    for bad in ("1K", "4K:1K", "1K:4K:1", "x:4K", "1K:4K:2.5", "1:1G:+1", "1K:4K:+0"):
        with pytest.raises(UsageError):
            coll.parse_sizes(bad)


@pytest.mark.parametrize("op,size,esize,n,want", [
    # nccl-tests (src/*.cu GetCollByteCount, HEAD): per-rank counts rounded down to 16 bytes for
    # all_gather / reduce_scatter / alltoall only; the count column is per rank for those.
    ("all_gather", 1024, 4, 8, (32, 256, 1024)),
    ("reduce_scatter", 1024, 4, 8, (32, 256, 1024)),
    ("alltoall", 1024, 4, 8, (32, 256, 1024)),
    ("all_reduce", 1024, 4, 8, (256, 256, 1024)),
    ("all_gather", 1000, 4, 8, (28, 224, 896)),  # 250 / 8 = 31 -> 28 floats (112 bytes) per rank
    ("all_reduce", 1000, 4, 8, (250, 250, 1000)),  # never rounded
    ("broadcast", 1002, 2, 8, (501, 501, 1002)),
    ("all_gather", 1000, 2, 8, (56, 448, 896)),  # halves: 62 -> 56 (8 per 16 bytes)
    ("alltoall", 64, 4, 8, (0, 0, 0)),  # under 16 bytes per rank: nothing
    ("all_gather", 4096, 4, 1, (1024, 1024, 4096)),
])
def test_nccl_counts(op, size, esize, n, want):
    from harness.core.flops import nccl_counts

    assert nccl_counts(op, size, esize, n) == want


def test_nccl_tests_flags_verbatim():
    from harness.analysis.nccl_tests import run_options

    assert run_options("-b 8 -e 128M -f 2 -n 5 -w 0 -c 2") == {
        "sizes": "8:134217728:2", "iters": 5, "warmup": 0, "check": 2}
    assert run_options("--minbytes=1M --maxbytes 4M -i1M")["sizes"] == "1048576:4194304:+1048576"
    assert run_options("")["iters"] is None and run_options(None, iters=7)["iters"] == 7
    # nccl-tests' defaults for what is not given: -b/-e 32M, -i 1M, -n 20, -w 1, -c 1
    assert run_options("-n 3") == {"sizes": "33554432:33554432:+1048576", "iters": 3, "warmup": 1, "check": 1}
    for bad, msg in (("-g 8", "not one of nccl-tests'"), ("-b", "needs a value"), ("-n x", "-n 'x'"),
                     ("-b 0", "bad -b size")):
        with pytest.raises(UsageError, match=msg):
            run_options(bad)
    with pytest.raises(UsageError, match="--nccl-tests and --sizes"):
        run_options("-b 8", sizes="1K:2K")


def test_one_untimed_check_after_the_timed_calls(fast_ctx, monkeypatch):
    """nccl-tests checks once per size (-c 1), after the timed iterations; -c 0 prints N/A."""
    from dataclasses import replace

    from harness.runner import measure_case

    calls = []
    real = coll._count_wrong
    monkeypatch.setattr(coll, "_count_wrong", lambda *a: calls.append(1) or real(*a))
    case = next(c for c in coll.cases("quick", fast_ctx) if c.op == "all_reduce")
    status, outcome, _ = measure_case(case, fast_ctx)
    assert status == "ok" and len(calls) == 1 and outcome.extra["check_iters"] == 1
    assert outcome.extra["warmup_iters"] == 1  # nccl-tests' -w default since v2.16.8
    calls.clear()
    ctx = replace(fast_ctx, options={"coll_check": 0, "coll_warmup": 3})
    status, outcome, _ = measure_case(case, ctx)
    assert status == "ok" and calls == [] and outcome.extra["wrong"] is None
    assert outcome.check.ok and "not checked" in outcome.check.reference
    assert outcome.extra["warmup_iters"] == 3


@pytest.mark.parametrize("op,placement", coll.OPS)
def test_wrong_elements_are_counted(op, placement):
    """The check is not vacuous: the expected output passes, one corrupted element is one wrong."""
    n, rank, count = 4, 1, 40
    b = coll._Bufs(op, placement, count, torch.float32, "cpu", rank, n)
    out = b.output()
    out.copy_(coll._expected(b, count, "cpu", 0, out.numel()))
    assert coll._count_wrong(b, count, torch.float32, "cpu", 0.0)[0] == 0
    out[3] += 1
    assert coll._count_wrong(b, count, torch.float32, "cpu", 0.0)[0] == (0 if op == "reduce" else 1)


def test_check_in_chunks_matches(monkeypatch):
    """Chunked fill and check (bounded float64 temporaries on big GPU sizes) agree with one chunk."""
    b = coll._Bufs("alltoall", "out_of_place", 40, torch.float32, "cpu", 2, 4)
    coll._fill(b, 40, torch.float32, "cpu")
    whole = b.send.clone()
    monkeypatch.setattr(coll, "CHUNK", 7)
    coll._fill(b, 40, torch.float32, "cpu")
    assert torch.equal(whole, b.send) and bool((b.recv == -1).all())
    b.recv.copy_(coll._expected(b, 40, "cpu", 0, 40))
    b.recv[[0, 13, 39]] = 0
    assert coll._count_wrong(b, 40, torch.float32, "cpu", 0.0)[0] == 3


def test_strip_nproc_and_env():
    assert distmod.strip_nproc(["run", "--nproc", "2", "--x", "--nproc=4", "y"]) == ["run", "--x", "y"]
    assert distmod.launched_env({}) is None
    assert distmod.launched_env({"RANK": "0", "WORLD_SIZE": "1"}) is None
    env = distmod.launched_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3",
                                "MASTER_ADDR": "h", "MASTER_PORT": "1"})
    assert env["rank"] == 3 and env["world_size"] == 8 and env["master"] == "h:1"


def _check_run(out: Path, n: int, n_sizes: int) -> list[dict]:
    run_dir = _run_dir(out)
    rows = _rows(run_dir)
    assert len(rows) == len(coll.OPS) * n_sizes  # one row per (collective, size, placement)
    assert len({r["case_id"] for r in rows}) == len(rows)
    for r in rows:
        assert r["status"] == "ok", r["error"]
        ex = r["extra"]
        assert ex["wrong"] == 0 and r["check"]["ok"] and r["world_size"] == n
        assert ex["busbw_gbps"] / ex["algbw_gbps"] == pytest.approx(nt.busbw_factor(r["op"], n))
        assert ex["algbw_gbps"] == pytest.approx(ex["size_bytes"] / r["time_s"] / 1e9)
        assert ex["time_max_s"] >= min(r["samples_s"]) > 0
        assert r["rank"] == 0  # collectives rows are rank 0's only
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete"
    assert meta["distributed"]["world_size"] == n and meta["distributed"]["nodes"] == 1
    assert meta["distributed"]["backend"] == "gloo"
    return rows


def test_two_rank_gloo_run(tmp_path):
    p = gwbench("run", "--only", "collectives", "--nproc", "2", "--device", "cpu", "--dtype", "fp32",
                "--sizes", "1K:16K:4", "--iters", "5", "--out", str(tmp_path), *FAST)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = _check_run(tmp_path, 2, 3)
    assert {r["backend"] for r in rows} == {"gloo"}
    assert p.stdout.count("run folder:") == 1  # only rank 0 prints


def test_four_rank_gloo_run_and_report(tmp_path):
    p = gwbench("run", "--only", "collectives", "--nproc", "4", "--device", "cpu", "--dtype", "fp32",
                "--sizes", "4K:4K", "--iters", "2", "--out", str(tmp_path), *FAST)
    assert p.returncode == 0, p.stderr[-2000:]
    _check_run(tmp_path, 4, 1)
    rep = gwbench("report", str(_run_dir(tmp_path)), "--format", "nccl-tests")
    assert rep.returncode == 0 and "# gwbench: ranks 4, type float, backend gloo" in rep.stdout
    # Round trip: what the report prints imports as nccl-tests output, every collective, and
    # gives back the rows' size, type, time, algbw, busbw and #wrong (to the printed digits).
    measured = {(r["op"], r["params"]["placement"]): r for r in _rows(_run_dir(tmp_path))}
    tables = nt.parse_tables(rep.stdout, where="report")
    back = [r for t in tables for r in nt.rows_from_log(t, "rt", {"tool": "nccl-tests"})]
    assert {(r["op"], r["params"]["placement"]) for r in back} == set(measured) == set(coll.OPS)
    for r in back:
        m = measured[(r["op"], r["params"]["placement"])]
        assert (r["dtype"], r["world_size"]) == (m["dtype"], 4)
        for key in ("size_bytes", "count", "wrong"):
            assert r["extra"][key] == m["extra"][key], key
        for key, width in (("time_us", 7), ("algbw_gbps", 6), ("busbw_gbps", 6)):
            assert r["extra"][key] == float(float_str(m["extra"][key], width)), key


def test_rank_that_never_joins_times_out(tmp_path):
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(distmod.free_port())}
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "harness", "run", "--only", "collectives", "--device",
                        "cpu", "--dist-timeout", "2", "--out", str(tmp_path), *FAST],
                       capture_output=True, text=True, timeout=120, cwd=ROOT,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), **env))
    elapsed = time.monotonic() - t0
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "did not form within 2 s" in p.stderr and "never joined" in p.stderr
    # It waited out --dist-timeout 2 and then stopped: the upper bound (start-up included,
    # about 7 s on a 2-core machine) sits far below the 120 s that would mean a hang.
    assert 2 <= elapsed < 60, elapsed
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_usage_errors(tmp_path):
    """--resume restarts the run's own world (tests/test_faults.py resumes a 2-rank run): a
    folder that is no run, or an --nproc the run did not have, is refused before any rank starts."""
    p = gwbench("run", "--nproc", "2", "--resume", str(tmp_path), *FAST)
    assert p.returncode == 2 and "not a gwbench run folder" in p.stderr
    from tests.conftest import built_row, write_run_folder

    run = write_run_folder(tmp_path / "r", [built_row("gemm", "matmul", "fp32", {"m": 8})], {"backend": "cpu"},
                           config={"suite": "quick", "device": "cpu", "nproc": 1})
    (run / "run.json").write_text((run / "run.json").read_text().replace('"complete"', '"interrupted"'))
    p = gwbench("run", "--nproc", "2", "--resume", str(run))
    assert p.returncode == 2 and "--nproc 2 (the run's: 1)" in p.stderr and "Traceback" not in p.stderr


def test_bad_argument_under_nproc_is_said_once(tmp_path):
    """The launching parent checks the ranks' arguments: one line, not one per rank."""
    p = gwbench("run", "--only", "collectives", "--nproc", "2", "--device", "cpu",
                "--sizes", "4K:1K", "--out", str(tmp_path), *FAST)
    assert p.returncode == 2
    assert p.stderr.splitlines() == ["gwbench: error: --sizes '4K:1K': need MIN <= MAX"]
    assert not any(tmp_path.iterdir())


def test_more_ranks_than_gpus_is_refused_once(tmp_path):
    """--device cuda with more local ranks than GPUs: refused by the parent, before any rank starts."""
    gpus = distmod.visible_gpus()
    n = max(2, gpus + 1)
    p = gwbench("run", "--only", "collectives", "--nproc", str(n), "--device", "cuda",
                "--out", str(tmp_path), *FAST)
    assert p.returncode == 2
    (line,) = p.stderr.splitlines()
    expect = f"{n} ranks on this node but {gpus} GPU(s) visible" if gpus else "no CUDA GPU is visible"
    assert line.startswith("gwbench: error: ") and expect in line
    assert not any(tmp_path.iterdir())


def test_local_ranks_must_not_share_a_gpu():
    distmod.check_local_ranks("cpu", 64, 0)  # gloo: any number of ranks
    distmod.check_local_ranks("cuda", 8, 8)
    distmod.check_local_ranks("cuda:3", 1, 8)  # one rank may pick its GPU
    with pytest.raises(UsageError, match=r"^3 ranks on this node but 2 GPU\(s\) visible: .*start 2 or fewer"):
        distmod.check_local_ranks("cuda", 3, 2)
    with pytest.raises(UsageError, match="every rank would use GPU 1; use --device cuda"):
        distmod.check_local_ranks("cuda:1", 2, 8)


def _launch_env(**env):
    return distmod.launched_env({"MASTER_ADDR": "h", "MASTER_PORT": "1", **env})


@pytest.mark.parametrize("env,gpus,visible,device", [
    # torchrun: LOCAL_WORLD_SIZE given; local rank i takes GPU i
    (dict(RANK="9", WORLD_SIZE="16", LOCAL_RANK="1", LOCAL_WORLD_SIZE="8"), 8, "", "cuda:1"),
    # a launcher that sets no LOCAL_WORLD_SIZE (16 ranks on 2 nodes of 8 GPUs) is not refused
    (dict(RANK="11", WORLD_SIZE="16", LOCAL_RANK="3"), 8, "", "cuda:3"),
    # srun --gpus-per-task=1: each rank sees one GPU, whatever its local rank
    (dict(RANK="3", WORLD_SIZE="4", LOCAL_RANK="3", LOCAL_WORLD_SIZE="4"), 1, "5", "cuda:0"),
    # the CPU takes any number of ranks
    (dict(RANK="3", WORLD_SIZE="64", LOCAL_RANK="3", LOCAL_WORLD_SIZE="64"), 0, "", "cpu"),
])
def test_rank_device_under_launchers(monkeypatch, env, gpus, visible, device):
    monkeypatch.setattr(distmod, "visible_gpus", lambda: gpus)
    requested = "cpu" if device == "cpu" else "auto"
    got = distmod.rank_device(requested, _launch_env(**env), {"CUDA_VISIBLE_DEVICES": visible})
    assert got == device


@pytest.mark.parametrize("env,gpus,match", [
    (dict(RANK="3", WORLD_SIZE="4", LOCAL_RANK="3", LOCAL_WORLD_SIZE="4"), 2,
     r"4 ranks on this node but 2 GPU\(s\) visible"),
    (dict(RANK="9", WORLD_SIZE="16", LOCAL_RANK="9"), 8, "local rank 9 but 8 GPU"),
])
def test_rank_device_refuses_ranks_sharing_a_gpu(monkeypatch, env, gpus, match):
    monkeypatch.setattr(distmod, "visible_gpus", lambda: gpus)
    with pytest.raises(UsageError, match=match):
        distmod.rank_device("auto", _launch_env(**env), {})


def _setup_failure_rank(out: str) -> None:
    """One rank of the test below: measure three cases as the runner does, write what it recorded."""
    from harness.measure.context import Context
    from harness.measure.device import Device
    from harness.runner import measure_case

    world = distmod.init("cpu", 60.0)
    ctx = Context(dev=Device("cpu"), rank=world.rank, world_size=world.world_size,
                  options={"coll_sizes": "4K:4K", "coll_iters": 2, "dtypes": ["fp32"]})
    got = []
    for case in coll.cases("quick", ctx)[:3]:  # all_reduce, then all_gather out of and in place
        status, _, error = measure_case(case, ctx)
        got.append({"op": case.op, "status": status, "error": error})
    Path(out, f"rank{world.rank}.json").write_text(json.dumps(got))
    distmod.destroy(world)


@pytest.mark.parametrize("hook,verb,stage", [("1:all_reduce", "set up", "setup"),
                                             ("1:all_reduce:check", "check", "check")])
def test_failure_on_one_rank_fails_the_case_on_every_rank(tmp_path, hook, verb, stage):
    """Rank 1 cannot set up all_reduce (or check its first result): both ranks record it
    failed, naming rank 1, at once (not after the 60 s --dist-timeout), and go on to measure
    all_gather together."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
               MASTER_PORT=str(distmod.free_port()), OMP_NUM_THREADS="1",
               **{coll.FAIL_SETUP_ENV: hook})
    code = ("import sys; from tests.test_collectives import _setup_failure_rank; "
            "_setup_failure_rank(sys.argv[1])")
    t0 = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                              env=dict(env, RANK=str(r), LOCAL_RANK=str(r)), stderr=subprocess.PIPE,
                              text=True) for r in range(2)]
    errs = [p.communicate(timeout=120)[1] for p in procs]
    elapsed = time.monotonic() - t0
    assert [p.returncode for p in procs] == [0, 0], errs
    assert elapsed < 30, elapsed  # start-up is ~5 s here; waiting out the timeout would be 60+
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert seen[0] == seen[1]  # every rank recorded the same thing
    first, *later = seen[0]
    assert first["op"] == "all_reduce" and first["status"] == "failed"
    assert first["error"] == (f"RankFailed: rank 1 of 2 could not {verb} all_reduce: RuntimeError: "
                              f"{stage} failure injected by {coll.FAIL_SETUP_ENV}")
    assert [(r["op"], r["status"]) for r in later] == [("all_gather", "ok"), ("all_gather", "ok")]


def test_sbatch_parses_and_dry_runs():
    assert subprocess.run(["bash", "-n", str(SBATCH)]).returncode == 0
    env = dict(os.environ, DRY_RUN="1", SLURM_NNODES="2", GPUS_PER_NODE="4", NCCL_ALGO="Ring",
               MASTER_PORT="29511", SLURM_JOB_ID="77")
    env.pop("SLURM_JOB_NODELIST", None)
    p = subprocess.run(["bash", str(SBATCH), "--suite", "quick"], capture_output=True, text=True,
                       env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    cmd = p.stdout.strip().splitlines()[-1]
    for part in ("srun", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=4",
                 "--rdzv-backend=c10d", ":29511", "--rdzv-id=gwbench-77", "-m harness run",
                 "--suite quick"):
        assert part in cmd, (part, cmd)
    assert "NCCL_ALGO=Ring" in p.stdout
    p2 = subprocess.run(["bash", str(SBATCH), "--dry-run"], capture_output=True, text=True,
                        env=dict(env, DRY_RUN="0"), timeout=30)
    assert p2.returncode == 0 and "--only collectives --suite standard" in p2.stdout


@pytest.mark.gpu
def test_nccl_facts_on_gpu():
    assert distmod.nccl_version() is not None
    n = torch.cuda.device_count()
    topo = distmod.nvml_topology(n)
    assert "error" not in topo, topo  # a GPU machine has NVML: its topology must be read
    assert len(topo["nvlink_links_up"]) == n and all(k >= 0 for k in topo["nvlink_links_up"])
    assert set(topo["pcie_path"]) <= {f"{i}-{j}" for i in range(n) for j in range(i + 1, n)}
    assert set(topo["pcie_path"].values()) <= set(distmod._TOPO.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="what a machine without a GPU records")
def test_facts_without_a_gpu_claim_no_topology():
    """With no GPU torch can see, run.json's `distributed` holds no topology, GPUs or NCCL."""
    facts = distmod.facts(distmod.World())
    assert "topology" not in facts
    assert facts["gpus_per_node"] == 0 and facts["nccl_version"] is None and facts["backend"] == "none"


@pytest.mark.gpu
@pytest.mark.multigpu
def test_two_rank_nccl_run(tmp_path):
    p = gwbench("run", "--only", "collectives", "--nproc", "2", "--device", "cuda", "--dtype", "fp32,bf16",
                "--sizes", "1M:64M:8", "--out", str(tmp_path), *FAST)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = _rows(_run_dir(tmp_path))
    assert len(rows) == len(coll.OPS) * 3 * 2
    for r in rows:
        assert r["backend"] == "nccl" and r["status"] == "ok", r["error"]
        assert r["extra"]["wrong"] == 0
    meta = json.loads((_run_dir(tmp_path) / "run.json").read_text())
    assert meta["distributed"]["nccl_version"] and meta["distributed"]["gpus_per_node"] == 2


def _ctx2(fast_ctx):
    return replace(fast_ctx, world_size=2, rank=0)


def _no_peers(monkeypatch):
    """These tests run one process with no process group: skip the set-up agreement (it has
    its own two-rank test, test_failure_on_one_rank_fails_the_case_on_every_rank)."""
    monkeypatch.setattr(coll, "_agree", lambda ctx, case, failure, stage: None)


def test_unsupported_collective_is_a_skipped_row(fast_ctx, monkeypatch):
    def refuse(self):
        raise RuntimeError("ProcessGroupGloo does not support reduce_scatter")

    monkeypatch.setattr(coll._Bufs, "call", refuse)
    _no_peers(monkeypatch)
    ctx = _ctx2(fast_ctx)
    case = next(c for c in coll.cases("quick", ctx) if c.op == "reduce_scatter")
    with pytest.raises(SkipCase, match="gloo in torch .*not supported.*does not support reduce_scatter"):
        coll.run(case, ctx)


def test_lost_peer_stops_the_run(fast_ctx, monkeypatch):
    def reset(self):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer")

    monkeypatch.setattr(coll._Bufs, "call", reset)
    _no_peers(monkeypatch)
    ctx = _ctx2(fast_ctx)
    case = coll.cases("quick", ctx)[0]
    with pytest.raises(distmod.PeerLost, match="rank 0: all_reduce failed .*Connection reset"):
        coll.run(case, ctx)


def test_failure_inside_the_timed_loop_stops_the_run(fast_ctx, monkeypatch):
    # One rank failing mid-case (not in an agreed step) must not go on to the next case: its
    # next collective would pair with the others' pending one.
    calls = {"n": 0}

    def fail_later(self):
        calls["n"] += 1
        if calls["n"] > 1:  # the first call (set-up) passes, a warm-up call fails
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(coll._Bufs, "call", fail_later)
    _no_peers(monkeypatch)
    ctx = _ctx2(fast_ctx)
    case = next(c for c in coll.cases("quick", ctx) if c.op == "all_reduce")
    with pytest.raises(distmod.PeerLost, match="out of step: RuntimeError: CUDA error: an illegal"):
        coll.run(case, ctx)


def test_preflight_refuses_more_ranks_than_gpus(monkeypatch):
    from harness.runner import RunConfig

    monkeypatch.setattr(distmod, "visible_gpus", lambda: 2)
    with pytest.raises(UsageError, match=r"^3 ranks on this node but 2 GPU\(s\) visible"):
        distmod.preflight(RunConfig(device="cuda", nproc=3), 3)
    with pytest.raises(UsageError, match="every rank would use GPU 1"):
        distmod.preflight(RunConfig(device="cuda:1", nproc=2), 2)
    distmod.preflight(RunConfig(device="auto", nproc=2), 2)  # one GPU per rank: accepted


def test_an_oom_on_another_rank_is_a_skipped_row_here(fast_ctx, monkeypatch):
    # What rank 0 records when rank 1 reports an OOM in the set-up agreement (the two-rank
    # test above covers the exchange itself): the runner's rule makes an OOM a skipped row.
    import torch.distributed as dist

    from harness.runner import measure_case

    def rank1_ran_out(said, mine, group=None):
        said[:] = [mine, "OutOfMemoryError: CUDA out of memory. Tried to allocate 8.00 GiB"]

    monkeypatch.setattr(dist, "all_gather_object", rank1_ran_out)
    ctx = _ctx2(fast_ctx)
    case = next(c for c in coll.cases("quick", ctx) if c.op == "all_reduce")
    status, outcome, error = measure_case(case, ctx)
    assert (status, outcome) == ("skipped", None)
    assert "rank 1 of 2 could not set up all_reduce: OutOfMemoryError: CUDA out of memory" in error


@pytest.mark.gpu
def test_one_rank_nccl(tmp_path):
    """The NCCL path on one GPU, as nccl-tests runs with one: algbw measured, busbw 0 for
    all_reduce; sendrecv to itself is a row either way, never a lost run."""
    from harness.measure.context import Context
    from harness.measure.device import resolve
    from harness.measure.timing import Budget
    from harness.runner import measure_case

    ctx = Context(dev=resolve("cuda"), suite="quick", budget=Budget(warmup_s=0.01, rep_s=0.05))
    cases = {(c.op, c.p["size_bytes"]): c for c in coll.cases("quick", ctx)}
    status, outcome, error = measure_case(cases[("all_reduce", 4 << 20)], ctx)
    assert status == "ok", error
    assert outcome.extra["algbw_gbps"] > 0 and outcome.extra["busbw_gbps"] == 0 and outcome.extra["wrong"] == 0
    status, _, error = measure_case(cases[("sendrecv", 4 << 20)], ctx)
    assert status in ("ok", "failed"), error


def test_one_rank_group_is_gone_before_the_next_family_and_at_the_end(tmp_path, monkeypatch):
    """A world of one destroys its one-rank group after the collectives' last case: a live gloo
    group that has run an all_gather kept a core busy and made every later 2-thread matmul (the
    next family's, and the end's stability reference) 1.5x slower on the 2-core CPU."""
    import dataclasses

    import torch.distributed as dist

    from harness.benchmarks import FAMILIES
    from harness.cli import main

    seen = []
    gemm = FAMILIES["gemm"]

    def gemm_run(case, ctx):
        seen.append(dist.is_initialized())
        return gemm.run(case, ctx)

    monkeypatch.setitem(FAMILIES, "gemm", dataclasses.replace(gemm, run=gemm_run))
    args = ["run", "--device", "cpu", "--only", "collectives,gemm", "--dtype", "fp32", "--sizes", "1K:4K:4",
            "--iters", "2", "--out", str(tmp_path), *FAST]
    assert main(args) == 0
    assert seen and not any(seen), "the gemm cases ran beside a live one-rank process group"
    assert not dist.is_initialized()
    rows = _rows(_run_dir(tmp_path))
    assert {r["family"] for r in rows if r["status"] == "ok"} == {"collectives", "gemm"}
