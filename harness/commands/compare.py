"""`gwbench compare RUN_A RUN_B [...]`: each run against the first, case by case."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "compare"
HELP = "compare runs case by case against the first (ratios, significance, marks, vs spec)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="baseline first")
    p.add_argument("--format", choices=("md", "json", "html"), default="md", help="md (default), json or html")
    p.add_argument("--changed", action="store_true", help="list only cases not marked `same`")
    p.add_argument("--published", action="store_true",
                   help="also put each run beside the published figures of its GPU generation "
                        "(harness/data/published.toml); one run is then enough")


def main(args: argparse.Namespace) -> int:
    from harness.analysis.compare import compare
    from harness.core.store import json_text
    from harness.present.compare import render_html, render_md
    from harness.present.html import html_page

    results = compare(args.runs) if len(args.runs) > 1 or not args.published else []
    published = _published(args.runs) if args.published else []
    if args.format == "json":
        print(json_text(results + published, indent=1))
    elif args.format == "html":
        from harness.present.published import render_html as published_html

        body = [render_html(r) for r in results] + [published_html(r) for r in published]
        print(html_page("gwbench compare", "\n".join(body)), end="")
    else:
        from harness.present.published import render_md as published_md

        print("\n\n".join([render_md(r, show_same=not args.changed) for r in results]
                          + [published_md(r) for r in published]))
    return 0


def _published(runs: list[Path]) -> list[dict]:
    from harness.analysis.published import beside, load
    from harness.core.store import load_run

    figures = load()
    return [beside(*load_run(r), figures) for r in runs]
