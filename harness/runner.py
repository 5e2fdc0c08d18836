"""The run loop: expand cases, measure each, append its row, survive everything.

    plan (new run, or what a resumed one still lacks)
      -> join the world (a world of one, or the ranks of a torchrun/srun/--nproc launch)
      -> one Context, built once -> the cases -> the run folder (rank 0 writes it)
      -> for each case: measure (a family's run) -> core.row.build_row -> gather -> append
      -> run.json: complete | interrupted | failed, with counts

A single process is a world of one (measure/dist.py), so the loop has no rank branches: the
world decides which rows a rank keeps, and only rank 0's store writes to disk. A failing case
is a `failed` row and the run goes on; a case that cannot run here or does not fit in memory
is a `skipped` row; SIGINT/SIGTERM stop after the rows already written, mark run.json
`interrupted`, and `--resume` finishes the rest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import signal
import sys
import time
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.benchmarks import FAMILIES
from harness.core.cases import Case, check_dtypes, check_names, check_suite, select
from harness.core.errors import Interrupted, SkipCase, StorageError, UsageError, clip, one_line
from harness.core.result import Outcome
from harness.core.row import build_row
from harness.core.stats import STATISTICS
from harness.core.store import RunLock, RunStore, git_info, make_run_id, now_iso, read_meta
from harness.measure import device as devmod
from harness.measure import dist as distmod
from harness.measure.context import Context
from harness.measure.timing import Budget, timer_overhead_s

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
MAX_SUSTAIN_S = 3600.0
DEFAULT_SUSTAIN_S = 5.0  # a power case's window on a GPU whose power is readable


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
    sustain_s: float | None = None  # None: DEFAULT_SUSTAIN_S for power cases when power is readable
    cooldown_s: float = 0.0
    telemetry: str = "auto"
    sample_hz: float = 100.0
    idle_s: float = 2.0
    nproc: int = 1  # local ranks `gwbench run` starts itself (measure/dist.py)
    dist_timeout_s: float = distmod.DEFAULT_TIMEOUT_S
    coll_sizes: str | None = None  # collectives: MIN:MAX[:FACTOR] (nccl-tests -b/-e/-f)
    coll_iters: int | None = None  # collectives: timed calls per trial (nccl-tests -n)
    attn_backends: list[str] | None = None  # attention: backends to measure (default all)
    model: str | None = None  # GEMM: measure this model's layer shapes (preset or config file)
    model_tp: int = 1  # ... at this tensor parallelism,
    model_micro_batch: int = 1  # micro-batch (sequences)
    model_seq: int = 8192  # and sequence length
    # Issue 16: the GEMM method (None: mamf-finder's choices, benchmarks/gemm.py), the search's
    # ranking statistic, nccl-tests' -w / -c (None: its defaults), the copy sizes of memory.
    b_layout: list[str] | None = None
    out_rewrite: list[bool] | None = None
    fp8_out: list[str] | None = None
    search_stat: str = "mean"
    coll_warmup: int | None = None
    coll_check: int | None = None
    transfer_sizes: str | None = None

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
        if self.search_stat not in STATISTICS:
            raise UsageError(f"--search-stat {self.search_stat!r}: choose {', '.join(STATISTICS)}")
        if self.coll_warmup is not None and not 0 <= self.coll_warmup <= 100_000:
            raise UsageError(f"--warmup-iters {self.coll_warmup}: must be between 0 and 100000")
        if self.coll_check is not None and not 0 <= self.coll_check <= 1000:
            raise UsageError(f"--check-iters {self.coll_check}: must be between 0 and 1000")
        if self.search and self.only and self.only != ["gemm"]:
            raise UsageError(f"--search is the GEMM family's; it cannot run with --only {','.join(self.only)}")
        for family in FAMILIES.values():  # each family checks the options it owns, whichever run
            family.check_options(self.options())

    def families(self) -> list[str]:
        if self.search:  # the maximum-achievable search is GEMM's alone (validate() checks --only)
            return ["gemm"]
        return self.only or list(FAMILIES)

    def options(self) -> dict[str, Any]:
        return {"search": self.search, "m_range": self.m_range, "n_range": self.n_range,
                "k_range": self.k_range, "data": self.data, "dtypes": self.dtypes,
                "coll_sizes": self.coll_sizes, "coll_iters": self.coll_iters,
                "attn_backends": self.attn_backends, "dist_timeout_s": self.dist_timeout_s,
                "model": self.model, "model_tp": self.model_tp, "model_micro_batch": self.model_micro_batch,
                "model_seq": self.model_seq,
                "b_layout": self.b_layout, "out_rewrite": self.out_rewrite, "fp8_out": self.fp8_out,
                "coll_warmup": self.coll_warmup, "coll_check": self.coll_check,
                "transfer_sizes": self.transfer_sizes}

    def budget(self) -> Budget:
        return Budget(warmup_s=self.warmup_ms / 1e3, rep_s=self.rep_ms / 1e3)


def expand(cfg: RunConfig, ctx: Context) -> list[Case]:
    out: list[Case] = []
    for name in cfg.families():
        out.extend(FAMILIES[name].cases(cfg.suite, ctx))
    return select(out, cfg.dtypes)


def make_context(cfg: RunConfig, dev: devmod.Device, world: distmod.World | None = None,
                 window: Callable[[], Any] | None = None) -> Context:
    """The one Context of a run (or of `gwbench list`), built once and never changed."""
    world = world or distmod.World()
    return Context(dev=dev, suite=cfg.suite, budget=cfg.budget(), options=cfg.options(),
                   window=window, rank=world.rank, world_size=world.world_size,
                   local_rank=world.local_rank, ctrl=world.ctrl)


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
    if outcome.check is not None and not outcome.check.ok:
        return "failed", outcome, outcome.check.failure
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


def sustain_for(case: Case, cfg: RunConfig, dev: devmod.Device, power_readable: bool) -> float | None:
    """Seconds of sustained window for `case`, or None for the ordinary time budget."""
    if not FAMILIES[case.family].power_case(case, dev.backend):
        return None
    if cfg.sustain_s is not None:
        return cfg.sustain_s or None  # --sustain 0 switches it off
    return DEFAULT_SUSTAIN_S if (dev.is_cuda and power_readable) else None


def expected_s(case: Case, cfg: RunConfig, dev: devmod.Device, power_readable: bool) -> float:
    """A case's expected wall time, for the progress bar's ETA: its warm-up and timing budgets,
    its sustained window if it has one, and a fixed allowance for set-up and the result check."""
    sustain = sustain_for(case, cfg, dev, power_readable) or 0.0
    return (cfg.warmup_ms + (0.0 if sustain else cfg.rep_ms)) / 1e3 + sustain + cfg.cooldown_s * bool(sustain) + 0.2


def run_case(case: Case, ctx: Context, run_id: str, sustain_s: float | None) -> dict:
    """Measure one case (in a sustained window when `sustain_s` is given) and build its row."""
    started, t0 = now_iso(), time.perf_counter()
    if sustain_s:
        ctx = dataclasses.replace(ctx, budget=dataclasses.replace(ctx.budget, sustain_s=sustain_s))
    status, outcome, error = measure_case(case, ctx)
    return build_row(case, run_id, status, outcome, error=error, started_at=started,
                     wall_s=time.perf_counter() - t0)


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


@dataclass
class _Plan:
    """What a run will do: its configuration, and for a resume the locked store (rank 0) and
    the rows already there, as (case id, rank) keys."""

    cfg: RunConfig
    store: RunStore | None = None
    done: set[tuple[str, int]] = field(default_factory=set)


def _plan(cfg: RunConfig, resume: Path | None, env: dict | None) -> _Plan:
    """A new run's validated configuration, or what a resumed run still lacks. The writer of a
    resumed folder (rank 0) takes its lock before anything else and, only then and only when
    the run is not complete, repairs a last line cut short (RunStore.repair_tail); the other
    ranks read run.json and learn the rows from rank 0."""
    if resume is None:
        cfg.validate()
        return _Plan(cfg)
    writer = env is None or env["rank"] == 0
    store = RunStore.open(resume, write=True) if writer else None
    try:
        meta = store.meta if store is not None else read_meta(resume)
        cfg = stored_config(meta, resume)
        _check_world(meta, env, resume)
        done: set[tuple[str, int]] = set()
        if store is not None:
            fixed = store.repair_tail()
            if fixed not in (None, "kept"):
                print(f"gwbench: warning: {store.rows_file}: {fixed}", file=sys.stderr)
            done = {_row_key(r) for r in store.rows()}
    except BaseException:
        if store is not None:
            store.close()
        raise
    return _Plan(cfg, store, done)


def stored_config(meta: dict, run_dir: Path) -> RunConfig:
    """The RunConfig a run folder's run.json records, type-checked and validated; a complete
    run, or one without a configuration (an imported one), cannot be resumed."""
    if meta.get("status") == "complete":
        raise UsageError(f"{run_dir}: this run is already complete; nothing to resume")
    config = meta.get("config")
    if not isinstance(config, dict) or not config:
        raise UsageError(f"{run_dir}: run.json records no configuration, so which cases the run was "
                         "to measure is unknown (an imported run?): nothing to resume; start a new run")
    hints = typing.get_type_hints(RunConfig)
    for name, value in config.items():
        if name in hints and not _type_ok(value, hints[name]):
            raise UsageError(f"{run_dir}/run.json: config field {name!r} holds {clip(repr(value), 60)} "
                             f"({type(value).__name__}); expected {hints[name]}")
    cfg = RunConfig(**{k: v for k, v in config.items() if k in hints})
    cfg.validate()
    return cfg


def _type_ok(value: Any, hint: Any) -> bool:
    """`value` read from JSON fits the RunConfig annotation `hint` (str, float, list[str] | None ...)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for t in options:
        origin = typing.get_origin(t) or t
        if t is type(None) and value is None:
            return True
        if origin is list and type(value) is list and all(type(x) is str for x in value):
            return True
        if origin is float and type(value) in (int, float):
            return True
        if origin in (str, int, bool) and type(value) is origin:
            return True
    return False


