"""Progress bar with ETA (stderr) and the end-of-run summary table (stdout)."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.table import Table
from rich.text import Text


class Progress:
    """One task bar over the cases; on a non-terminal it prints one line per case."""

    def __init__(self, total: int, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.total = total
        self.n = 0
        self._live = self.console.is_terminal
        self._bar = None

    def __enter__(self):
        if self._live:
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("gwbench", total=self.total)
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

    def start(self, case) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=_short(case.id))

    def done(self, row: dict) -> None:
        self.n += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        else:
            self.console.print(f"[{self.n}/{self.total}] {row['status']:7s} {row['case_id']} "
                               f"{_figure(row)}", highlight=False, soft_wrap=True, markup=False)


def _short(text: str, width: int = 48) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


def _figure(row: dict) -> str:
    if row.get("status") != "ok":
        return (row.get("error") or "")[:120]
    parts = []
    if row.get("tflops") is not None:
        parts.append(f"{row['tflops']:.4g} TFLOP/s")
    if row.get("gbps") is not None and row.get("tflops") is None:
        parts.append(f"{row['gbps']:.4g} GB/s")
    if row.get("busbw_gbps") is not None:
        parts.append(f"busbw {row['busbw_gbps']:.4g} GB/s")
    if row.get("power_w") is not None:
        parts.append(f"{_watts(row)} W")
    return "  ".join(parts)


def _watts(row: dict) -> str:
    """Power of a window under 1 s is shown in parentheses: the NVML counter and sensor
    refresh too coarsely for it to be trusted (telemetry.short_window)."""
    text = f"{row['power_w']:.0f}"
    return f"({text})" if row.get("telemetry_short_window") else text


def shape_text(row: dict) -> str:
    p = row.get("params") if isinstance(row.get("params"), dict) else {}  # a hand-edited file
    if {"m", "n", "k"} <= p.keys():
        return f"{p['m']}x{p['n']}x{p['k']}"
    return ",".join(f"{k}={v}" for k, v in p.items())


def summary_table(rows: list[dict], limit: int = 60) -> Table:
    """Ok rows first by family; failures and skips listed with their reason."""
    table = Table(title="gwbench summary", show_lines=False)
    for col, just in (("family", "left"), ("op", "left"), ("case", "left"), ("dtype", "left"),
                      ("status", "left"), ("median ms", "right"), ("TFLOP/s", "right"),
                      ("GB/s", "right"), ("W", "right"), ("note", "left")):
        table.add_column(col, justify=just)
    shown = rows if len(rows) <= limit else _top(rows, limit)
    for r in shown:
        note = r.get("error") or ("noisy (IQR > 10% of median)" if r.get("noisy") else "")
        t = r.get("time_s")
        table.add_row(*(Text(str(c)) for c in (  # Text: a `[/x]` in an error is text, not markup
            r["family"], r["op"], f"{r.get('label') or ''} {shape_text(r)}".strip(), r["dtype"],
            r["status"], f"{t * 1e3:.4g}" if t else "",
            f"{r['tflops']:.4g}" if r.get("tflops") is not None else "",
            f"{r['gbps']:.4g}" if r.get("gbps") is not None else "",
            _watts(r) if r.get("power_w") is not None else "",
            (note or "")[:90],
        )))
    if len(rows) > limit:
        table.caption = f"{limit} of {len(rows)} rows (best per family first); `gwbench report` has all"
    return table


def _top(rows: list[dict], limit: int) -> list[dict]:
    ok = sorted((r for r in rows if r["status"] == "ok"),
                key=lambda r: -(r.get("tflops") or r.get("gbps") or 0))
    bad = [r for r in rows if r["status"] != "ok"]
    return (bad[: limit // 3] + ok)[:limit]


def print_summary(rows: list[dict], run_dir, console: Console | None = None) -> None:
    console = console or Console(file=sys.stdout, width=160)
    console.print(summary_table(rows))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
    console.print(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    if any(r.get("telemetry_short_window") and r.get("power_w") is not None for r in rows):
        console.print("(W): window under 1 s or 32 iterations, power not trustworthy; "
                      "sustained cases (--sustain) give the figure to use")
    console.print(f"run folder: {run_dir}", highlight=False, soft_wrap=True, markup=False)
