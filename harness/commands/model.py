"""`gwbench model`: predicted step time, MFU, memory and goodput of a training layout.

Parsing only; the model lives in harness/analysis/perfmodel/, its rendering in present/model.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.analysis.perfmodel import goodput, predict, profile, step
from harness.commands.common import bounded
from harness.core import specs
from harness.core.errors import UsageError
from harness.core.store import read_meta
from harness.present.model import render

NAME = "model"
HELP = "predict training step time, MFU, memory per GPU and goodput from measured or spec rates"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="405b", help=f"preset: {', '.join(step.PRESETS)} (default 405b)")
    parser.add_argument("--gpus", type=bounded(int, 1, 1e8), default=16384,
                        help="GPUs in the job, 1..1e8 (default 16384)")
    parser.add_argument("--tp", type=bounded(int, 1, 1024), default=8, help="tensor parallel, 1..1024")
    parser.add_argument("--pp", type=bounded(int, 1, 1024), default=16, help="pipeline stages, 1..1024")
    parser.add_argument("--cp", type=bounded(int, 1, 1024), default=1, help="context parallel, 1..1024")
    parser.add_argument("--vpp", type=bounded(int, 1, 1024), default=1,
                        help="interleaved virtual pipeline stages per GPU, 1..1024")
    parser.add_argument("--micro-batch", type=bounded(int, 1, 2**16), default=1,
                        help="sequences per micro-batch, 1..65536")
    parser.add_argument("--seq", type=bounded(int, 1, 2**27), default=8192, help="sequence length, 1..2^27")
    parser.add_argument("--batch-tokens", type=bounded(int, 1, 2**40), default=16 * 2**20,
                        help="global batch in tokens, 1..2^40 (default 16M)")
    parser.add_argument("--zero", type=bounded(int, 0, 3), default=1,
                        help="0 none, 1 optimizer, 2 +grads, 3 +params (FSDP)")
    parser.add_argument("--recompute", default="none", choices=step.RECOMPUTE)
    parser.add_argument("--precision", default="bf16", choices=step.PRECISIONS)
    parser.add_argument("--hardware", metavar="NAME", help="spec table profile (with --from: fills lacking rows)")
    parser.add_argument("--from", dest="from_run", metavar="RUN_DIR", type=Path, help="measured profile")
    parser.add_argument("--search", action="store_true", help="find the fastest layout that fits")
    parser.add_argument("--hardware-file", type=Path, metavar="PATH", help="another hardware table (TOML)")
    parser.add_argument("--format", choices=("md", "text", "json"), default="md")


def rates(args: argparse.Namespace, table: specs.HardwareTable) -> profile.Profile:
    if args.from_run:
        return profile.from_run(args.from_run, table, args.precision, fill=args.hardware)
    if not args.hardware:
        raise UsageError("give --hardware NAME (spec table) or --from RUN_DIR (measured)")
    return profile.from_spec(args.hardware, table, args.precision)


def main(args: argparse.Namespace) -> int:
    table = specs.load(args.hardware_file)
    model = step.preset(args.model)
    p = rates(args, table)
    if args.gpus < 1:
        raise UsageError(f"--gpus must be >= 1, got {args.gpus}")
    lay = step.Layout(args.gpus, args.tp, args.pp, args.cp, args.vpp, args.micro_batch, args.seq,
                    args.batch_tokens, args.zero, args.recompute, args.precision)
    info = None
    if args.search:
        r, tried, fit = predict.search(model, lay, p)
        info = {"tried": tried, "fit": fit}
        lay = r.layout
    else:
        r = step.step(model, lay, p)
    mfu = predict.mfu_range(model, lay, p)
    hw = args.hardware or (_run_device(args.from_run) if args.from_run else p.name)
    try:
        sites = predict.site_goodput(hw, table)
    except UsageError:
        sites = predict.site_goodput(None, table)
    print(render(predict.result_dict(model, r, p, mfu, goodput.goodput(args.gpus), sites, info), args.format))
    return 0


def _run_device(run_dir: Path) -> str | None:
    """The measured run's device name, for the spec entry the site goodput is sized from
    (the profile's own name carries the run id and is no table key)."""
    meta = read_meta(run_dir)
    device = meta.get("device")
    return device.get("name") if isinstance(device, dict) else None
