"""Plain tables and numbers for the terminal and Markdown: the formatting every renderer shares."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from harness.present.escape import md


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "text",
                 width: int | None = None, wrap: Sequence[int] = (0,)) -> str:
    """A Markdown (`md`) or plain aligned (`text`) table of already-formatted cells.

    With `width` (a terminal's), a text table wider than it wraps its `wrap` columns (text, at
    words) to fit, and when that is not enough it is printed in parts, each repeating the first
    column; figures are never cut. Without, one line a row (files and pipes).
    """
    cells = [[str(c) for c in headers]] + [["—" if c is None else str(c) for c in r] for r in rows]
    if fmt == "md":
        lines = ["| " + " | ".join(md(c) for c in r) + " |" for r in cells]
        lines.insert(1, "|" + "|".join("---" for _ in headers) + "|")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if width is not None and sum(widths) + 2 * (len(widths) - 1) > width:
        widths = _wrapped_widths(cells, widths, width, [j for j in wrap if j < len(widths)])
        if sum(widths) + 2 * (len(widths) - 1) > width and len(widths) > 2:
            return "\n\n".join(format_table([headers[j] for j in part], [[r[j] for j in part] for r in rows],
                                             fmt, width, wrap=[part.index(j) for j in wrap if j in part])
                                for part in _parts(widths, width))
    return _text_lines(cells, widths)


def _parts(widths: list[int], width: int) -> list[list[int]]:
    """Column groups that fit `width`, each led by column 0, the others kept in order."""
    parts, current = [], [0]
    for j in range(1, len(widths)):
        if len(current) > 1 and sum(widths[k] + 2 for k in current) + widths[j] > width:
            parts.append(current)
            current = [0]
        current.append(j)
    return parts + [current]


def _text_lines(cells: list[list[str]], widths: list[int]) -> str:
    lines = []
    for r in cells:
        parts = [textwrap.wrap(c, w, break_on_hyphens=False) or [""] if len(c) > w else [c]
                 for c, w in zip(r, widths)]
        for k in range(max(len(p) for p in parts)):
            lines.append("  ".join((p[k] if k < len(p) else "").ljust(w) for p, w in zip(parts, widths)).rstrip())
        if r is cells[0]:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _wrapped_widths(cells: list[list[str]], widths: list[int], width: int, wrap: list[int]) -> list[int]:
    """Widths of a text table fitted to `width`: the `wrap` columns share what the others leave,
    the narrowest first, none under its longest word (or 12)."""
    fixed = sum(w for j, w in enumerate(widths) if j not in wrap) + 2 * (len(widths) - 1)
    room, out = width - fixed, list(widths)
    for n, j in enumerate(sorted(wrap, key=lambda j: widths[j])):
        floor = min(widths[j], max([12] + [len(w) for r in cells for w in r[j].split()]))
        out[j] = min(widths[j], max(floor, room // (len(wrap) - n)))
        room -= out[j]
    return out


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


def fit_columns(headers: Sequence[str], cells: Sequence[Sequence[str]], width: int | None,
                flexible: Sequence[int] = (0,), optional: Sequence[int] = (),
                min_flexible: int = 8) -> tuple[list[int], dict[int, int]]:
    """Which columns a box table shows in `width` terminal columns, and how wide each is.

    Figures keep their natural width (never cut); `flexible` columns (text) share what is left,
    each between `min_flexible` (or its longest word) and its natural width; `optional` columns
    (indices, least wanted first) are dropped until the rest fit. A box table costs 3 columns
    per column + 1.
    """
    natural = [max([len(str(headers[i]))] + [len(r[i]) for r in cells]) for i in range(len(headers))]
    # A flexible column may wrap between words, never inside one ("(preliminary" / ")").
    floor = {i: max([min_flexible] + [len(w) for r in cells for w in r[i].split()]) for i in flexible}
    keep = list(range(len(headers)))
    flex = [i for i in flexible if i in keep]

    def need(cols: list[int]) -> int:
        return sum(min(natural[j], floor[j]) if j in flexible else natural[j] for j in cols) + 3 * len(cols) + 1

    if width is not None:
        for i in optional:
            if need(keep) <= width:
                break
            keep.remove(i)
    widths = {j: natural[j] for j in keep}
    if width is not None:
        flex = [j for j in flexible if j in keep]
        room = width - sum(natural[j] for j in keep if j not in flex) - 3 * len(keep) - 1
        # Share the room among the flexible columns, the narrowest first (each takes what it needs).
        for n, j in enumerate(sorted(flex, key=lambda j: natural[j])):
            share = max(floor[j], room // (len(flex) - n)) if room > 0 else floor[j]
            widths[j] = min(natural[j], share)
            room -= widths[j]
    return keep, widths


def rich_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
               width: int | None = None, optional: Sequence[int] = ()):
    """The same cells as a rich table: the terminal's one table style (the run summary's).

    Fits `width` columns (fit_columns): the first column is the flexible one and may wrap; the
    figures are never cut; `optional` columns go first when the terminal is narrow.
    """
    from rich.table import Table

    cells = [["—" if c is None else str(c) for c in r] for r in rows]
    keep, widths = fit_columns(headers, cells, width, flexible=(0,), optional=optional)
    table = Table(title=title)
    for j in keep:
        table.add_column(str(headers[j]), justify="left" if j == 0 else "right", width=widths[j],
                         no_wrap=j != 0, overflow="fold")
    for r in cells:
        table.add_row(*(r[j] for j in keep))
    return table
