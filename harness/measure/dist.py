"""Multi-rank runs: join a torchrun/SLURM launch, or start N local ranks, and describe them.

Launch choice for `--nproc N`: the parent re-executes the same `gwbench run` command N
times with torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT on a free local port). Every rank then takes exactly the path it
takes under a real `torchrun` or `srun` launch, so one tested path serves all three;
torch.distributed.run's elastic agent would add seconds of start-up, restart semantics and
its own logging, and multiprocessing.spawn would need the whole run configuration pickled.

A rank that never joins or dies: init_process_group and every collective carry the
configured timeout, and the failure surfaces as PeerLost with a message naming it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harness.core.errors import UsageError, one_line
from harness.core.row import tag_rank
from harness.measure.nvml import cuda_uuid
from harness.measure.nvml import handle as nvml_handle

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
DEFAULT_TIMEOUT_S = 300.0


class PeerLost(Exception):
    """Another rank never joined, died or timed out: this run cannot go on."""


@dataclass
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = "none"
    timeout_s: float = DEFAULT_TIMEOUT_S
    host: str = field(default_factory=socket.gethostname)
    ctrl: Any = None  # a gloo group for Python objects (rows, run id); None = default group

    @property
    def active(self) -> bool:
        return self.world_size > 1


def launched_env(environ=os.environ) -> dict | None:
    """torchrun's variables when this process is one rank of a multi-rank launch, else None."""
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        ws, rank = int(environ["WORLD_SIZE"]), int(environ["RANK"])
        local = int(environ.get("LOCAL_RANK", rank))
        local_ws = int(environ.get("LOCAL_WORLD_SIZE", ws))
    except ValueError:
        return None
    if ws <= 1:
        return None
    return {"rank": rank, "world_size": ws, "local_rank": local, "local_world_size": local_ws,
            # Launchers that set only RANK/WORLD_SIZE/LOCAL_RANK leave the node's rank count
            # unknown: the default above is then the whole world, not this node.
            "local_world_size_known": "LOCAL_WORLD_SIZE" in environ,
            "master": f"{environ.get('MASTER_ADDR', '?')}:{environ.get('MASTER_PORT', '?')}"}


NPROC_ENV = "GWBENCH_NPROC"  # set by launch() for its ranks: the world --nproc started


def launched_nproc(environ=os.environ) -> int | None:
    """N when this process is a rank that `gwbench run --nproc N` started, else None (a world
    of one, or a torchrun/srun launch, which only that launcher can restart)."""
    try:
        n = int(environ.get(NPROC_ENV, ""))
    except ValueError:
        return None
    env = launched_env(environ)
    return n if env is not None and env["world_size"] == n else None


def rank_device(requested: str, env: dict | None, environ=os.environ) -> str:
    """Under a launch each rank takes GPU LOCAL_RANK (`auto`/`cuda`); cpu stays cpu.

    A node with more local ranks than GPUs is refused: placing ranks modulo the GPU count
    would put two on one GPU, which NCCL rejects and the other ranks see as a lost peer.
    A rank that sees exactly one GPU through CUDA_VISIBLE_DEVICES was bound to it by its
    launcher (srun --gpus-per-task=1): it takes that GPU, whatever its local rank.
    """
    if env is None:
        return requested
    req = requested.strip().lower()
    gpus = visible_gpus()
    if gpus == 0 or not _GPU_REQUEST.fullmatch(req):
        return requested  # the CPU (gloo takes any number of ranks), or devmod.resolve says why not
    known = env.get("local_world_size_known", True)
    if req not in ("auto", "cuda"):
        if known:
            check_local_ranks(req, env["local_world_size"], gpus)
        return requested
    if gpus == 1 and environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return "cuda:0"
    if known:
        check_local_ranks("cuda", env["local_world_size"], gpus)
    elif env["local_rank"] >= gpus:
        raise UsageError(f"local rank {env['local_rank']} but {gpus} GPU(s) visible: NCCL needs "
                         "one GPU per rank; start as many ranks per node as it has GPUs")
    return f"cuda:{env['local_rank']}"


_GPU_REQUEST = re.compile(r"auto|cuda(:[0-9]+)?")


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_local_ranks(device: str, ranks: int, gpus: int) -> None:
    """Refuse `ranks` ranks on one node that would share a GPU (`device`: cpu, cuda or cuda:N).

    NCCL refuses two ranks of one communicator on one GPU, and the refusal reaches the other
    ranks only as a lost peer after --dist-timeout; gloo on the CPU takes any number of ranks.
    """
    if not device.startswith("cuda") or ranks <= 1:
        return
    if device != "cuda":
        raise UsageError(f"--device {device} with {ranks} ranks on this node: every rank would use "
                         f"GPU {device.partition(':')[2]}; use --device cuda (local rank i takes GPU i)")
    if ranks > gpus:
        raise UsageError(f"{ranks} ranks on this node but {gpus} GPU(s) visible: NCCL needs one GPU "
                         f"per rank; start {gpus} or fewer per node (--nproc, torchrun "
                         "--nproc-per-node) or use --device cpu (gloo)")


