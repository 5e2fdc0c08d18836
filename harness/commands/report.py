"""`gwbench report RUN_DIR`: the run's rows as Markdown, CSV or JSON."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.report import FORMATS

NAME = "report"
HELP = "print a run's tables (--format md|csv|json)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)}")


def main(args: argparse.Namespace) -> int:
    from harness.errors import UsageError
    from harness.report import render
    from harness.results import load_run

    if args.format not in FORMATS:
        raise UsageError(f"unknown format {args.format!r}: choose {', '.join(FORMATS)}")
    meta, rows = load_run(args.run_dir)
    print(render(meta, rows, args.format), end="")
    return 0
