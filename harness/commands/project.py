"""`gwbench project`: facility power (or a fixed cluster) -> training FLOP, with ranges.

Parsing only; the model lives in harness/analysis/projection.py, the figures in
harness/core/specs.py, the rendering in harness/present/projection.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.analysis import projection
from harness.commands.common import bounded
from harness.core import specs
from harness.core.errors import UsageError
from harness.present.projection import render_generations, render_projection

NAME = "project"
HELP = "project 1 GW / 10 GW (or a fixed cluster) of an accelerator to training FLOP, with ranges"

_RANGE = "a number (fixed) or LOW:MODE:HIGH (Monte Carlo range)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("source of per-accelerator figures (one of)")
    src.add_argument("--hardware", metavar="NAME", help="spec table alone, e.g. H100, 'GB300 NVL72', Rubin")
    src.add_argument("--from", dest="from_run", metavar="RUN_DIR", type=Path,
                     help="a gwbench run folder: its measured power and bf16 GEMM efficiency")
    src.add_argument("--as", dest="as_name", metavar="NAME",
                     help="with --from: carry the run's efficiency onto this accelerator's spec")
    src.add_argument("--generations", action="store_true",
                     help="every accelerator in the table side by side (spec-based)")
    scale = parser.add_argument_group("scale")
    scale.add_argument("--power", action="append", metavar="P",
                       help="facility power, repeatable or comma-separated: 1GW, 500MW, 750kW, 1e9 "
                            "(watts); up to 1 PW and enough for one accelerator (default: 1GW and 10GW)")
    scale.add_argument("--accelerators", type=float, metavar="N",
                       help="fixed-cluster mode: N accelerators instead of a power budget, 1..1e9")
    scale.add_argument("--days", type=float, default=projection.DEFAULT_DAYS,
                       help="run length in days, (0, 36500] (default %(default)g)")
    model = parser.add_argument_group("assumptions (defaults and sources: see the output)")
    model.add_argument("--dtype", default="bf16", choices=specs.DTYPES, help="training dtype (default bf16)")
    model.add_argument("--pue", help=f"facility / IT energy, [1, 5]: {_RANGE} "
                                     f"(default {projection.DEFAULT_PUE})")
    model.add_argument("--mfu", help=f"model FLOP utilisation, (0, 1]: {_RANGE} "
                                     f"(default {projection.DEFAULT_MFU})")
    model.add_argument("--goodput", help=f"productive share of wall time, (0, 1]: {_RANGE} "
                                         f"(default {projection.DEFAULT_GOODPUT})")
    model.add_argument("--network-w", help=f"scale-out network W per accelerator, [0, 10000]: {_RANGE} "
                                           f"(default {projection.DEFAULT_NETWORK_W})")
    model.add_argument("--samples", type=int, default=projection.DEFAULT_SAMPLES, help="Monte Carlo samples, 1..1e7")
    model.add_argument("--seed", type=int, default=projection.DEFAULT_SEED, help="Monte Carlo seed, 0..2^32-1")
    model.add_argument("--model", dest="perf_model", metavar="PRESET",
                       help="predict MFU and goodput with `gwbench model` (fastest fitting layout of "
                            "this preset on --job-gpus GPUs) instead of the defaults, e.g. 405b")
    model.add_argument("--job-gpus", type=bounded(int, 1, 1e8), default=16384,
                       help="GPUs per training job for --model, 1..1e8")
    parser.add_argument("--hardware-file", type=Path, metavar="PATH", help="another hardware table (TOML)")
    parser.add_argument("--format", choices=("text", "md", "json"), default="text")


def _assumptions(args: argparse.Namespace) -> projection.Assumptions:
    given = {}
    for name in ("pue", "mfu", "goodput", "network_w"):
        text = getattr(args, name)
        if text is not None:
            given[name] = projection.parse_range(text, name.replace("_", "-"))
    return projection.Assumptions(days=args.days, samples=args.samples, seed=args.seed, **given)


def main(args: argparse.Namespace) -> int:
    chosen = [flag for flag, on in (("--hardware", args.hardware), ("--from", args.from_run),
                                    ("--generations", args.generations)) if on]
    if len(chosen) != 1:
        raise UsageError("give exactly one of --hardware NAME, --from RUN_DIR or --generations"
                         + (f" (got {' and '.join(chosen)})" if chosen else ""))
    if args.as_name and not args.from_run:
        raise UsageError("--as NAME needs --from RUN_DIR (use --hardware NAME for the spec alone)")
    if args.accelerators is not None and (args.power or args.generations):
        raise UsageError("--accelerators (fixed cluster) replaces --power and --generations")
    sites = [p for item in (args.power or []) for p in item.split(",") if p.strip()]
    sites_w = [projection.parse_power(p) for p in sites] or list(projection.DEFAULT_SITES_W)
    table = specs.load(args.hardware_file)
    assumptions = _assumptions(args)
    if args.generations:
        result = projection.generations(table, assumptions, sites_w=sites_w, dtype=args.dtype)
        print(render_generations(result, args.format))
        return 0
    if args.from_run:
        basis = projection.from_run(args.from_run, table, args.dtype, args.as_name)
    else:
        basis = projection.from_spec(args.hardware, table, args.dtype)
    if args.perf_model:
        from harness.analysis.perfmodel import predict  # the model is optional: imported only when asked
        basis, assumptions, note = predict.predicted_assumptions(
            args.perf_model, basis, assumptions, table, args.from_run, args.job_gpus, args.dtype)
    result = projection.project(basis, assumptions, sites_w=sites_w, accelerators=args.accelerators)
    if args.perf_model:
        result["notes"].append(note)
    print(render_projection(result, args.format))
    return 0