def init(backend_device: str, timeout_s: float, environ=os.environ) -> World:
    """Join the process group described by the environment (World() when there is none).

    NCCL on CUDA, gloo on the CPU. The gloo `ctrl` group carries Python objects so
    gathering rows never touches GPU memory.
    """
    env = launched_env(environ)
    if env is None:
        return World(timeout_s=timeout_s)
    import torch.distributed as dist

    backend = "nccl" if backend_device == "cuda" else "gloo"
    timeout = timedelta(seconds=timeout_s)
    try:
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, init_method="env://", timeout=timeout,
                                    rank=env["rank"], world_size=env["world_size"])
        ctrl = dist.new_group(backend="gloo", timeout=timeout) if backend == "nccl" else None
    except Exception as exc:
        raise PeerLost(f"rank {env['rank']}: the process group of {env['world_size']} ranks at "
                       f"{env['master']} did not form within {timeout_s:g} s (a rank never "
                       f"joined?): {one_line(exc)}") from None
    return World(env["rank"], env["world_size"], env["local_rank"], env["local_world_size"],
                 backend, timeout_s, ctrl=ctrl)


def guarded(what: str, world: World):
    """Decorator-free helper: call `fn()` and turn a distributed failure into PeerLost."""

    def call(fn, *args, **kw):
        try:
            return fn(*args, **kw)
        except PeerLost:
            raise
        except Exception as exc:
            raise PeerLost(f"rank {world.rank}: {what} failed (another rank died or timed out "
                           f"after {world.timeout_s:g} s?): {one_line(exc)}") from None
    return call


def broadcast_object(world: World, obj: Any) -> Any:
    if not world.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    guarded("broadcast of the run id", world)(dist.broadcast_object_list, box, src=0, group=world.ctrl)
    return box[0]


def gather_rows(world: World, row: dict) -> list[dict] | None:
    """Rank 0 gets every rank's row (rank order); other ranks get None."""
    if not world.active:
        return [row]
    import torch.distributed as dist

    box: list | None = [None] * world.world_size if world.rank == 0 else None
    guarded("gathering rows", world)(dist.gather_object, row, box, dst=0, group=world.ctrl)
    return box


def keep_rows(world: World, family: str, row: dict, run_id: str) -> list[dict]:
    """The rows this rank writes after a case. A world of one: its row, as built. Under a
    multi-rank launch every rank's row is tagged with host, rank and local GPU and gathered;
    rank 0 keeps one row of a collective (every rank measured the same call) and every
    rank's row of a per-device family; the other ranks keep their own, in memory."""
    if not world.active:
        return [row]
    tagged = tag_rank(row, world.host, world.rank, world.local_rank)
    got = gather_rows(world, tagged)
    if world.rank != 0:
        return [tagged]
    if family == "collectives":
        return [got[0]]
    return [r | {"run_id": run_id} for r in got]


def all_hosts(world: World) -> list[str]:
    if not world.active:
        return [world.host]
    import torch.distributed as dist

    box: list = [None] * world.world_size
    guarded("gathering host names", world)(dist.all_gather_object, box, world.host, group=world.ctrl)
    return box


def destroy(world: World) -> None:
    if not world.active:
        return
    try:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:
        pass  # a dead peer can make teardown fail; the rows are already written


def facts(world: World) -> dict:
    """World size, nodes, GPUs per node, NCCL version and NCCL_* environment, topology."""
    import torch

    hosts = all_hosts(world)
    per_node = {h: hosts.count(h) for h in dict.fromkeys(hosts)}
    out: dict = {"world_size": world.world_size, "backend": world.backend,
                 "nodes": len(per_node), "ranks_per_node": per_node,
                 "gpus_per_node": max(per_node.values()) if world.backend == "nccl" else 0,
                 "timeout_s": world.timeout_s, "nccl_version": nccl_version(),
                 "nccl_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("NCCL_")},
                 "torch": torch.__version__}
    if torch.cuda.is_available():
        out["topology"] = nvml_topology(torch.cuda.device_count())
    return out


def nccl_version() -> str | None:
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        v = torch.cuda.nccl.version()
        return ".".join(map(str, v)) if isinstance(v, tuple) else str(v)
    except Exception:
        return None


_TOPO = {0: "same board", 10: "single PCIe switch", 20: "multiple PCIe switches",
         30: "PCIe host bridge", 40: "same NUMA node (SMP)", 50: "across NUMA nodes (SYS)"}


