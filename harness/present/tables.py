"""Plain tables and numbers for the terminal and Markdown: the formatting every renderer shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.present.escape import md


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "text") -> str:
    """A Markdown (`md`) or plain aligned (`text`) table of already-formatted cells."""
    cells = [[str(c) for c in headers]] + [["—" if c is None else str(c) for c in r] for r in rows]
    if fmt == "md":
        lines = ["| " + " | ".join(md(c) for c in r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("---" for _ in headers) + "|")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt_value(x: float | None, unit: str = "") -> str:
    """Whole counts exactly; else 3 significant figures, with separators up to 1e9 (counts) or
    between 100 and 1e6, and 1.23e28 beyond."""
    if x is None:
        return "—"
    if unit == "count" and x == round(x) and x < 1e9:
        return f"{x:,.0f}"
    if unit == "count" and x < 1e9:
        return f"{float(f'{x:.3g}'):,.0f}"
    if 100 <= abs(x) < 1e6:
        return f"{x:,.0f}"
    s = f"{x:.3g}"
    return s.replace("e+", "e").replace("e0", "e").replace("e-0", "e-")
