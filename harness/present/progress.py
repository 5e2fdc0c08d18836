"""What `gwbench run` shows in the terminal: the progress bar (stderr) and the summary (stdout).

The summary fits the terminal it is printed to: the columns a reader needs first are always
there (case, dtype, the figure with its unit); power and time join as the width allows; each
failure is listed under the table with its reason. The case names the backend where a family ran more than one, and wraps
rather than lose its shape or size. The figure column names its statistic (the median of the
samples) and marks a noisy row with `~`, said once under the table. Past `limit` rows, each
family keeps its best rows, ranked in its own unit. Skipped cases are grouped by their reason,
one line per reason (two where the reason is long). Power under a window too short to trust is
shown in parentheses; where no power was read at all, one line says why.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from harness.core.errors import clip
from harness.core.row import algbw_gbps, busbw_gbps, memory_bytes, number, params
from harness.present.tables import fit_columns

NOISY_MARK = "~"


class Progress:
    """One bar over the cases, weighted by each case's expected cost so the ETA does not jump
    when cheap and expensive cases alternate; on a non-terminal, one line per finished case."""

    def __init__(self, cases: Sequence, console: Console | None = None,
                 cost_s: Callable[[object], float] | None = None):
        self.console = console or Console(stderr=True)
        self.total = len(cases)
        self._cost = cost_s or (lambda case: 1.0)
        self._weights = {c.id: max(self._cost(c), 1e-3) for c in cases}
        self.n = 0
        self._live = self.console.is_terminal
        self._bar = None
        self._case = None

    def __enter__(self):
        if self._live:
            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                                     TextColumn("ETA"), TimeRemainingColumn(),
                                     console=self.console, transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task("gwbench", total=sum(self._weights.values()),
                                            count=f"0/{self.total}")
        return self

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False

    def start(self, case) -> None:
        self._case = case
        if self._bar is not None:
            self._bar.update(self._task, description=case_label(case, width=self._label_width()))

    def done(self, row: dict) -> None:
        self.n += 1
        if self._bar is not None:
            self._bar.update(self._task, advance=self._weights.get(row["case_id"], 1.0),
                             count=f"{self.n}/{self.total}")
        else:
            self.console.print(f"[{self.n}/{self.total}] {row['status']:7s} {row['case_id']} "
                               f"{_figure(row)}", highlight=False, soft_wrap=True, markup=False)

    def _label_width(self) -> int:
        return max(20, self.console.width - 45)  # bar, counts, elapsed and ETA take ~45 columns


def case_label(case, width: int = 60) -> str:
    """family op dtype backend shape, cut at the end (the family and op stay readable)."""
    text = f"{case_text(case.identity())} {case.dtype} {case.backend}"
    return text if len(text) <= width else text[: width - 1] + "…"


def _figure(row: dict) -> str:
    if row.get("status") != "ok":
        return clip(row.get("error") or "", 120)
    return "  ".join(x for x in (result_text(row), _watts(row) + " W" if row.get("power_w") is not None else "") if x)


def result_text(row: dict) -> str:
    """The row's headline figure with its unit: TFLOP/s, busbw GB/s or GB/s; the median of its
    samples; `~` when noisy (IQR > 10% of the median). A collective on one rank shows algbw:
    its busbw is 0 by nccl-tests' definition for every collective that reduces or gathers."""
    if row.get("status") != "ok":
        return str(row.get("status"))
    noisy = NOISY_MARK if row.get("noisy") else ""
    if row.get("family") == "collectives":
        bus, alg = busbw_gbps(row), algbw_gbps(row)
        if row.get("world_size") == 1 and alg is not None:
            return f"algbw {alg:.4g} GB/s{noisy} (1 rank)"
        if bus is not None:
            return f"busbw {bus:.4g} GB/s{noisy}"
    tf, gb = number(row.get("tflops")), number(row.get("gbps"))
    if tf is not None:
        return f"{tf:.4g} TFLOP/s{noisy}"
    if gb is not None:
        return f"{gb:.4g} GB/s{noisy}"
    t = number(row.get("time_s"))
    return f"{t * 1e3:.4g} ms{noisy}" if t is not None else ""


def _rank_key(row: dict) -> tuple[int, float]:
    """Within a family: the figure the summary shows, one unit at a time (TFLOP/s rows, then
    GB/s rows), best first."""
    if row.get("family") == "collectives":
        v = algbw_gbps(row) if row.get("world_size") == 1 else busbw_gbps(row)
        return (1, -(v or 0.0))
    tf, gb = number(row.get("tflops")), number(row.get("gbps"))
    return (0, -tf) if tf is not None else (1, -(gb or 0.0))


def _watts(row: dict) -> str:
    """Power of a window under 1 s is shown in parentheses: the NVML counter and sensor
    refresh too coarsely for it to be trusted (core/stats.short_window)."""
    text = f"{row['power_w']:.0f}"
    return f"({text})" if row.get("telemetry_short_window") else text


