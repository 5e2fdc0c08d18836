"""`gwbench project`: facility power (or a fixed cluster) -> training FLOP, with ranges.

Parsing only; the model lives in harness/analysis/projection.py, the figures in
harness/core/specs.py, the rendering in harness/present/projection.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.analysis import cost, onerun, projection
from harness.commands.common import bounded, terminal_width
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
    scale.add_argument("--days", type=float, default=None,
                       help=f"run length in days, (0, 36500] (default: {projection.DEFAULT_DAYS:g} for the "
                            f"site's aggregate, {onerun.DEFAULT_DAYS:g} for the largest single run)")
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
    model.add_argument("--samples", type=int, default=projection.DEFAULT_SAMPLES, help=f"Monte Carlo samples, 1..1e7 (default {projection.DEFAULT_SAMPLES})")
    model.add_argument("--seed", type=int, default=projection.DEFAULT_SEED, help="Monte Carlo seed, 0..2^32-1")
    model.add_argument("--model", dest="perf_model", metavar="PRESET",
                       help="predict MFU and goodput with `gwbench model` (fastest fitting layout of "
                            "this preset on --job-gpus GPUs) instead of the defaults, e.g. 405b")
    model.add_argument("--job-gpus", type=bounded(int, 1, 1e8), default=16384,
                       help="GPUs per training job for --model, 1..1e8 (default 16384)")
    parser.add_argument("--hardware-file", type=Path, metavar="PATH", help="another hardware table (TOML)")
    parser.add_argument("--format", choices=("text", "md", "json"), default="text",
                        help="text (default), md or json")
    _add_one_run_arguments(parser)
    _add_cost_arguments(parser)


def _add_one_run_arguments(parser: argparse.ArgumentParser) -> None:
    one = parser.add_argument_group(
        "the largest single run (shown beside the aggregate; defaults and sources: harness/data/onerun.toml)")
    one.add_argument("--no-one-run", dest="one_run", action="store_false",
                     help="skip the largest-single-run search (layout search, interruptions, batch, network)")
    one.add_argument("--max-batch-tokens", metavar="T",
                     help=f"largest useful global batch in tokens: {_RANGE} (default: DeepSeek LLM's law "
                          "at the run's compute, 16M to 2x)")
    one.add_argument("--seq", type=int, metavar="TOKENS", help="sequence length (default 8192)")
    one.add_argument("--interruption-rate", metavar="PER_GPU_HOUR",
                     help=f"unexpected interruptions per GPU-hour: {_RANGE} (default Llama 3 / Kokolis)")
    one.add_argument("--restart-s", metavar="S", help=f"seconds to resume after an interruption: {_RANGE}")
    one.add_argument("--storage-gbps-per-gpu", metavar="GBPS",
                     help=f"checkpoint storage GB/s per GPU of the job: {_RANGE}")
    one.add_argument("--site-links", metavar="PBPS",
                     help=f"bandwidth between campuses, Pb/s: {_RANGE} (default Epoch's 4-20)")
    one.add_argument("--site-rtt-s", metavar="S", help=f"round trip between campuses, seconds: {_RANGE}")
    one.add_argument("--campus-power", metavar="P",
                     help="largest facility power of one campus, like 5GW (default 5GW, Epoch's 2030 upper end)")
    one.add_argument("--job-share", type=float, metavar="F", help="share of the site one job may use, (0, 1]")
    one.add_argument("--layer-latency-s", metavar="S",
                     help=f"minimum forward + backward time of one layer: {_RANGE} (gwbench assumption)")


def _add_cost_arguments(parser: argparse.ArgumentParser) -> None:
    c = parser.add_argument_group("cost (defaults, dates and sources: harness/data/costs.toml)")
    c.add_argument("--gpu-price", metavar="USD",
                   help=f"server price per accelerator, without the cluster network: {_RANGE}")
    c.add_argument("--usd-per-mwh", metavar="USD", help=f"electricity price: {_RANGE}")
    c.add_argument("--it-life-years", metavar="Y", help=f"server and network life: {_RANGE}")
    c.add_argument("--facility-life-years", metavar="Y", help=f"facility life: {_RANGE}")
    c.add_argument("--facility-usd-per-mw", metavar="USD", help=f"facility capex per MW of IT load: {_RANGE}")
    c.add_argument("--network-share", metavar="F", help=f"cluster network share of IT hardware cost: {_RANGE}")
    c.add_argument("--load-factor", metavar="F", help=f"average IT draw / rated power, (0, 1]: {_RANGE}")
    c.add_argument("--opex-usd-per-mw-year", metavar="USD", help=f"opex other than energy per MW of IT: {_RANGE}")
    c.add_argument("--hardware-age-years", type=float, default=0.0, metavar="Y",
                   help="years between buying the hardware and the run (Epoch's method only; default 0)")
    c.add_argument("--cost-file", type=Path, metavar="PATH",
                   help="a cost table (TOML, as harness/data/costs.toml) whose figures override the packaged ones")


def _assumptions(args: argparse.Namespace) -> projection.Assumptions:
    given = {}
    for name in ("pue", "mfu", "goodput", "network_w"):
        text = getattr(args, name)
        if text is not None:
            given[name] = projection.parse_range(text, name.replace("_", "-"))
    days = projection.DEFAULT_DAYS if args.days is None else args.days
    return projection.Assumptions(days=days, samples=args.samples, seed=args.seed, **given)


def _ranges(args: argparse.Namespace, flags: dict[str, str]) -> dict:
    """{input name: its flag} -> the given ones parsed as ranges (bounds checked by the analysis)."""
    out = {}
    for name, flag in flags.items():
        text = getattr(args, flag.lstrip("-").replace("-", "_"))
        if text is not None:
            out[name] = projection.parse_range(text, flag.lstrip("-"))
    return out


def _warn(warnings) -> None:
    for w in dict.fromkeys(warnings):
        print(f"gwbench: warning: {w}", file=sys.stderr)


def _extensions(args: argparse.Namespace, basis: projection.Basis, table: specs.HardwareTable) -> list:
    """The cost and one-run additions to the projection, from the flags."""
    costs = _ranges(args, {name: flag for name, (flag, _) in cost.RANGES.items()})
    if args.gpu_price is not None:
        costs["price"] = projection.parse_range(args.gpu_price, "gpu-price")
    exts: list = [cost.CostExtension(cost.inputs_for(basis.accelerator, args.cost_file, costs,
                                                     args.hardware_age_years))]
    if args.one_run:
        over = _ranges(args, onerun.RANGES) | {
            "days": args.days, "seq": args.seq, "model": args.perf_model,
            "job_share": args.job_share,
            "max_batch_tokens": (projection.parse_range(args.max_batch_tokens, "max-batch-tokens")
                                 if args.max_batch_tokens is not None else None),
            "campus_max_w": projection.parse_power(args.campus_power) if args.campus_power else None}
        inputs = onerun.load_inputs({k: v for k, v in over.items() if v is not None})
        prof, note = onerun.profile_for(basis, table, args.from_run)
        exts.append(onerun.OneRunExtension(inputs, prof, note))
    return exts


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
        result = projection.generations(table, assumptions, sites_w=sites_w, dtype=args.dtype,
                                        cost_file=args.cost_file)
        _warn(w for r in result["rows"] for w in r.get("cost_warnings", []))
        print(render_generations(result, args.format, width=terminal_width()))
        return 0
    if args.from_run:
        basis = projection.from_run(args.from_run, table, args.dtype, args.as_name)
    else:
        basis = projection.from_spec(args.hardware, table, args.dtype)
    if args.perf_model:
        from harness.analysis.perfmodel import predict  # the model is optional: imported only when asked
        basis, assumptions, note = predict.predicted_assumptions(
            args.perf_model, basis, assumptions, table, args.from_run, args.job_gpus, args.dtype)
    exts = _extensions(args, basis, table)
    if not sys.stdout.isatty():  # the output itself says it too: once is enough in a terminal
        _warn(exts[0].inputs.warnings)  # the cost inputs: a price older than the hardware, an unsourced figure
    result = projection.project(basis, assumptions, sites_w=sites_w, accelerators=args.accelerators,
                                extensions=exts)
    if args.perf_model:
        result["notes"].append(note)
    print(render_projection(result, args.format, width=terminal_width()))
    return 0