def resume_config(run_dir: Path, given: dict[str, tuple[str, Any]]) -> RunConfig:
    """The configuration `gwbench run --resume RUN_DIR` continues with, checked before any rank
    starts: the run is not complete, no other process writes it, and no option given on the
    command line (`given`: RunConfig field -> (flag, value)) contradicts the run's own."""
    cfg = stored_config(read_meta(run_dir), run_dir)
    if distmod.launched_env() is None:  # said once here, not by rank 0 after the others started
        RunLock.acquire(run_dir).release()
    clash = [f"{flag} {_shown(value)} (the run's: {_shown(getattr(cfg, name))})"
             for name, (flag, value) in given.items() if getattr(cfg, name) != value]
    if clash:
        raise UsageError(f"--resume continues a run with its own options; these differ: {'; '.join(clash)}. "
                         "Drop them, or start a new run")
    return cfg


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, list) else clip(str(value), 60)


def _check_world(meta: dict, env: dict | None, run_dir: Path) -> None:
    """A resumed run restarts the world that measured it: a --nproc run is relaunched with the
    same --nproc (commands/run), and a torchrun/srun launch must give the same world size."""
    dist_facts = meta.get("distributed") if isinstance(meta.get("distributed"), dict) else {}
    size = dist_facts.get("world_size")
    run_world = size if type(size) is int and size >= 1 else 1
    now = env["world_size"] if env else 1
    if run_world != now:
        how = (f"`gwbench run --resume {run_dir}` restarts a --nproc run's ranks itself; under "
               f"torchrun/srun start {run_world} ranks")
        raise UsageError(f"{run_dir} was measured by {run_world} rank(s) and this launch has {now}: "
                         f"a resume must restart the same world ({how})")


