"""The `gwbench` command line. Each subcommand module only parses and calls.

Exit codes: 0 complete, 1 some case failed (or the disk refused a write: one line naming the
file and the OS error), 2 usage error, 130 interrupted (SIGINT or SIGTERM, at any point).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from harness import __version__
from harness.core import store
from harness.core.errors import Interrupted, StorageError, UsageError, clip

# Subcommand modules, in help order. Each defines NAME, HELP, add_arguments(), main().
COMMANDS = (
    "harness.commands.run",
    "harness.commands.list_cases",
    "harness.commands.report",
    "harness.commands.compare",
    "harness.commands.publish",
    "harness.commands.generations",
    "harness.commands.project",
    "harness.commands.model",
    "harness.commands.specs",
    "harness.commands.import_cmd",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (not a usage block)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {clip(message)} (see `{self.prog} --help`)\n")


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
    """The program. Called without `argv` (the `gwbench` script, `python -m harness`) it also
    owns the process's signals and streams: SIGINT and SIGTERM interrupt at any point (exit 130,
    never a traceback), and output that the terminal's encoding cannot show is escaped."""
    program = argv is None
    if program:
        _own_signals()
        _tolerant_streams()
    store.new_command()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # as given: recorded, and what ranks rerun
        if not getattr(args, "_main", None):
            parser.print_help()
            return 2
        return int(args._main(args) or 0)
    except UsageError as exc:
        print(f"gwbench: error: {clip(str(exc))}", file=sys.stderr)
        return 2
    except StorageError as exc:  # the disk, not the user: finished rows stay, --resume finishes
        print(f"gwbench: error: {clip(str(exc))}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Interrupted):
        print("gwbench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gwbench report ... | head`
        return 0
    finally:
        if program:
            _late_signals()


def _interrupt(signum, frame):
    raise Interrupted(f"signal {signum}")


def _own_signals() -> None:
    """SIGTERM interrupts like SIGINT from here on (the default would kill the process silently,
    exit 143, with run.json left `running`)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def _late_signals() -> None:
    """Once the command has returned, a signal during interpreter shutdown (atexit handlers of
    torch and others) exits 130 at once instead of printing a traceback from an atexit hook."""
    def stop(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a stream mid-flush or closed: exit anyway
                pass
        os._exit(130)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def _tolerant_streams() -> None:
    """An ASCII-only stdout (LANG=C, PYTHONIOENCODING=ascii) gets "\\u2014" for "—", not a
    UnicodeEncodeError in the middle of a report."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):  # replaced by a non-text stream; leave it
            pass


if __name__ == "__main__":
    sys.exit(main())