def shape_text(row: dict) -> str:
    p = params(row)
    if {"m", "n", "k"} <= p.keys():
        return f"{p['m']}x{p['n']}x{p['k']}"
    return ",".join(f"{k}={v}" for k, v in p.items() if k != "data")


def _bytes(n) -> str:
    n = number(n)
    if n is None:
        return "?"
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= k:
            return f"{n / k:g} {unit}"
    return f"{n:g} B"


def case_text(row: dict) -> str:
    """What was measured, in a reader's words: family, operation, label and shape."""
    fam, op, label, p = str(row.get("family")), str(row.get("op")), row.get("label") or "", params(row)
    if fam == "gemm":
        return f"gemm {label} {shape_text(row)}".replace("  ", " ").strip()
    if fam == "attention" and "seq" in p:
        kv = f"/{p['kv_heads']}" if p.get("kv_heads") not in (None, p.get("heads")) else ""
        text = (f"attention {op} {label} s={p['seq']} d={p.get('head_dim')} h={p.get('heads')}{kv}"
                f"{' causal' if p.get('causal') else ''} b={p.get('batch')}")
        return " ".join(text.split())
    if fam == "collectives" and "size_bytes" in p:
        return f"{op} {str(p.get('placement', '')).replace('_', '-')} {_bytes(p['size_bytes'])}"
    if fam == "memory":
        size = memory_bytes(row)
        what = _bytes(size) if size else shape_text(row)
        return " ".join(f"memory {op} {label} {what}".split())
    return " ".join(f"{fam} {op} {label} {shape_text(row)}".split())


# Columns: (header, justify, minimum terminal width that shows it, cell of a row). The first
# ones are always shown; the others join as the terminal widens.
_COLUMNS: list[tuple[str, str, int, Callable[[dict], str]]] = [
    ("case", "left", 0, case_text),
    ("dtype", "left", 0, lambda r: str(r.get("dtype"))),
    ("result (median)", "right", 0, result_text),
    ("W", "right", 100, lambda r: _watts(r) if r.get("power_w") is not None else ""),
    ("median ms", "right", 130, lambda r: f"{r['time_s'] * 1e3:.4g}" if number(r.get("time_s")) else ""),
]


def summary_table(rows: list[dict], width: int = 160, limit: int = 60) -> Table:
    """The measured (ok and failed) rows; past `limit`, the failures and then each family's
    best rows (skipped rows are summarised by `skipped_lines`)."""
    measured = [r for r in rows if r.get("status") != "skipped"]
    shown = _largest_message(measured)
    has_power = any(r.get("power_w") is not None for r in shown)
    picked = shown if len(shown) <= limit else _top(shown, limit)
    cols = [c for c in _COLUMNS if width >= c[2] and (c[0] != "W" or has_power)]
    many = _families_with_backends(shown)
    cells = [[_case_cell(r, many) if name == "case" else cell(r) for name, _, _, cell in cols] for r in picked]
    headers = [c[0] for c in cols]
    # The case wraps (its shape or size is what tells rows apart); the figures are never cut.
    keep, widths = fit_columns(headers, cells, width, flexible=[0])
    table = Table(title="gwbench summary", show_lines=False, expand=False)
    for j in keep:
        wraps = headers[j] == "case"
        table.add_column(headers[j], justify=cols[j][1], no_wrap=not wraps,
                         overflow="fold" if wraps else "ellipsis", width=widths[j])
    for c in cells:
        table.add_row(*(Text(c[j]) for j in keep))  # Text: a `[/x]` in an error is text, not markup
    notes = []
    if len(shown) < len(measured):
        notes.append("collectives: the largest message of each sweep")
    if any(r.get("noisy") for r in picked if r.get("status") == "ok"):
        notes.append(f"{NOISY_MARK} noisy: IQR > 10% of the median")
    if len(shown) > limit:
        notes.append(f"{limit} of {len(shown)} measured rows (failures, then each family's best); "
                     "`gwbench report` has all")
    if notes:
        table.caption = "; ".join(notes)
    return table


def _largest_message(rows: list[dict]) -> list[dict]:
    """Each collective sweep by its largest message (the size nccl-tests users read busbw at) and
    its failures; every other row as it is. `gwbench report` prints the whole sweep."""
    largest: dict[tuple, int] = {}
    for r in rows:
        if r.get("family") == "collectives" and r.get("status") == "ok":
            key = (r.get("op"), r.get("dtype"), r.get("backend"), params(r).get("placement"))
            largest[key] = max(largest.get(key, 0), int(params(r).get("size_bytes") or 0))
    return [r for r in rows if r.get("family") != "collectives" or r.get("status") != "ok"
            or int(params(r).get("size_bytes") or 0) == largest[(r.get("op"), r.get("dtype"), r.get("backend"),
                                                                  params(r).get("placement"))]]


