"""`gwbench run`: measure a suite on the hardware present and write a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.commands.common import add_case_selection, add_layer_shapes, folder, layer_shape_config
from harness.core.errors import UsageError

NAME = "run"
HELP = "measure a suite and write OUT/<run-id>/{run.json,rows.jsonl}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_case_selection(p)
    p.add_argument("--out", type=folder, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR",
                   help="finish an interrupted run with its own options and world (one writer at a time)")
    p.add_argument("--data", default="randn", help="GEMM input distribution: randn (default) or zeros")
    p.add_argument("--warmup-ms", type=float, default=25.0, help="warm-up budget per case, ms, [0, 60000] (default 25)")
    p.add_argument("--rep-ms", type=float, default=100.0, help="timed budget per case, ms, (0, 600000] (default 100)")
    p.add_argument("--sustain", type=float, default=None, metavar="SECONDS",
                   help="sustained window for power cases, [0, 3600] s (default 5 s on a GPU with power readings; 0 = off)")
    p.add_argument("--cooldown", type=float, default=0.0, metavar="SECONDS",
                   help="pause after each sustained case, [0, 3600] s")
    p.add_argument("--telemetry", default="auto", help="auto (default), nvml, rapl or none")
    p.add_argument("--sample-hz", type=float, default=100.0, help="power sampling rate, Hz, (0, 10000] (default 100)")
    p.add_argument("--idle", type=float, default=2.0, metavar="SECONDS",
                   help="idle power sampled at the start of the run, [0, 600] s (default 2; 0 = skip)")
    p.add_argument("--no-projection", action="store_true", help="skip the 1 GW / 10 GW projection")
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="start N local ranks (one per GPU), 1..1024, for the collectives (default 1); under "
                        "torchrun/srun the launch's ranks are joined instead")
    p.add_argument("--dist-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="how long a rank waits for the others (joining, each collective) before failing, "
                        "(0, 86400] s (default 300)")
    p.add_argument("--iters", type=int, metavar="N",
                   help="collectives: timed back-to-back calls per trial, 1..100000 (nccl-tests -n; default 20)")
    add_layer_shapes(p)
    p.add_argument("--warmup-iters", type=int, metavar="N",
                   help="collectives: untimed calls before each size (nccl-tests -w; default 1, "
                        "as nccl-tests since v2.16.8)")
    p.add_argument("--check-iters", type=int, metavar="N",
                   help="collectives: untimed checked calls after the timed ones (nccl-tests -c; "
                        "default 1; 0 = no check, #wrong N/A)")
    p.add_argument("--search-stat", default="mean", metavar="mean|median|min",
                   help="statistic the --search ranks shapes by (default mean, as mamf-finder's table)")


def main(args: argparse.Namespace) -> int:
    from harness.measure import dist
    from harness import runner
    from rich.console import Console

    from harness.present.progress import print_next_steps, print_summary
    from harness.present.projection import print_run_projection

    cfg = config(args)  # imports torch: the ranks start ~2.5 s later, but a bad argument is said once
    nproc = args.nproc
    if args.resume is not None:  # the run's own options (a differing one given here is refused)
        cfg = runner.resume_config(args.resume, given_options(args))
        nproc = cfg.nproc
    if nproc > 1 and dist.launched_env() is None:
        # The parent checks the configuration once (dist.preflight), so a bad argument is
        # one line, not one per rank; the ranks build the same configuration from this argv.
        return dist.launch(nproc, dist.strip_nproc(args.argv), cfg.dist_timeout_s, cfg)

    try:
        code, store = runner.run(cfg, args.out, args.argv, resume=args.resume)
    except dist.PeerLost as exc:
        print(f"gwbench: error: {exc}", file=sys.stderr)
        return runner.EXIT_FAILED
    if store.dir is None:  # a rank other than 0: rank 0 prints and writes
        return code
    rows = store.rows()
    console = Console(file=sys.stdout)
    print_summary(rows, store.dir, console)
    if cfg.search:
        print(_search_best(rows, cfg.search_stat))  # data lines, whole: never folded
    if store.meta.get("unstable"):
        st = store.meta.get("stability") or {}
        console.print(f"UNSTABLE run: the reference kernel took {st.get('start_s', 0) * 1e3:.3g} ms at the "
                      f"start and {st.get('end_s', 0) * 1e3:.3g} ms at the end ({st.get('ratio', 0):.3g}x > "
                      f"{st.get('bound')}x): figures from this machine are not steady; compare will not call "
                      "differences significant", highlight=False)
    if not args.no_projection and code != runner.EXIT_INTERRUPTED:
        result = write_projection(store)
        if result is not None:
            print_run_projection(result, console)
    if code == runner.EXIT_INTERRUPTED:
        print(f"interrupted: finish with `gwbench run --resume {store.dir}`", file=sys.stderr)
    else:
        print_next_steps(store.dir, console)
    return code


# RunConfig field -> the flag that sets it, for the options --resume takes from the run itself.
FLAGS = {"suite": "--suite", "only": "--only", "device": "--device", "dtypes": "--dtype",
         "search": "--search", "m_range": "--m-range", "n_range": "--n-range", "k_range": "--k-range",
         "data": "--data", "warmup_ms": "--warmup-ms", "rep_ms": "--rep-ms", "sustain_s": "--sustain",
         "cooldown_s": "--cooldown", "telemetry": "--telemetry", "sample_hz": "--sample-hz",
         "idle_s": "--idle", "nproc": "--nproc", "dist_timeout_s": "--dist-timeout",
         "coll_sizes": "--sizes", "coll_iters": "--iters", "attn_backends": "--attn-backend"}


def given_options(args: argparse.Namespace) -> dict:
    """The run options given on this command line (those differing from their defaults):
    RunConfig field -> (flag, value)."""
    defaults = argparse.ArgumentParser()
    add_arguments(defaults)
    ours, default = vars(config(args)), vars(config(defaults.parse_args([])))
    given = {k: (FLAGS.get(k, k), v) for k, v in ours.items() if v != default[k]}
    if args.out != defaults.get_default("out") and args.resume is not None \
            and Path(args.out).resolve() != Path(args.resume).resolve().parent:
        raise UsageError(f"--out {args.out}: a resumed run is written in its own folder, {args.resume}")
    return given


def config(args: argparse.Namespace):
    """The RunConfig of `gwbench run`'s arguments (each rank of a multi-rank run builds its own)."""
    from harness import runner

    from harness.analysis.nccl_tests import run_options

    coll = run_options(args.nccl_tests_flags, sizes=args.sizes, iters=args.iters,
                       warmup=args.warmup_iters, check=args.check_iters)
    return runner.RunConfig(
        suite=args.suite, only=args.only, device=args.device, dtypes=args.dtypes,
        search=args.search, m_range=args.m_range, n_range=args.n_range, k_range=args.k_range,
        data=args.data, warmup_ms=args.warmup_ms, rep_ms=args.rep_ms, sustain_s=args.sustain,
        cooldown_s=args.cooldown, telemetry=args.telemetry, sample_hz=args.sample_hz,
        idle_s=args.idle, nproc=args.nproc, dist_timeout_s=args.dist_timeout,
        coll_sizes=coll["sizes"], coll_iters=coll["iters"], coll_warmup=coll["warmup"],
        coll_check=coll["check"], attn_backends=args.attn_backends, b_layout=args.b_layout,
        out_rewrite=args.out_rewrite, fp8_out=args.fp8_out, search_stat=args.search_stat,
        transfer_sizes=args.transfer_sizes, **layer_shape_config(args))


def _search_best(rows: list[dict], statistic: str) -> str:
    """mamf-finder's answer: the best shape per dtype and method, ranked by `statistic`."""
    from harness.analysis.gemm_search import best_shapes, best_text

    return "\n".join(best_text(e) for e in best_shapes(rows, statistic))


def write_projection(store) -> dict | None:
    """The 1 GW / 10 GW projection of the finished run, written beside its rows
    (projection.json, projection.md); the result, for the terminal, or None when it failed
    (the reason is printed: the run's rows are safe either way)."""

    from harness.analysis.projection import project_measured_run
    from harness.core.store import json_text
    from harness.present.projection import render_run_projection

    try:
        result = project_measured_run(store.dir)
        text = render_run_projection(result)
    except Exception as exc:  # the run's rows are safe; a projection bug must not hide them
        print(f"projection failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    try:
        store.write_text("projection.json", json_text(result, indent=2) + "\n")
        store.write_text("projection.md", text + "\n")
    except OSError as exc:
        print(f"gwbench: warning: could not write projection files: {exc}", file=sys.stderr)
    return result
