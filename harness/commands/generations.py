"""`gwbench generations [RUN ...]`: hardware generations side by side — spec, measured here, published."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.core.stats import STATISTICS
from harness.present.generations import FORMATS

NAME = "generations"
HELP = ("hardware generations side by side: spec peaks, figures measured by the runs given, "
        "published figures, perf per watt, the 1 GW projection and the ratio to the previous generation")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, nargs="*", metavar="RUN",
                   help="run folders, or folders of run folders (a results folder); none: spec and "
                        "published figures only")
    p.add_argument("--format", default="text", choices=FORMATS,
                   help="text (the terminal's tables, fitted to its width), md, json or html (default text)")
    p.add_argument("--statistic", default="mean", choices=tuple(STATISTICS),
                   help="statistic of the measured rates (default mean, as mamf-finder's table; busbw "
                        "is always nccl-tests' figure at the median)")


def main(args: argparse.Namespace) -> int:
    from harness.analysis.generations import runs_from, view
    from harness.present import generations

    result = view(runs_from(args.runs), statistic=args.statistic)
    if args.format == "text":
        from rich.console import Console

        generations.print_text(result, Console(highlight=False))
    else:
        print(generations.render(result, args.format), end="")
    return 0