def _families_with_backends(rows: list[dict]) -> set[str]:
    """Families whose rows ran on more than one backend: there the backend tells rows apart."""
    seen: dict[str, set[str]] = {}
    for r in rows:
        seen.setdefault(str(r.get("family")), set()).add(str(r.get("backend")))
    return {f for f, b in seen.items() if len(b) > 1}


def _case_cell(row: dict, many_backends: set[str]) -> str:
    text = case_text(row)
    if str(row.get("family")) not in many_backends:
        return text
    head, _, rest = text.partition(" ")
    op, _, rest = rest.partition(" ")
    return " ".join(x for x in (head, op, str(row.get("backend")), rest) if x)


def _top(rows: list[dict], limit: int) -> list[dict]:
    """The failures (up to a third of `limit`), then the families' best rows taken in turn, so a
    family measured in GB/s is not crowded out by one in TFLOP/s; shown family by family."""
    bad = [r for r in rows if r["status"] != "ok"][: limit // 3]
    by_family: dict[str, list[dict]] = {}
    for r in rows:
        if r["status"] == "ok":
            by_family.setdefault(str(r.get("family")), []).append(r)
    queues = [sorted(rs, key=_rank_key) for rs in by_family.values()]
    chosen: dict[str, list[dict]] = {f: [] for f in by_family}
    room, turn = limit - len(bad), 0
    while room > 0 and any(queues):
        q = queues[turn % len(queues)]
        if q:
            r = q.pop(0)
            chosen[str(r.get("family"))].append(r)
            room -= 1
        turn += 1
    return bad + [r for f in by_family for r in chosen[f]]


def skipped_lines(rows: list[dict]) -> list[str]:
    """One line per (family, reason): the dtypes/backends it covers and how many cases."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        if r.get("status") == "skipped":
            groups.setdefault((str(r.get("family")), str(r.get("error") or "no reason given")), []).append(r)
    out = []
    for (family, reason), rs in groups.items():
        labels = sorted({str(r.get("dtype")) if family == "gemm" else f"{r.get('backend')} {r.get('dtype')}"
                         for r in rs})
        what = ", ".join(labels[:4]) + (f", … ({len(labels) - 4} more)" if len(labels) > 4 else "")
        n = len(rs)
        out.append(f"{family} {what} ({n} case{'s' if n != 1 else ''}): {reason}")
    return out


def power_note(rows: list[dict]) -> str | None:
    """Why the W column is absent or parenthesised: said once, not left blank."""
    measured = [r for r in rows if r.get("status") == "ok"]
    if not measured:
        return None
    if not any(r.get("power_w") is not None for r in measured):
        sources = sorted({str(r.get("power_source")) for r in measured if r.get("power_source")})
        why = sources[0] if len(sources) == 1 else "; ".join(sources[:2])
        return f"no power readings: {why}"
    if any(r.get("telemetry_short_window") and r.get("power_w") is not None for r in measured):
        return ("(W): window under 1 s or 32 iterations, power not trustworthy; the sustained cases "
                "(--sustain) give the figure to use")
    return None


def print_summary(rows: list[dict], run_dir, console: Console | None = None) -> None:
    console = console or Console(file=sys.stdout)
    width = console.width
    if any(r.get("status") != "skipped" for r in rows):
        console.print(summary_table(rows, width=width))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
    console.print(f"{counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped",
                  highlight=False)
    # Each failure with its reason (up to three lines), then the skipped cases one line per
    # reason (up to two): torch's reasons run to 200 characters, cut at a word.
    lines = [(f"  failed: {case_text(r)} {r.get('dtype')} {r.get('backend')}: {r.get('error') or 'no reason given'}", 3)
             for r in rows if r.get("status") == "failed"]
    lines += [(f"  skipped: {line}", 2) for line in skipped_lines(rows)]
    for line, most in lines:
        for part in textwrap.wrap(line, width=max(40, width - 1), subsequent_indent="    ",
                                  max_lines=most, placeholder=" …"):
            console.print(part, highlight=False, overflow="ellipsis", no_wrap=True, markup=False)
    note = power_note(rows)
    if note:
        console.print(note, highlight=False, overflow="fold", markup=False)
    console.print(f"run folder: {run_dir}", highlight=False, overflow="fold", markup=False)


def print_next_steps(run_dir, console: Console | None = None) -> None:
    console = console or Console(file=sys.stdout)
    console.print("next:", highlight=False)
    for cmd, what in ((f"gwbench report {run_dir}", "every row; --format md|html|csv|json"),
                      (f"gwbench publish {run_dir.parent} --out site", "a static site of every run"),
                      (f"gwbench compare {run_dir} OTHER_RUN", "case by case against another run")):
        console.print(f"  {cmd}   ({what})", highlight=False, overflow="fold", markup=False)