def nvml_topology(count: int) -> dict:
    """NVLink links up per GPU and the PCIe path between each pair, where NVML tells."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception as exc:
        return {"error": f"NVML unavailable: {one_line(exc)}"}
    try:
        handles = [nvml_handle(pynvml, i, uuid=cuda_uuid(i)) for i in range(count)]
        links = []
        for h in handles:
            up = 0
            for link in range(getattr(pynvml, "NVML_NVLINK_MAX_LINKS", 18)):
                try:
                    up += pynvml.nvmlDeviceGetNvLinkState(h, link) == 1
                except Exception:
                    break
            links.append(up)
        pairs = {}
        for i in range(count):
            for j in range(i + 1, count):
                try:
                    lvl = pynvml.nvmlDeviceGetTopologyCommonAncestor(handles[i], handles[j])
                    pairs[f"{i}-{j}"] = _TOPO.get(int(lvl), str(lvl))
                except Exception:
                    continue
        return {"nvlink_links_up": links, "pcie_path": pairs}
    except Exception as exc:
        return {"error": one_line(exc)}
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def free_port() -> int:
    """A port free now (another process could take it before rank 0 binds: rare, retried by
    the user; torchrun's standalone mode has the same race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strip_nproc(argv: list[str]) -> list[str]:
    """The child's argv: the parent's without `--nproc N` / `--nproc=N`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def preflight(cfg, nproc: int) -> None:
    """Check the ranks' configuration once, here, before any rank starts; raises UsageError.

    Otherwise every rank finds the same bad argument and prints it: N copies of one line,
    after N torch imports. `cfg` is the RunConfig the ranks build from the same argv.
    """
    from harness.measure import device as devmod

    cfg.validate()
    req, gpus = cfg.device.strip().lower(), visible_gpus()
    if gpus == 0 or not _GPU_REQUEST.fullmatch(req):
        # Resolving opens no CUDA context in this process then (there is no GPU, or the
        # name is refused first): the ranks' own device errors, said once.
        devmod.resolve(cfg.device)
        return
    check_local_ranks("cuda" if req == "auto" else req, nproc, gpus)


def launch(nproc: int, argv: list[str], timeout_s: float, cfg) -> int:
    """Start `nproc` local ranks of `python -m harness <argv>`; rank 0 prints, the rest are quiet.

    The arguments are checked first (preflight). The ranks share a process group of their own:
    SIGINT or SIGTERM to this launcher (a terminal's Ctrl-C reaches only it) is forwarded to
    that group once, the ranks record `interrupted`, and the launcher exits 130. A rank's usage
    error (exit 2, e.g. the run folder's lock is held) stops the others at once; when another
    rank fails they get the timeout to notice (they fail with PeerLost), then are stopped; the
    exit code is rank 0's, or the first non-zero one.
    """
    preflight(cfg, nproc)
    port = free_port()
    procs: list[subprocess.Popen] = []
    signalled: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: signalled.append(signum))
           for s in (signal.SIGINT, signal.SIGTERM)}
    codes: dict[int, int] = {}
    try:
        for rank in range(nproc):
            if signalled:
                break
            env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc),
                       LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                       GROUP_RANK="0", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"),
                       **{NPROC_ENV: str(nproc)})
            stdout = None if rank == 0 else subprocess.DEVNULL
            procs.append(subprocess.Popen([sys.executable, "-m", "harness", *argv], env=env, stdout=stdout,
                                          process_group=procs[0].pid if procs else 0))
        deadline, forwarded = None, False
        while len(codes) < len(procs):
            if signalled and not forwarded:  # forwarded from here, not the handler: no race with Popen
                _signal_ranks(procs, signalled[0])
                forwarded = True
                # A rank blocked in a collective notices when it returns (or times out).
                deadline = time.monotonic() + min(timeout_s, 60) + 15
            if len(signalled) > 1:  # asked twice: stop now
                deadline = time.monotonic()
            for i, p in enumerate(procs):
                if i not in codes and p.poll() is not None:
                    codes[i] = p.returncode
                    if p.returncode == 2 and not forwarded:  # a usage error: the others cannot go on
                        _signal_ranks(procs, signal.SIGTERM)
                        forwarded = True
                        deadline = time.monotonic() + 15
                    if (p.returncode not in (0, 1) or i == 0) and deadline is None:
                        # Every case gathers to rank 0: without it the others can only time out.
                        deadline = time.monotonic() + (15 if i == 0 else timeout_s + 15)
            if deadline is not None and time.monotonic() > deadline:
                for i, p in enumerate(procs):
                    if i not in codes:
                        p.kill()
                        codes[i] = p.wait()
                        print(f"gwbench: rank {i} stopped: it did not finish after another rank "
                              "failed or the run was interrupted", file=sys.stderr)
            time.sleep(0.05)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for p in procs:  # only when this function itself fails: no rank outlives its launcher
            if p.poll() is None:
                p.kill()
                p.wait()
    if signalled:
        return 130
    if 2 in codes.values():
        return 2
    return codes[0] if codes[0] != 0 else next((c for c in codes.values() if c), 0)


def _signal_ranks(procs: list[subprocess.Popen], signum: int) -> None:
    """`signum` to the ranks' process group (they share the first rank's)."""
    if not procs:
        return
    try:
        os.killpg(procs[0].pid, signum)
    except ProcessLookupError:  # every rank has exited already
        pass
