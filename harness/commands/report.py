"""`gwbench report RUN_DIR`: the run's tables as Markdown, HTML, CSV, JSON (or nccl-tests)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.present.report import FORMATS

NAME = "report"
HELP = f"print a run's tables (--format {'|'.join(FORMATS)})"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (results/<run-id>)")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")
    p.add_argument("--published", action="store_true",
                   help="md/html/json: add the published figures of the run's GPU generation beside "
                        "its own (harness/data/published.toml)")


def main(args: argparse.Namespace) -> int:
    from harness.analysis.projection import run_projection
    from harness.core.store import load_run
    from harness.present.report import render

    meta, rows = load_run(args.run_dir)
    # The Markdown and HTML headers show the run's projection; the data formats do not.
    projection = run_projection(args.run_dir) if args.format in ("md", "html") else None
    text = render(meta, rows, args.format, projection=projection)
    if args.published:
        text = _with_published(text, meta, rows, args.format)
    print(text, end="")
    return 0


def _with_published(text: str, meta: dict, rows: list[dict], fmt: str) -> str:
    """The report with a section of published figures beside the run's."""
    import json

    from harness.analysis.published import beside
    from harness.core.errors import UsageError
    from harness.core.store import json_text
    from harness.present import published

    result = beside(meta, rows)
    if fmt == "md":
        return text + "\n" + published.render_md(result) + "\n"
    if fmt == "html":
        return text.replace("</body>", published.render_html(result) + "\n</body>", 1)
    if fmt == "json":
        return json_text(json.loads(text) | {"published": result}, indent=1, sort_keys=True)
    raise UsageError(f"--published goes with --format md, html or json, not {fmt}")
