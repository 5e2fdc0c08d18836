"""Flags that more than one subcommand takes, declared once (`run` and `list` select cases alike)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from harness.core.cases import DTYPES, SUITES


def csv_list(text: str) -> list[str]:
    """NAME[,NAME] as a list; an empty list is an argparse error ("--only ," must not quietly
    mean "everything")."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected NAME[,NAME], got {text!r}")
    return names


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
