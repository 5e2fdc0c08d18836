"""The `gwbench` command line. Each subcommand module only parses and calls.

Exit codes: 0 complete, 1 some case failed, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from harness import __version__
from harness.core.errors import UsageError

# Subcommand modules, in help order. Each defines NAME, HELP, add_arguments(), main().
COMMANDS = (
    "harness.commands.run",
    "harness.commands.list_cases",
    "harness.commands.report",
    "harness.commands.compare",
    "harness.commands.publish",
    "harness.commands.project",
    "harness.commands.model",
    "harness.commands.specs",
    "harness.commands.import_cmd",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (not a usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gwbench", description="Benchmark an AI compute node and project "
                     "its measured throughput and power to 1 GW / 10 GW of training FLOPs.")
    parser.add_argument("--version", action="version", version=f"gwbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for modname in COMMANDS:
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:  # a command not built yet in this checkout
                continue
            raise
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_main", None):
        parser.print_help()
        return 2
    try:
        return int(args._main(args) or 0)
    except UsageError as exc:
        print(f"gwbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gwbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gwbench report ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
