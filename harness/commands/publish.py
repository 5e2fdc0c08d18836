"""`gwbench publish RESULTS_DIR --out SITE_DIR`: a static site of every run (and a README.md index)."""

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
    p.add_argument("--index", nargs="?", const=True, default=None, metavar="PATH",
                   help="also write the index as Markdown: SITE_DIR/README.md with --out, else "
                        "RESULTS_DIR/README.md (`gwbench publish results --index` keeps results/README.md); "
                        "PATH names the file (or its folder) explicitly")
    p.add_argument("--figures", default="all", choices=("all", "latest", "none"),
                   help="figures on every run page (default all), only each hardware's latest run, or none")
    p.add_argument("--keep-serials", action="store_true",
                   help="keep GPU serial numbers and UUIDs in what is published (left out by default)")


def main(args: argparse.Namespace) -> int:
    from harness.present import publish
    from harness.core.errors import UsageError

    if args.out is None and args.index is None:
        raise UsageError("give --out SITE_DIR, --index, or both")
    runs = publish.load_runs(args.results, keep_serials=args.keep_serials)
    if args.out is not None:
        index = publish.build_site(runs, args.out, figures=args.figures)
        print(f"site: {index}")
    if args.index is True:  # the only folder named: the site's, else the results folder
        where, in_site = (args.out, True) if args.out is not None else (args.results, False)
        print(f"index: {publish.write_readme(runs, where / 'README.md', site=in_site)}")
    elif args.index is not None:
        if not str(args.index).strip():
            raise UsageError("--index PATH: expected a file name, got an empty one")
        print(f"index: {publish.write_readme(runs, Path(args.index))}")
    return 0
