"""The run loop: expand cases, measure each, append its row, survive everything.

A failing case is a `failed` row and the run goes on; a case that cannot run here or
does not fit in memory is a `skipped` row; SIGINT/SIGTERM stop after the rows already
written, mark run.json `interrupted` and `--resume` finishes the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.measure import device as devmod
from harness.measure import dist as distmod
from harness.benchmarks import FAMILIES
from harness.core.cases import Case, check_dtypes, check_names, check_suite, select
from harness.measure.context import Context, Outcome
from harness.core.errors import Interrupted, SkipCase, UsageError, one_line
from harness.core.flops import gbps, tflops
from harness.measure.timing import Budget, timer_overhead_s
from harness.core.store import SCHEMA_VERSION, RunStore, git_info, make_run_id, now_iso

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_SUSTAIN_S = 3600.0


@dataclass
class RunConfig:
    """Everything that decides which cases run and how; stored in run.json for --resume."""

    suite: str = "quick"
    only: list[str] = field(default_factory=list)
    device: str = "auto"
    dtypes: list[str] | None = None
    search: bool = False
    m_range: str | None = None
    n_range: str | None = None
    k_range: str | None = None
    data: str = "randn"
    warmup_ms: float = 25.0
    rep_ms: float = 100.0
    sustain_s: float | None = None  # None: 5 s for power cases when power is readable
    cooldown_s: float = 0.0
    telemetry: str = "auto"
    sample_hz: float = 100.0
    idle_s: float = 2.0
    nproc: int = 1  # local ranks `gwbench run` starts itself (harness/dist.py)
    dist_timeout_s: float = distmod.DEFAULT_TIMEOUT_S
    coll_sizes: str | None = None  # collectives: MIN:MAX[:FACTOR] (nccl-tests -b/-e/-f)
    coll_iters: int | None = None  # collectives: timed calls per trial (nccl-tests -n)
    attn_backends: list[str] | None = None  # attention: backends to measure (default all)

    def validate(self) -> None:
        check_suite(self.suite)
        check_names(self.only, FAMILIES, "family")
        check_dtypes(self.dtypes)
        if self.data not in ("randn", "zeros"):
            raise UsageError(f"--data {self.data!r}: choose randn or zeros")
        if not (0 <= self.warmup_ms <= 60_000 and 0 < self.rep_ms <= 600_000):
            raise UsageError("--warmup-ms must be in [0, 60000] and --rep-ms in (0, 600000]")
        if self.sustain_s is not None and not (0 <= self.sustain_s <= MAX_SUSTAIN_S):
            raise UsageError(f"--sustain {self.sustain_s:g}: must be between 0 and {MAX_SUSTAIN_S:g} seconds")
        if not 0 <= self.cooldown_s <= MAX_SUSTAIN_S:
            raise UsageError(f"--cooldown {self.cooldown_s:g}: must be between 0 and {MAX_SUSTAIN_S:g} seconds")
        if self.telemetry not in ("auto", "nvml", "rapl", "none"):
            raise UsageError(f"--telemetry {self.telemetry!r}: choose auto, nvml, rapl or none")
        if not 0 < self.sample_hz <= 10_000:
            raise UsageError(f"--sample-hz {self.sample_hz:g}: must be in (0, 10000]")
        if not 0 <= self.idle_s <= 600:
            raise UsageError(f"--idle {self.idle_s:g}: must be in [0, 600] seconds")
        if not 1 <= self.nproc <= 1024:
            raise UsageError(f"--nproc {self.nproc}: must be between 1 and 1024")
        if not 0 < self.dist_timeout_s <= 86_400:
            raise UsageError(f"--dist-timeout {self.dist_timeout_s:g}: must be in (0, 86400] seconds")
        if self.coll_iters is not None and not 1 <= self.coll_iters <= 100_000:
            raise UsageError(f"--iters {self.coll_iters}: must be between 1 and 100000")
        if self.search and self.only and self.only != ["gemm"]:
            raise UsageError(f"--search is the GEMM family's; it cannot run with --only {','.join(self.only)}")
        if self.coll_sizes:  # checked up front, whichever families run
            from harness.benchmarks.collectives import parse_sizes

            parse_sizes(self.coll_sizes)
        from harness.benchmarks.attention import check_backends

        check_backends(self.attn_backends)

    def families(self) -> list[str]:
        if self.search:  # the maximum-achievable search is GEMM's alone (validate() checks --only)
            return ["gemm"]
        return self.only or list(FAMILIES)

    def options(self) -> dict[str, Any]:
        return {"search": self.search, "m_range": self.m_range, "n_range": self.n_range,
                "k_range": self.k_range, "data": self.data, "dtypes": self.dtypes,
                "coll_sizes": self.coll_sizes, "coll_iters": self.coll_iters,
                "attn_backends": self.attn_backends}


def expand(cfg: RunConfig, ctx: Context) -> list[Case]:
    out: list[Case] = []
    for name in cfg.families():
        out.extend(FAMILIES[name].cases(cfg.suite, ctx))
    return select(out, cfg.dtypes)


def make_context(cfg: RunConfig, dev: devmod.Device) -> Context:
    budget = Budget(warmup_s=cfg.warmup_ms / 1e3, rep_s=cfg.rep_ms / 1e3)
    return Context(dev=dev, suite=cfg.suite, budget=budget, options=cfg.options())


def measure_case(case: Case, ctx: Context) -> tuple[str, Outcome | None, str | None]:
    """(status, outcome, error) for one case; only an interruption escapes."""
    family = FAMILIES[case.family]
    try:
        outcome = family.run(case, ctx)
    except SkipCase as exc:
        return "skipped", None, str(exc)
    except (KeyboardInterrupt, Interrupted, distmod.PeerLost):
        raise
    except Exception as exc:
        if _is_oom(exc):
            ctx.dev.empty_cache()
            return "skipped", None, f"out of memory: {one_line(exc)}"
        return "failed", None, f"{type(exc).__name__}: {one_line(exc)}"
    finally:
        gc.collect()
    if outcome.check is not None and not outcome.check.get("ok", False):
        chk = outcome.check
        return "failed", outcome, (f"wrong result: max relative error {chk.get('max_rel_err')!r} "
                                   f"> tolerance {chk.get('tol')!r} ({chk.get('reference')})")
    return "ok", outcome, None


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    text = str(exc).lower()
    return "out of memory" in text or "can't allocate memory" in text


def build_row(case: Case, run_id: str, status: str, outcome: Outcome | None,
              error: str | None, started_at: str, wall_s: float) -> dict:
    row: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "run_id": run_id,
                           **case.identity(), "status": status, "error": error,
                           "started_at": started_at, "wall_s": wall_s}
    row.update({"samples_s": None, "flop": None, "bytes": None, "tflops": None,
                "tflops_best": None, "gbps": None, "check": None, "extra": {},
                "power_w": None, "energy_j": None,
                "power_source": "not measured: case did not run"})
    if outcome is None:
        return row
    m = outcome.measurement
    stats = m.stats()
    row.update(stats)
    row.update({"samples_s": m.samples_s, "n_warmup": m.n_warmup, "estimate_s": m.estimate_s,
                "window_s": m.window_s, "sustained": m.sustained, "flop": outcome.flop,
                "bytes": outcome.nbytes, "check": outcome.check, "extra": outcome.extra})
    t, tmin = stats["time_s"], stats["time_min_s"]
    if outcome.flop and t > 0:
        row["tflops"] = tflops(outcome.flop, t)
        row["tflops_best"] = tflops(outcome.flop, tmin) if tmin > 0 else None
    if outcome.nbytes and t > 0:
        row["gbps"] = gbps(outcome.nbytes, t)
    tel = dict(m.telemetry or {})
    if "window_s" in tel:  # the telemetry clock's view of the window; ours stays window_s
        tel["telemetry_window_s"] = tel.pop("window_s")
    row.update(tel)
    if not m.telemetry:
        row["power_source"] = "unavailable: no telemetry window"
    power = row.get("power_w")
    if power:
        row["tflops_per_w"] = row["tflops"] / power if row["tflops"] else None
        row["gbps_per_w"] = row["gbps"] / power if row["gbps"] else None
    return row


class _SignalGuard:
    """SIGINT and SIGTERM stop the run between rows, never in the middle of writing one.

    Outside `critical()` a signal raises at once (a long case is abandoned, unrecorded);
    inside, it is held until the row is on disk.
    """

    def __enter__(self):
        self._pending: int | None = None
        self._critical = False

        def on_signal(signum, frame):
            if self._critical:
                self._pending = signum
                return
            raise Interrupted(f"signal {signum}")

        self._old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)
        return False

    @contextlib.contextmanager
    def critical(self):
        self._critical = True
        try:
            yield
        finally:
            self._critical = False
        if self._pending is not None:
            raise Interrupted(f"signal {self._pending}")


def run(cfg: RunConfig, out: Path, argv: list[str], resume: Path | None = None,
        console=None, on_row: Callable[[dict], None] | None = None) -> tuple[int, RunStore]:
    """Run (or resume) a whole suite; returns the exit code and the store."""
    from harness.present import progress as prog

    if resume is not None:
        store = RunStore.open(resume)
        store.drop_partial_tail()
        known = {f.name for f in dataclasses.fields(RunConfig)}
        cfg = RunConfig(**{k: v for k, v in store.meta.get("config", {}).items() if k in known})
        if store.meta.get("status") == "complete":
            raise UsageError(f"{resume}: this run is already complete; nothing to resume")
        done = {r["case_id"] for r in store.rows()}
    cfg.validate()
    env = distmod.launched_env()
    if env is not None and resume is not None:
        raise UsageError("--resume of a multi-rank run is not supported: start a new run")
    dev = devmod.resolve(distmod.rank_device(cfg.device, env))
    world = distmod.init(dev.backend, cfg.dist_timeout_s)  # PeerLost if a rank never joins
    ctx = make_context(cfg, dev)
    ctx.rank, ctx.world_size, ctx.local_rank = world.rank, world.world_size, world.local_rank
    ctx.ctrl = world.ctrl
    ctx.options["dist_timeout_s"] = cfg.dist_timeout_s
    all_cases = expand(cfg, ctx)
    tel = _telemetry(cfg, dev)
    dist_facts = distmod.facts(world) if world.active else None  # every rank takes part
    if world.rank != 0:  # only rank 0 writes the run folder; the others keep rows in memory
        store, done = _RankStore(distmod.broadcast_object(world, None)), set()
        console = _quiet_console()
    elif resume is None:
        facts = devmod.facts(dev)
        meta = {
            "argv": argv, "config": vars(cfg) | {"device": f"{dev.backend}" if not dev.is_cuda
                                                 else f"cuda:{dev.index}"},
            "git": git_info(), "started_at": now_iso(), "finished_at": None,
            "device": facts, "timer_overhead_s": timer_overhead_s(dev),
            "n_cases": len(all_cases),
        }
        if dist_facts is not None:
            meta["distributed"] = dist_facts
        store = RunStore.create(out, make_run_id(facts["host"], dev.backend), meta)
        distmod.broadcast_object(world, store.meta["run_id"])
        done = set()
    else:
        store.write_meta(status="running", resumed_at=now_iso(),
                         resume_argv=argv, n_cases=len(all_cases))
    todo = [c for c in all_cases if c.id not in done]
    ctx.window = (lambda: tel.window(sync=dev.sync)) if tel is not None else None
    status, lost = "failed", None
    # Everything imported so far (torch holds ~10^6 objects) is long-lived: freezing it keeps
    # the per-case gc.collect() in measure_case from re-scanning it (0.2-0.4 s a case on a CPU).
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        with _SignalGuard() as guard:
            if resume is None and world.rank == 0:
                store.write_meta(**_telemetry_run_start(tel, cfg, store))
            with prog.Progress(len(todo), console) as bar:
                for case in todo:
                    bar.start(case)
                    row = _run_one(case, ctx, cfg, tel, store.meta["run_id"])
                    kept = _gather(world, case, row, store.meta["run_id"])
                    with guard.critical():
                        for r in kept:
                            store.append(r)
                    bar.done(row)
                    if on_row:
                        on_row(row)
        status = "complete"
    except (KeyboardInterrupt, Interrupted):
        status = "interrupted"
    except distmod.PeerLost as exc:  # rows written so far stay; the CLI prints the message
        lost = exc
    finally:
        if frozen_before == 0:  # a caller that runs the harness in-process gets its gc back
            gc.unfreeze()
        extra = _telemetry_run_end(tel)  # every rank closes its telemetry; rank 0's is recorded
        if world.rank != 0:
            extra = {}
        if lost is not None:
            extra["error"] = str(lost)
        rows = store.rows()
        counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
        store.write_meta(status=status, finished_at=now_iso(), counts=counts, **extra)
        if lost is None:
            distmod.destroy(world)
    if lost is not None:
        raise lost
    if status == "interrupted":
        return EXIT_INTERRUPTED, store
    return (EXIT_FAILED if counts["failed"] else EXIT_OK), store


class _RankStore:
    """A rank other than 0: the same interface as RunStore, rows kept in memory only."""

    dir = None

    def __init__(self, run_id: str):
        self.meta: dict = {"run_id": run_id}
        self._rows: list[dict] = []

    def write_meta(self, **fields: Any) -> None:
        self.meta.update(fields)

    def append(self, row: dict) -> None:
        self._rows.append(row)

    def rows(self) -> list[dict]:
        return list(self._rows)


def _quiet_console():
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def _gather(world: distmod.World, case: Case, row: dict, run_id: str) -> list[dict]:
    """The rows this rank writes after a case: all of them alone; under a multi-rank launch
    rank 0 keeps its own row of a collective (one per case) and every rank's row of a
    per-device family (tagged with host, rank and local GPU), the others keep theirs in memory."""
    if not world.active:
        return [row]
    tagged = row | {"host": world.host, "rank": world.rank, "local_rank": world.local_rank}
    got = distmod.gather_rows(world, tagged)
    if world.rank != 0:
        return [tagged]
    if case.family == "collectives":
        return [got[0]]
    return [r | {"run_id": run_id} for r in got]


def _run_one(case: Case, ctx: Context, cfg: RunConfig, tel, run_id: str) -> dict:
    started = now_iso()
    t0 = time.perf_counter()
    base_budget = ctx.budget
    sustain = _sustain_for(case, ctx, cfg, tel)
    if sustain:
        ctx.budget = Budget(base_budget.warmup_s, base_budget.rep_s, base_budget.min_reps,
                            base_budget.max_reps, sustain_s=sustain)
    try:
        status, outcome, error = measure_case(case, ctx)
    finally:
        ctx.budget = base_budget
    row = build_row(case, run_id, status, outcome, error, started, time.perf_counter() - t0)
    if outcome is not None:
        _add_window_flags(row, outcome)
    if sustain and cfg.cooldown_s:
        time.sleep(cfg.cooldown_s)
    return row


def _sustain_for(case: Case, ctx: Context, cfg: RunConfig, tel) -> float | None:
    family = FAMILIES[case.family]
    is_power = getattr(family, "power_case", None)
    if is_power is None or not is_power(case, ctx.dev.backend):
        return None
    if cfg.sustain_s is not None:
        return cfg.sustain_s or None  # --sustain 0 switches it off
    readable = tel is not None and not str(tel.source).startswith("unavailable")
    return 5.0 if (ctx.dev.is_cuda and readable) else None


def _add_window_flags(row: dict, outcome: Outcome) -> None:
    from harness.measure import telemetry

    m = outcome.measurement
    row["telemetry_short_window"] = telemetry.short_window(m.window_s, len(m.samples_s))
    if m.sustained:
        row["sustain_slowdown"] = telemetry.slowdown(m.samples_s)


def _telemetry(cfg: RunConfig, dev: devmod.Device):
    from harness.measure import telemetry

    try:
        return telemetry.Telemetry.create(cfg.telemetry, device_indices=[dev.index],
                                          sample_hz=cfg.sample_hz,
                                          gpu=dev.is_cuda)
    except UsageError:
        raise
    except Exception as exc:  # telemetry must never stop a run
        print(f"gwbench: warning: telemetry disabled: {one_line(exc)}", file=sys.stderr)
        return None


def _telemetry_run_start(tel, cfg: RunConfig, store: RunStore) -> dict:
    if tel is None:
        return {"telemetry": {"source": "unavailable: telemetry failed to start"}}
    info: dict = {"telemetry": {"source": tel.source, "sample_hz": cfg.sample_hz}}
    if cfg.idle_s > 0:
        info["idle"] = tel.idle(cfg.idle_s)
    tel.start_run_trace(store.dir / "power.csv")
    return info


def _telemetry_run_end(tel) -> dict:
    if tel is None:
        return {}
    try:
        total = tel.stop_run_trace()
        tel.close()
        return {"run_energy": total}
    except Exception as exc:
        return {"run_energy": {"error": one_line(exc)}}
