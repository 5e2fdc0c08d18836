"""`gwbench model`: predicted step time, MFU, memory and goodput of a training layout, and the
back-tests against published runs (`--backtest`).

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
from harness.present.model import render, render_backtest

NAME = "model"
HELP = "predict training step time, MFU, memory per GPU and goodput from measured or spec rates"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="405b", metavar="PRESET_OR_FILE",
                        help=f"preset ({', '.join(step.PRESETS)}) or a Hugging Face config.json / TOML "
                             "model file (default 405b)")
    parser.add_argument("--gpus", type=bounded(int, 1, 1e8), default=16384,
                        help="GPUs in the job, 1..1e8 (default 16384)")
    parser.add_argument("--tp", type=bounded(int, 1, 1024), default=8, help="tensor parallel, 1..1024 (default 8)")
    parser.add_argument("--pp", type=bounded(int, 1, 1024), default=16, help="pipeline stages, 1..1024 (default 16)")
    parser.add_argument("--cp", type=bounded(int, 1, 1024), default=1, help="context parallel, 1..1024 (default 1)")
    parser.add_argument("--vpp", type=bounded(int, 1, 1024), default=1,
                        help="interleaved virtual pipeline stages per GPU, 1..1024 (default 1)")
    parser.add_argument("--first-last-layers", type=bounded(int, 0, 100_000), default=0, metavar="N",
                        help="layers on the first and on the last pipeline stage (default 0: even, or one "
                             "fewer than the others where that makes the layers divide, as Llama 3)")
    parser.add_argument("--micro-batch", type=bounded(int, 1, 2**16), default=1,
                        help="sequences per micro-batch, 1..65536 (default 1)")
    parser.add_argument("--seq", type=bounded(int, 1, 2**27), default=8192, help="sequence length, 1..2^27 (default 8192)")
    parser.add_argument("--batch-tokens", type=bounded(int, 1, 2**40), default=16 * 2**20,
                        help="global batch in tokens, 1..2^40 (default 16M)")
    parser.add_argument("--zero", type=bounded(int, 0, 3), default=2,
                        help="0 none, 1 distributed optimizer (sharded over DP x CP), 2 +grads, 3 +params (FSDP); "
                             "default 2, Llama 3's (the default layout is its Table 4 405B one)")
    parser.add_argument("--recompute", default="none", choices=step.RECOMPUTE,
                        help="none (default); selective = Megatron's core-attention recompute; full = whole layers")
    parser.add_argument("--precision", default="bf16", choices=step.PRECISIONS,
                        help=f"training precision: {', '.join(step.PRECISIONS)} (default bf16)")
    parser.add_argument("--attention", default="flash", choices=step.ATTENTION,
                        help="flash (default: the generation's kernel), fa2 (FlashAttention-2), unfused (pre-2022 stacks)")
    parser.add_argument("--no-sequence-parallel", dest="sequence_parallel", action="store_false",
                        help="TP without sequence parallelism (norms and dropouts whole on every TP rank)")
    parser.add_argument("--tp-overlap", action="store_true", help="TP collectives overlapped with GEMMs (TE userbuffers)")
    parser.add_argument("--no-dp-overlap", dest="dp_overlap", action="store_false",
                        help="gradient reduce and parameter gather not overlapped with compute")
    parser.add_argument("--grad-bf16", dest="grad_fp32", action="store_false",
                        help="bf16 gradient buffers (NVIDIA's perf recipes) instead of fp32")
    parser.add_argument("--no-fit-check", action="store_true",
                        help="predict a layout that does not fit its GPU's memory anyway (marked as not fitting)")
    parser.add_argument("--hardware", metavar="NAME", help="spec table profile (with --from: fills lacking rows)")
    parser.add_argument("--from", dest="from_run", metavar="RUN_DIR", type=Path, help="measured profile")
    parser.add_argument("--search", action="store_true", help="find the fastest layout that fits")
    parser.add_argument("--backtest", action="store_true",
                        help="predict the published runs of harness/data/backtests.toml and print the errors "
                             "(fit half, held-out half and all)")
    parser.add_argument("--hardware-file", type=Path, metavar="PATH", help="another hardware table (TOML)")
    parser.add_argument("--format", choices=("md", "text", "json"), default="md", help="md (default), text or json")


def rates(args: argparse.Namespace, table: specs.HardwareTable) -> profile.Profile:
    if args.from_run:
        return profile.from_run(args.from_run, table, args.precision, fill=args.hardware)
    if not args.hardware:
        raise UsageError("give --hardware NAME (spec table) or --from RUN_DIR (measured)")
    return profile.from_spec(args.hardware, table, args.precision)


def main(args: argparse.Namespace) -> int:
    if args.backtest:
        from harness.analysis.perfmodel import backtest  # only when asked: it predicts ~60 runs

        print(render_backtest(backtest.run(), args.format))
        return 0
    table = specs.load(args.hardware_file)
    model = step.preset(args.model)
    p = rates(args, table)
    if args.gpus < 1:
        raise UsageError(f"--gpus must be >= 1, got {args.gpus}")
    lay = step.Layout(args.gpus, args.tp, args.pp, args.cp, args.vpp, args.micro_batch, args.seq,
                      args.batch_tokens, args.zero, args.recompute, args.precision,
                      sequence_parallel=args.sequence_parallel, first_last_layers=args.first_last_layers,
                      attention=args.attention, tp_overlap=args.tp_overlap, dp_overlap=args.dp_overlap,
                      grad_fp32=args.grad_fp32)
    info = None
    if args.search:
        r, tried, fit = predict.search(model, lay, p)
        info = {"tried": tried, "fit": fit}
        lay = r.layout
    else:
        r = step.step(model, lay, p, require_fit=not args.no_fit_check)
    mfu = predict.mfu_range(model, lay, p)
    hw = args.hardware or (_run_device(args.from_run) if args.from_run else p.name)
    try:
        sites = predict.site_goodput(hw, table, model.params())
    except UsageError:
        sites = predict.site_goodput(None, table, model.params())
    gp = goodput.of_model(args.gpus, model.params())
    print(render(predict.result_dict(model, r, p, mfu, gp, sites, info), args.format))
    return 0


def _run_device(run_dir: Path) -> str | None:
    """The measured run's device name, for the spec entry the site goodput is sized from
    (the profile's own name carries the run id and is no table key)."""
    meta = read_meta(run_dir)
    device = meta.get("device")
    return device.get("name") if isinstance(device, dict) else None
