"""`gwbench compare RUN_A RUN_B [...]`: each run against the first, case by case."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "compare"
HELP = "compare runs case by case against the first (ratios, significance, marks, vs spec)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="baseline first")
    p.add_argument("--format", choices=("md", "json", "html"), default="md")
    p.add_argument("--changed", action="store_true", help="list only cases not marked `same`")


def main(args: argparse.Namespace) -> int:
    from harness.analysis.compare import compare
    from harness.core.store import json_text
    from harness.present.compare import render_html, render_md
    from harness.present.html import html_page

    results = compare(args.runs)
    if args.format == "json":
        print(json_text(results, indent=1))
    elif args.format == "html":
        print(html_page("gwbench compare", "\n".join(render_html(r) for r in results)), end="")
    else:
        print("\n\n".join(render_md(r, show_same=not args.changed) for r in results))
    return 0
