"""`gwbench specs [NAME]`: the hardware table, or one entry with the source of every figure."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.common import terminal_width
from harness.core import specs
from harness.core.store import json_text
from harness.present.specs import describe, overview, sources_for

NAME = "specs"
HELP = "show the hardware table (dense peaks, memory, power, systems) with sources"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", metavar="NAME",
                        help="an accelerator or system: key, name or reported device name, "
                             "e.g. 'NVIDIA H200'")
    parser.add_argument("--hardware-file", type=Path, metavar="PATH", help="another hardware table (TOML)")
    parser.add_argument("--format", choices=("text", "md", "json"), default="text",
                        help="text (default), md or json")
    parser.add_argument("--sources", action="store_true",
                        help="also print the published sources (docs/sources.md, shipped with gwbench) "
                             "behind the figures: the entry's lines, or the whole file without NAME")


def main(args: argparse.Namespace) -> int:
    table = specs.load(args.hardware_file)
    if args.name:
        entry = table.find(args.name)
        if args.format == "json":
            out = json_text(entry.to_dict(), indent=2)
        else:
            out = describe(entry, args.format, width=terminal_width())
    elif args.format == "json":
        out = json_text({"path": table.path,
                          "accelerators": [a.to_dict() for a in table.accelerators.values()],
                          "systems": [s.to_dict() for s in table.systems.values()]}, indent=2)
    else:
        out = overview(table, args.format, width=terminal_width())
    if args.sources and args.format != "json":
        text = specs.sources_text()
        out += "\n\n" + (sources_for(entry, text) if args.name else text)
    print(out)
    return 0
