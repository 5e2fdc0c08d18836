#!/usr/bin/env python3
"""Recompute the README's tables of the largest single run and its cost.

Each table is `gwbench project --hardware NAME [flags] --format json` with every other default,
tabulated: the p50 of the seeded Monte Carlo with its p5-p95, as the command prints them. Run from
the repository root (about 15 s):

    python3 scripts/readme_projection.py         # the Markdown tables, as pasted into README.md
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.present.tables import fmt_value  # noqa: E402
from harness.present.projection import fmt_money  # noqa: E402


def project(*flags: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "harness", "project", *flags, "--format", "json"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def cell(o: dict, kind: str = "") -> str:
    """p50 (p5–p95) in the command's own number format."""
    f = fmt_money if kind == "$" else (lambda x: fmt_value(x, kind))
    return f"{f(o['p50'])} ({f(o['p5'])}–{f(o['p95'])})"


def binding(site: dict) -> str:
    r = site["one_run"]
    return f"{r['binding']} ({r['binding_share'][r['binding']]:.0%})"


def main() -> int:
    print("| hardware, site | accelerators | aggregate training FLOP / year | largest single run in 90 days, "
          "FLOP | GPUs it uses | binding limit (share of samples) | goodput of the run | capex | "
          "TCO $ per GPU-hour | $ per 1e18 FLOP (site / the run) | cost of the run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for hw in ("H100", "GB200", "Rubin"):
        for site in project("--hardware", hw)["sites"]:
            o = site["outputs"]
            print(f"| {hw}, {site['name']} | {cell(o['accelerators'], 'count')} | {cell(o['flop_per_year'])} | "
                  f"{cell(o['one_run_flop'])} | {cell(o['one_run_gpus'], 'count')} | {binding(site)} | "
                  f"{o['one_run_goodput']['p50']:.2f} ({o['one_run_goodput']['p5']:.2f}–"
                  f"{o['one_run_goodput']['p95']:.2f}) | {cell(o['capex_usd'], '$')} | "
                  f"{cell(o['usd_per_gpu_hour'], '$')} | {fmt_money(o['usd_per_eflop']['p50'])} / "
                  f"{fmt_money(o['one_run_usd_per_eflop']['p50'])} | {cell(o['one_run_cost_usd'], '$')} |")
    print()
    print("| GB200, restart 10 s | largest single run, FLOP | GPUs it uses | campuses | global batch, tokens "
          "| MFU | goodput | binding limit (share of samples) |")
    print("|---|---|---|---|---|---|---|---|")
    for site in project("--hardware", "GB200", "--restart-s", "10")["sites"]:
        o = site["outputs"]
        print(f"| {site['name']} | {cell(o['one_run_flop'])} | {cell(o['one_run_gpus'], 'count')} | "
              f"{o['one_run_campuses']['p50']:.0f} | {cell(o['one_run_batch_tokens'])} | "
              f"{o['one_run_mfu']['p50']:.2f} ({o['one_run_mfu']['p5']:.2f}–{o['one_run_mfu']['p95']:.2f}) | "
              f"{o['one_run_goodput']['p50']:.2f} ({o['one_run_goodput']['p5']:.2f}–"
              f"{o['one_run_goodput']['p95']:.2f}) | {binding(site)} |")
    print()
    gens = project("--generations")
    print("$ per 1e18 bf16 FLOP (TCO at the modes, `project --generations`): " + ", ".join(
        f"{r['name']} {fmt_money(r['usd_per_eflop'])}" for r in gens["rows"]
        if r.get("usd_per_eflop") is not None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