def _row_key(row: dict) -> tuple[str, int]:
    """A row's place in a run: its case, and the rank that measured it (0 in a world of one)."""
    rank = row.get("rank")
    return row["case_id"], rank if type(rank) is int else 0


def _missing(case: Case, done: set[tuple[str, int]], world: distmod.World) -> bool:
    """Whether some rank still lacks `case`'s row: a collective keeps rank 0's row only; a
    per-device family one row per rank (measure/dist.keep_rows)."""
    ranks = range(world.world_size) if world.active and case.family != "collectives" else (0,)
    return any((case.id, r) not in done for r in ranks)


def run(cfg: RunConfig, out: Path, argv: list[str], resume: Path | None = None,
        console=None, on_row: Callable[[dict], None] | None = None) -> tuple[int, RunStore]:
    """Run (or resume) a whole suite; returns the exit code and the store (its lock released)."""
    env = distmod.launched_env()
    plan = _plan(cfg, resume, env)
    try:
        return _run(plan, out, argv, resume, env, console, on_row)
    finally:
        if plan.store is not None:
            plan.store.close()


def _run(plan: _Plan, out: Path, argv: list[str], resume: Path | None, env: dict | None,
         console, on_row) -> tuple[int, RunStore]:
    from harness.present import progress as prog

    cfg = plan.cfg
    dev = devmod.resolve(distmod.rank_device(cfg.device, env))
    world = distmod.init(dev.backend, cfg.dist_timeout_s)  # PeerLost if a rank never joins
    if resume is not None and world.active:  # every rank runs the same cases: rank 0's view
        plan.done = distmod.broadcast_object(world, plan.done if world.rank == 0 else None)
    tel = _telemetry(cfg, dev)
    window = (lambda: tel.window(sync=dev.sync)) if tel is not None else None
    ctx = make_context(cfg, dev, world, window)
    all_cases = expand(cfg, ctx)
    store = plan.store = _open_store(plan, world, cfg, dev, argv, out, len(all_cases))  # run() closes it
    if world.rank != 0:
        console = _quiet_console()
    todo = [c for c in all_cases if _missing(c, plan.done, world)]
    power_readable = tel is not None and not str(tel.source).startswith("unavailable")
    ref_start = _reference(dev, ctx)  # the machine's speed before the first case (measure/stability.py)
    status, lost, fault = "failed", None, None
    # Everything imported so far (torch holds ~10^6 objects) is long-lived: freezing it keeps
    # the per-case gc.collect() in measure_case from re-scanning it (0.2-0.4 s a case on a CPU).
    frozen_before = gc.get_freeze_count()
    gc.freeze()
    try:
        with _SignalGuard() as guard:
            if resume is None and world.rank == 0:
                store.write_meta(**_telemetry_run_start(tel, cfg, store))
            with prog.Progress(todo, console, cost_s=lambda c: expected_s(c, cfg, dev, power_readable)) as bar:
                for i, case in enumerate(todo):
                    if i and todo[i - 1].family != case.family:
                        FAMILIES[todo[i - 1].family].finish(ctx)  # what it holds leaves before the next family
                    bar.start(case)
                    row = run_case(case, ctx, store.meta["run_id"],
                                   sustain_for(case, cfg, dev, power_readable))
                    kept = distmod.keep_rows(world, case.family, row, store.meta["run_id"])
                    with guard.critical():
                        for r in kept:
                            if _row_key(r) not in plan.done:  # a resumed case: only the ranks it lacked
                                store.append(r)
                    bar.done(row)
                    if on_row:
                        on_row(row)
                    if row.get("sustained") and cfg.cooldown_s:
                        time.sleep(cfg.cooldown_s)
        status = "complete"
    except (KeyboardInterrupt, Interrupted):
        status = "interrupted"
    except distmod.PeerLost as exc:  # rows written so far stay; the CLI prints the message
        lost = exc
    except StorageError as exc:  # the disk refused a row: the rows before it stay, --resume finishes
        fault = exc
    finally:
        if frozen_before == 0:  # a caller that runs the harness in-process gets its gc back
            gc.unfreeze()
        if status == "complete":  # before the end's reference kernel (after Ctrl-C: at exit)
            for name in cfg.families():
                FAMILIES[name].finish(ctx)
        # A second Ctrl-C while the end is recorded waits until run.json is written.
        with _SignalGuard() as late, late.critical():
            extra = _telemetry_run_end(tel)  # every rank closes its telemetry; rank 0's is recorded
            if lost is not None or fault is not None:
                extra["error"] = one_line(lost or fault)
            else:  # and after the last (not after Ctrl-C: the user wants out)
                extra.update(_stability(dev, ctx, ref_start, status == "complete"))
            try:
                rows = store.rows()
                counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
                store.write_meta(status=status, finished_at=now_iso(), counts=counts, **extra)
            except (StorageError, UsageError) as exc:  # the end cannot be recorded: said, rows stay
                fault = fault or exc
            if lost is None:
                distmod.destroy(world)
    if lost is not None:
        raise lost
    if fault is not None:
        raise fault
    if status == "interrupted":
        return EXIT_INTERRUPTED, store
    return (EXIT_FAILED if counts["failed"] else EXIT_OK), store


