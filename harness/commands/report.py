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
    from harness.analysis.projection import run_projection
    from harness.core.store import load_run
    from harness.present.report import render

    meta, rows = load_run(args.run_dir)
    # The Markdown and HTML headers show the run's projection; the data formats do not.
    projection = run_projection(args.run_dir) if args.format in ("md", "html") else None
    print(render(meta, rows, args.format, projection=projection), end="")
    return 0
