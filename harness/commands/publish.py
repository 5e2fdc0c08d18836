"""`gwbench publish RESULTS_DIR --out SITE_DIR`: a static site of every run (and results/README.md)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.common import folder

NAME = "publish"
HELP = "write a static, self-contained site of the runs under RESULTS_DIR"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", type=Path, metavar="RESULTS_DIR",
                   help="a results folder (every run folder in it) or one run folder")
    p.add_argument("--out", type=folder, metavar="SITE_DIR", help="site folder to write")
    p.add_argument("--index", action="store_true", help="also (re)write RESULTS_DIR/README.md, the index")
    p.add_argument("--figures", default="latest", choices=("latest", "all", "none"),
                   help="figures for each hardware's latest run (default), every run, or none")
    p.add_argument("--keep-serials", action="store_true",
                   help="keep GPU serial numbers and UUIDs in what is published (left out by default)")


def main(args: argparse.Namespace) -> int:
    from harness.present import publish
    from harness.core.errors import UsageError

    if args.out is None and not args.index:
        raise UsageError("give --out SITE_DIR, --index, or both")
    runs = publish.load_runs(args.results, keep_serials=args.keep_serials)
    if args.out is not None:
        index = publish.build_site(runs, args.out, figures=args.figures)
        print(f"site: {index}")
    if args.index:
        print(f"index: {publish.write_readme(runs, args.results)}")
    return 0