def _open_store(plan: _Plan, world: distmod.World, cfg: RunConfig, dev: devmod.Device,
                argv: list[str], out: Path, n_cases: int):
    """Rank 0's run folder (new, or the resumed one); other ranks keep their rows in memory
    under the run id rank 0 broadcasts. Every rank takes part in gathering the world's facts."""
    dist_facts = distmod.facts(world) if world.active else None
    if world.rank != 0:
        return _RankStore(distmod.broadcast_object(world, None))
    if plan.store is not None:
        plan.store.write_meta(status="running", resumed_at=now_iso(), resume_argv=argv, n_cases=n_cases)
        distmod.broadcast_object(world, plan.store.meta["run_id"])
        return plan.store
    facts = devmod.facts(dev)
    # nproc: the ranks a --nproc launch started (each rank's own argv lacks --nproc), so that
    # --resume restarts the same world.
    meta = {
        "argv": argv, "config": vars(cfg) | {"device": f"{dev.backend}" if not dev.is_cuda
                                             else f"cuda:{dev.index}",
                                             "nproc": distmod.launched_nproc() or cfg.nproc},
        "git": git_info(), "started_at": now_iso(), "finished_at": None,
        "device": facts, "timer_overhead_s": timer_overhead_s(dev), "n_cases": n_cases,
    }
    if dist_facts is not None:
        meta["distributed"] = dist_facts
    store = RunStore.create(out, make_run_id(facts["host"], dev.backend), meta)
    distmod.broadcast_object(world, store.meta["run_id"])
    return store


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

    def close(self) -> None:
        pass


