"""`gwbench report RUN_DIR`: the run's tables as Markdown, HTML, CSV, JSON (or nccl-tests)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.present.report import FORMATS

NAME = "report"
HELP = f"print a run's tables (--format {'|'.join(FORMATS)})"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")


def main(args: argparse.Namespace) -> int:
    from harness.present.report import render
    from harness.core.store import load_run

    meta, rows = load_run(args.run_dir)
    print(render(meta, rows, args.format, run_dir=args.run_dir), end="")
    return 0
