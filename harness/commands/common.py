"""Flags that more than one subcommand takes, declared once (`run` and `list` select cases alike)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from harness.core.cases import DTYPES, SUITES


def csv_list(text: str) -> list[str]:
    """NAME[,NAME] as a list; an empty list is an argparse error ("--only ," must not quietly
    mean "everything")."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME], got {text!r}")
    return names


def on_off_list(text: str) -> list[bool]:
    """on[,off] as booleans (--out-rewrite)."""
    out = []
    for name in csv_list(text):
        if name.lower() not in ("on", "off"):
            raise argparse.ArgumentTypeError(f"expected on, off or on,off, got {text!r}")
        out.append(name.lower() == "on")
    return out


def folder(text: str) -> Path:
    """A folder argument (--out): an empty one would quietly mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty name")
    return Path(text)


def bounded(kind: type, low: float, high: float):
    """An argparse type: an int or a finite float in [low, high] (documented in the option's
    help); anything else is a one-line usage error, exit 2."""
    what = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], got {text[:40]}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_case_selection(p: argparse.ArgumentParser) -> None:
    """Which cases a suite holds on a device: the flags `gwbench run` and `gwbench list` share
    (every flag that adds, removes or reshapes a case)."""
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
    # The GEMM method: each default is mamf-finder's; a comma list runs each choice.
    p.add_argument("--b-layout", type=csv_list, default=None, metavar="nk|kn[,..]",
                   help="GEMM B operand: nk = (n, k) contiguous used transposed (default, as "
                        "mamf-finder), kn = (k, n) row-major; fp8 is always nk")
    p.add_argument("--out-rewrite", type=on_off_list, default=None, metavar="on|off[,..]",
                   help="GEMM: rewrite C from a random copy before each timed call, untimed "
                        "(default on, as mamf-finder)")
    p.add_argument("--fp8-out", type=csv_list, default=None, metavar="fp8|bf16[,..]",
                   help="GEMM fp8 output dtype (default fp8, as mamf-finder)")
    p.add_argument("--transfer-sizes", metavar="SIZE[,SIZE]",
                   help="memory: sizes of the host/device and device-local copies, e.g. 1G,4G,16G "
                        "(default: the suite's)")
    p.add_argument("--attn-backend", dest="attn_backends", type=csv_list, default=None, metavar="NAME[,NAME]",
                   help="attention backends (default all): sdpa-flash, sdpa-efficient, sdpa-cudnn, "
                        "sdpa-math, sdpa-default, flash_attn, flash_attn3")
    p.add_argument("--sizes", metavar="MIN:MAX[:FACTOR]",
                   help="collectives: sizes swept, e.g. 1K:1G:4 (nccl-tests -b/-e/-f; suffixes K, M, G = 2^10...)")
    p.add_argument("--nccl-tests", dest="nccl_tests_flags", metavar="'FLAGS'",
                   help="collectives: nccl-tests' own flags, verbatim: -b -e -f -i -n -w -c "
                        "(e.g. '-b 8 -e 128M -f 2 -n 20')")


def add_layer_shapes(p: argparse.ArgumentParser) -> None:
    """GEMM: one model's training-layer shapes at a layout, instead of the suite's."""
    g = p.add_argument_group("GEMM layer shapes of a model (with --only gemm)")
    g.add_argument("--model", metavar="PRESET_OR_FILE",
                   help="measure the forward and backward GEMMs of this model's layers (a preset or a "
                        "Hugging Face config.json / TOML file) instead of the suite's GEMMs")
    g.add_argument("--tp", type=int, default=1, help="tensor parallelism the layer shapes are split by (default 1)")
    g.add_argument("--micro-batch", type=int, default=1, help="sequences per micro-batch (default 1)")
    g.add_argument("--seq", type=int, default=8192, help="sequence length (default 8192)")


def layer_shape_config(args: argparse.Namespace) -> dict:
    return {"model": args.model, "model_tp": args.tp, "model_micro_batch": args.micro_batch,
            "model_seq": args.seq}


def terminal_width() -> int | None:
    """The terminal's columns when stdout is one (text output then fits it), else None: a file
    or a pipe gets one line a row, whatever the width of the terminal that started it."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None