def _quiet_console():
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def _telemetry(cfg: RunConfig, dev: devmod.Device):
    from harness.measure import telemetry

    try:
        return telemetry.Telemetry.create(cfg.telemetry, device_indices=[dev.index],
                                          sample_hz=cfg.sample_hz, gpu=dev.is_cuda)
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


def _reference(dev: devmod.Device, ctx: Context) -> tuple[float | None, str | None]:
    """(median seconds of the reference kernel, error): a failure never stops the run."""
    from harness.measure import stability

    try:
        return stability.reference_time_s(dev, ctx.budget, ctx.clock), None
    except Exception as exc:
        return None, one_line(exc)


def _stability(dev: devmod.Device, ctx: Context, start: tuple[float | None, str | None],
               at_end: bool) -> dict:
    """run.json's `stability` and `unstable` (None when the end was not timed)."""
    from harness.measure import stability

    end = _reference(dev, ctx) if at_end else (None, "not timed: the run did not complete")
    info = stability.summary(stability.describe(dev), start[0], end[0], start[1] or end[1])
    return {"stability": info, "unstable": info["unstable"]}


def _telemetry_run_end(tel) -> dict:
    if tel is None:
        return {}
    try:
        total = tel.stop_run_trace()
        tel.close()
        return {"run_energy": total}
    except Exception as exc:
        return {"run_energy": {"error": one_line(exc)}}
