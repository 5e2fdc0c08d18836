"""Flags that more than one subcommand takes, declared once (`run` and `list` select cases alike)."""

from __future__ import annotations

import argparse

from harness.core.cases import DTYPES, SUITES


def csv_list(text: str) -> list[str]:
    """NAME[,NAME] as a list; an empty list is an argparse error ("--only ," must not quietly
    mean "everything")."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME], got {text!r}")
    return names


def add_case_selection(p: argparse.ArgumentParser) -> None:
    """Which cases a suite holds on a device: the flags `gwbench run` and `gwbench list` share."""
    p.add_argument("--suite", default="quick", help=f"one of {', '.join(SUITES)} (default quick)")
    p.add_argument("--only", type=csv_list, default=[], metavar="FAMILY[,FAMILY]",
                   help="run only these families: gemm, attention, memory, collectives (default all)")
    p.add_argument("--device", default="auto", help="auto (default), cuda, cuda:N or cpu")
    p.add_argument("--dtype", dest="dtypes", type=csv_list, default=None, metavar="DTYPE[,DTYPE]",
                   help=f"only these dtypes ({', '.join(DTYPES)}; default: each family's suite)")
    p.add_argument("--search", action="store_true",
                   help="GEMM maximum-achievable search over --m/n/k-range (mamf-finder style)")
    for dim in ("m", "n", "k"):
        p.add_argument(f"--{dim}-range", metavar="START:STOP[:STEP]",
                       help=f"search range of {dim} (STOP inclusive; default: the device's range)")


def add_layer_shapes(p: argparse.ArgumentParser) -> None:
    """GEMM: one model's training-layer shapes at a layout, instead of the suite's (issue #15)."""
    g = p.add_argument_group("GEMM layer shapes of a model (with --only gemm)")
    g.add_argument("--model", metavar="PRESET_OR_FILE",
                   help="measure the forward and backward GEMMs of this model's layers (a preset or a "
                        "Hugging Face config.json / TOML file) instead of the suite's GEMMs")
    g.add_argument("--tp", type=int, default=1, help="tensor parallelism the layer shapes are split by")
    g.add_argument("--micro-batch", type=int, default=1, help="sequences per micro-batch")
    g.add_argument("--seq", type=int, default=8192, help="sequence length")


def layer_shape_config(args: argparse.Namespace) -> dict:
    return {"model": args.model, "model_tp": args.tp, "model_micro_batch": args.micro_batch,
            "model_seq": args.seq}
