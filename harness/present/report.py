"""Render a run as Markdown, HTML, CSV or JSON.

Tables are pivots of the tidy rows, one per family, shaped as a reader takes them in:
GEMM shapes × dtypes (TFLOP/s), attention sequence × backend (TFLOP/s), collectives size ×
collective (algbw / busbw GB/s), memory kernel × size (GB/s). Each figure carries its share of
the spec peak of the run's device (harness/specs.py, looked up by the name torch/NVML
reported, as harness/projection.py does), TFLOP/s per W where power was read, and a trailing
"~" where the measurement was noisy (IQR > 10% of the median, harness/stats.py): flagged, not
hidden. A family whose rows lack the fields its pivot needs is left out, never a crash.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis.peaks import peak_for, spec_for
from harness.core.errors import UsageError
from harness.core.flops import STREAM_WORDS
from harness.present.nccl_tests import format_nccl_tests
from harness.core.row import (algbw_gbps, busbw_gbps, extra, gemm_method, memory_bytes, number, params,
                              per_watt, rate_at, trusted_power)
from harness.core.runinfo import NOT_RECORDED, device_count_text, device_label
from harness.core.store import json_text
from harness.present.escape import csv_cell, md
from harness.present.html import esc, html_page
from harness.present.progress import shape_text
from harness.present.projection import summary_lines

def _stddev_s(r: Mapping) -> float | None:
    cv, mean = number(r.get("time_cv")), number(r.get("time_mean_s"))
    return cv * mean if cv is not None and mean is not None else None


# The CSV: (header, cell of a row). Units are in the headers (GB_per_s is 1e9 bytes per second,
# TFLOP_per_s 1e12 FLOP per second; never bits); TFLOP_per_s and GB_per_s are at the median time,
# _mean at the mean and _best at the fastest sample; counts are written as integers and flags as
# true/false, empty where the case did not run. harness.load_run gives the same rows typed.
CSV_FIELDS: tuple[tuple[str, Callable[[Mapping], Any]], ...] = (
    ("case_id", lambda r: r.get("case_id")), ("family", lambda r: r.get("family")),
    ("op", lambda r: r.get("op")), ("dtype", lambda r: r.get("dtype")),
    ("backend", lambda r: r.get("backend")), ("world_size", lambda r: r.get("world_size")),
    ("label", lambda r: r.get("label")), ("status", lambda r: r.get("status")),
    ("error", lambda r: r.get("error")), ("n_samples", lambda r: r.get("n_samples")),
    ("time_median_s", lambda r: r.get("time_s")), ("time_mean_s", lambda r: r.get("time_mean_s")),
    ("time_min_s", lambda r: r.get("time_min_s")), ("time_stddev_s", _stddev_s),
    ("time_iqr_s", lambda r: r.get("time_iqr_s")), ("noisy", lambda r: r.get("noisy")),
    ("flop", lambda r: r.get("flop")), ("bytes", lambda r: r.get("bytes")),
    ("TFLOP_per_s", lambda r: r.get("tflops")),
    ("TFLOP_per_s_mean", lambda r: rate_at(r, "tflops", "mean")),
    ("TFLOP_per_s_best", lambda r: rate_at(r, "tflops", "min")),
    ("GB_per_s", lambda r: r.get("gbps")), ("GB_per_s_mean", lambda r: rate_at(r, "gbps", "mean")),
    ("GB_per_s_best", lambda r: rate_at(r, "gbps", "min")),
    ("algbw_GB_per_s", lambda r: extra(r).get("algbw_gbps")),
    ("busbw_GB_per_s", lambda r: extra(r).get("busbw_gbps")),
    ("power_W", lambda r: r.get("power_w")), ("energy_J", lambda r: r.get("energy_j")),
    ("power_source", lambda r: r.get("power_source")), ("window_s", lambda r: r.get("window_s")),
    ("short_window", lambda r: r.get("telemetry_short_window")),
    # Per joule (= per watt) only from windows long enough to trust (core/row.per_watt).
    ("TFLOP_per_J", lambda r: per_watt(r, "tflops")), ("GB_per_J", lambda r: per_watt(r, "gbps")),
)
CSV_COLUMNS = tuple(name for name, _ in CSV_FIELDS)
NOISY_MARK = "~"
LEGEND = (f"figures are medians of the timed samples unless marked; `{NOISY_MARK}` noisy (IQR > 10% "
          "of the median); `(NN%)` share of the device's dense spec peak; `/W` per watt where power "
          "was read over a window of 1 s or more; `failed` / `skipped`: see the row list")


# ------------------------------------------------------------------ small helpers


def _num(v, fmt: str = ".4g") -> str:
    v = number(v)
    return "" if v is None else format(v, fmt)


def _md_escape(text: Any) -> str:
    return md(text)


def fmt_bytes(n: Any) -> str:
    n = number(n)
    if n is None:
        return "?"
    for unit, k in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):  # nccl-tests' convention
        if n >= k:
            return f"{n / k:g} {unit}"
    return f"{n:g} B"


# ------------------------------------------------------------------ pivots


@dataclass
class Cell:
    text: str  # the figure, formatted
    value: float | None = None
    share: float | None = None  # of spec peak
    per_w: float | None = None
    noisy: bool = False
    status: str = "ok"

    def render(self) -> str:
        if self.status != "ok":
            return self.status
        s = self.text
        if self.share is not None:
            s += f" ({100 * self.share:.0f}%)"
        if self.per_w is not None:
            s += f" {self.per_w:.3g}/W"
        return s + (NOISY_MARK if self.noisy else "")


@dataclass
class Pivot:
    title: str
    unit: str
    corner: str
    row_keys: list = field(default_factory=list)
    col_keys: list = field(default_factory=list)
    cells: dict = field(default_factory=dict)  # (row_key, col_key) -> Cell
    note: str = ""

    def add(self, r: Any, c: Any, cell: Cell) -> None:
        if r not in self.row_keys:
            self.row_keys.append(r)
        if c not in self.col_keys:
            self.col_keys.append(c)
        old = self.cells.get((r, c))
        # Two rows in one cell (e.g. a resumed case): keep the ok one with the higher figure.
        if old is None or (old.status != "ok" and cell.status == "ok") or \
                ((cell.value or 0) > (old.value or 0) and cell.status == "ok"):
            self.cells[(r, c)] = cell

    def table(self) -> tuple[list[str], list[list[str]]]:
        headers = [self.corner] + [str(c) for c in self.col_keys]
        body = [[str(r)] + [self.cells[(r, c)].render() if (r, c) in self.cells else ""
                            for c in self.col_keys] for r in self.row_keys]
        return headers, body


def _cell(row: Mapping, value: float | None, peak: float | None, fmt: str = ".4g",
          per_w: bool = True) -> Cell:
    status = str(row.get("status"))
    if status != "ok" or value is None:
        return Cell("", status=status if status != "ok" else "n/a")
    share = value / peak if peak else None
    # Per-watt only from windows long enough to trust (core/row.per_watt: >= 1 s and 32
    # iterations); on an H200 0.1 s windows read 250-1370 W against a 700 W cap.
    pw = per_watt(row) if per_w else None
    return Cell(format(value, fmt), value, share, pw, bool(row.get("noisy")))


def _headline(row: Mapping, key: str) -> tuple[float | None, str]:
    """The row's figure and, when it is not the median (an imported tool's own statistic:
    BabelStream's fastest run, nvbandwidth's cells), a suffix naming its statistic."""
    v = number(row.get(key))
    if v is not None:
        return v, ""
    for stat, mark in (("min", " (fastest)"), ("mean", " (mean)")):  # BabelStream's own: fastest
        v = rate_at(row, key, stat)
        if v is not None:
            return v, mark
    return None, ""


def _sort_key(x: Any):
    return (0, x, "") if isinstance(x, (int, float)) else (1, 0, str(x))


def _gemm(rows: list[dict], acc) -> list[Pivot]:
    pv = Pivot("GEMM: TFLOP/s by shape (m×n×k) and dtype", "TFLOP/s", "shape")
    for r in rows:
        p = params(r)
        if not {"m", "n", "k"} <= p.keys() or not r.get("dtype"):
            continue
        shape = f"{p['m']}×{p['n']}×{p['k']}"
        if r.get("label"):
            shape = f"{shape} {r['label']}"
        col = r["dtype"] if r.get("op") in (None, "matmul") else f"{r['op']} {r['dtype']}"
        value, stat = _headline(r, "tflops")
        method = gemm_method(p)
        col += (f" ({method})" if method else "") + stat
        pv.add(shape, col, _cell(r, value, peak_for(acc, "gemm", r["dtype"])[0]))
    return [pv] if pv.cells else []


def _attention(rows: list[dict], acc) -> list[Pivot]:
    groups: dict[tuple, Pivot] = {}
    for r in rows:
        p = params(r)
        seq, backend = p.get("seq"), r.get("backend")
        if seq is None or backend is None:
            continue
        causal = p.get("causal")
        hd, op, dt = p.get("head_dim"), r.get("op", "?"), r.get("dtype", "?")
        heads, kv = p.get("heads"), p.get("kv_heads")
        gqa = heads is not None and kv is not None and kv != heads
        key = (op, dt, hd, bool(causal), (heads, kv) if gqa else None)
        if key not in groups:
            title = (f"attention {op} {dt}: TFLOP/s by sequence and backend "
                     f"(head_dim {hd}, {'causal' if causal else 'non-causal'}"
                     + (f", GQA {heads} q / {kv} kv heads" if gqa else "") + ")")
            groups[key] = Pivot(title, "TFLOP/s", "seq")
        groups[key].add(seq, backend, _cell(r, number(r.get("tflops")), peak_for(acc, "attention", dt)[0]))
    pivots_ = _sorted(groups)
    for pv in pivots_:  # the question per shape: which backend to pin
        for seq in pv.row_keys:
            ok = [(c.value, b) for (r, b), c in pv.cells.items() if r == seq and c.status == "ok" and c.value]
            if ok:
                pv.add(seq, "best", Cell(max(ok)[1], status="ok"))
    return pivots_


def _collectives(rows: list[dict], acc) -> list[Pivot]:
    peak = peak_for(acc, "collectives", None)[0]
    groups: dict[tuple, Pivot] = {}
    for r in rows:
        size = params(r).get("size_bytes")
        alg, bus = algbw_gbps(r), busbw_gbps(r)
        if size is None or (r.get("status") == "ok" and alg is None and bus is None):
            continue
        ws = r.get("world_size", 1)
        key = (r.get("dtype", "?"), r.get("backend", "?"), ws)
        if key not in groups:
            groups[key] = Pivot(f"collectives {key[0]} ({key[1]}, {ws} ranks): algbw / busbw GB/s "
                                "by message size", "GB/s", "size")
        coll = r.get("op", "?")
        placement = params(r).get("placement")
        if placement:
            coll = f"{coll} {str(placement).replace('_', '-')}"
        c = _cell(r, bus, peak, per_w=False)
        if c.status == "ok":
            c.text = f"{_num(alg, '.3g') or '?'} / {_num(bus, '.3g') or '?'}"
        groups[key].add(size, coll, c)
    for pv in groups.values():  # sizes in bytes sort numerically, then print in nccl-tests' units
        pv.row_keys = sorted(pv.row_keys, key=_sort_key)
        pv.cells = {(fmt_bytes(r), c): v for (r, c), v in pv.cells.items()}
        pv.row_keys = [fmt_bytes(r) for r in pv.row_keys]
        pv.note = "busbw share of the spec NVLink bandwidth (unidirectional) in parentheses"
    return list(groups.values())


def _memory(rows: list[dict], acc) -> list[Pivot]:
    peak = peak_for(acc, "memory", None)[0]
    groups: dict[str, Pivot] = {}
    for r in rows:
        size = memory_bytes(r)
        n = params(r).get("n")
        if size is None and n is None:
            continue
        if r.get("op") == "peak_fma":
            continue
        dtype = r.get("dtype", "?")
        kernel = f"{r.get('op', '?')} ({r.get('backend', '?')})"
        size_label = fmt_bytes(size) if size is not None else f"n={n}"
        # Only HBM/DRAM-resident kernels are judged against the HBM peak.
        # d2d counts one side (nvbandwidth), so its share of the HBM peak would read half.
        is_local = r.get("op") in STREAM_WORDS
        g = groups.setdefault(dtype, Pivot(f"memory {dtype}: GB/s by kernel and size", "GB/s", "kernel"))
        value, stat = _headline(r, "gbps")
        g.add(kernel + stat, size_label, _cell(r, value, peak if is_local else None, per_w=False))
    for pv in groups.values():
        pv.note = "share of the spec HBM bandwidth for the STREAM kernels (d2d counts one side, nvbandwidth)"
    return list(groups.values())


def spread(rows: list[dict]) -> Pivot | None:
    """Every GPU at once: for each per-device case measured on several
    ranks, the spread of the figure across GPUs and the slowest one. A synchronous job runs
    at its slowest GPU's pace, so the minimum is the figure to plan with."""
    by_case: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("rank") is None or r.get("family") == "collectives" or r.get("status") != "ok":
            continue
        by_case.setdefault(str(r.get("case_id")), []).append(r)
    pv = Pivot("every GPU at once: spread across ranks (slowest GPU named)", "", "case")
    for case_id, rs in by_case.items():
        key = "tflops" if any(number(r.get("tflops")) for r in rs) else "gbps"
        vals = [(number(r.get(key)), r) for r in rs if number(r.get(key))]
        if len({r.get("rank") for _, r in vals}) < 2:
            continue
        lo, slow = min(vals, key=lambda x: x[0])
        hi = max(v for v, _ in vals)
        unit = "TFLOP/s" if key == "tflops" else "GB/s"
        pv.add(case_id, "GPUs", Cell(str(len(vals))))
        pv.add(case_id, f"min {unit}", Cell(f"{lo:.4g}", lo))
        pv.add(case_id, f"max {unit}", Cell(f"{hi:.4g}", hi))
        pv.add(case_id, "spread", Cell(f"{100 * (hi - lo) / hi:.1f}%"))
        pv.add(case_id, "slowest", Cell(f"{slow.get('host', '?')} rank {slow.get('rank')} "
                                        f"(local rank {slow.get('local_rank', '?')}, its GPU on a CUDA run)"))
    pv.note = "spread = (max - min) / max; the per-family tables above show the fastest GPU's figure"
    return pv if pv.cells else None


def _sorted(groups: Mapping[Any, Pivot]) -> list[Pivot]:
    out = []
    for pv in groups.values():
        pv.row_keys = sorted(pv.row_keys, key=_sort_key)
        out.append(pv)
    return out


PIVOTS: dict[str, Callable[[list[dict], Any], list[Pivot]]] = {
    "gemm": _gemm, "attention": _attention, "collectives": _collectives, "memory": _memory}


def pivots(meta: Mapping, rows: list[dict]) -> dict[str, list[Pivot]]:
    """Family -> its pivot tables; a family whose rows do not fit its pivot is left out."""
    acc = spec_for(meta)
    fams: dict[str, list[dict]] = {}
    for r in rows:
        fams.setdefault(str(r.get("family")), []).append(r)
    out = {}
    for fam, fam_rows in fams.items():
        fn = PIVOTS.get(fam)
        if fn is None:
            continue
        try:
            tables = fn(fam_rows, acc)
        except (TypeError, ValueError, KeyError, AttributeError):  # rows of an unexpected shape
            tables = []
        if tables:
            out[fam] = tables
    sp = spread(rows)
    if sp is not None:
        out["every GPU"] = [sp]
    return out


# ------------------------------------------------------------------ header and projection


def cudnn_text(version: Any) -> str:
    """torch.backends.cudnn.version() as people write it: cuDNN 9 encodes major*10000 + minor*100
    + patch (91900 = 9.19.0), cuDNN 8 and older major*1000 + minor*100 + patch (8907 = 8.9.7)
    (CUDNN_VERSION in cudnn_version.h of each release; docs/sources.md)."""
    v = number(version)
    if v is None or v != int(v) or v <= 0:
        return str(version)
    v = int(v)
    if v >= 90000:
        return f"{v // 10000}.{v // 100 % 100}.{v % 100}"
    return f"{v // 1000}.{v // 100 % 10}.{v % 100}"


def software_stack(meta: Mapping) -> list[tuple[str, str]]:
    """(name, version) of torch, CUDA, cuDNN, NCCL and the driver, as the run recorded them;
    "not recorded" where it did not; a CPU run has no GPU stack and says so once."""
    d = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
    sw = d.get("software") if isinstance(d.get("software"), Mapping) else {}
    torch = ("torch", str(sw.get("torch") or "not recorded"))
    if d.get("backend") == "cpu":
        return [torch, ("GPU stack", "none (CPU run)")]
    found = {"CUDA": sw.get("torch_cuda"), "cuDNN": cudnn_text(sw["cudnn"]) if sw.get("cudnn") else None,
             "NCCL": sw.get("nccl") or d.get("nccl_version"), "driver": d.get("driver_version")}
    return [torch] + [(k, str(v) if v not in (None, "") else "not recorded") for k, v in found.items()]


def git_text(meta: Mapping) -> str:
    """The gwbench commit that measured the run, or "not recorded" (a run from an installed copy)."""
    git = meta.get("git") if isinstance(meta.get("git"), Mapping) else {}
    commit = git.get("commit")
    if not commit:
        return "not recorded"
    dirty = git.get("dirty")
    state = {True: "with uncommitted changes", False: "clean"}.get(dirty, "changes not recorded")
    return f"{commit} ({state})"


def system_facts(meta: Mapping) -> list[tuple[str, str]]:
    d = meta.get("device") if isinstance(meta.get("device"), Mapping) else {}
    sw = d.get("software") if isinstance(d.get("software"), Mapping) else {}
    tel = meta.get("telemetry") if isinstance(meta.get("telemetry"), Mapping) else {}
    acc = spec_for(meta)
    extra_facts = []
    st = meta.get("stability") if isinstance(meta.get("stability"), Mapping) else None
    if st is not None:
        extra_facts.append(("stability", _stability_text(st)))
    imp = meta.get("imported_from") if isinstance(meta.get("imported_from"), Mapping) else None
    if imp is not None:
        extra_facts.append(("imported", f"{imp.get('version')} output {imp.get('file')} "
                                        f"(sha256 {str(imp.get('sha256'))[:16]}...)"))
    return extra_facts + [
        ("run", f"{meta.get('run_id')} ({meta.get('status') or 'status not recorded'}); started "
                f"{meta.get('started_at') or 'not recorded'}, finished {meta.get('finished_at') or 'not recorded'}"),
        ("host", str(d.get("host", "n/a"))),
        ("device", f"{device_label(meta)} ({d.get('backend') or NOT_RECORDED}) × {device_count_text(meta)}"
                   + (f"; spec entry {acc.name}" if acc else "; no spec entry (shares not shown)")),
        ("software", ", ".join(f"{k} {v}" for k, v in software_stack(meta))
                     + f", python {sw.get('python') or 'not recorded'}"),
        ("power", f"limit {d.get('power_limit_w', 'n/a')} W; telemetry {tel.get('source', 'n/a')}"),
        ("git", git_text(meta)),
    ]


# ------------------------------------------------------------------ renderers


def _stability_text(st: Mapping) -> str:
    """run.json's `stability` (measure/stability.py) in one line, UNSTABLE first when it is."""
    a, b, ratio = number(st.get("start_s")), number(st.get("end_s")), number(st.get("ratio"))
    if a is None or b is None:
        return f"not judged ({st.get('error') or 'reference kernel not timed'})"
    verdict = "UNSTABLE: figures not steady, no significance in compare" if st.get("unstable") else "steady"
    return (f"{verdict}; reference {st.get('reference')}: {a * 1e3:.4g} ms at the start, "
            f"{b * 1e3:.4g} ms at the end ({ratio:.3g}x, bound {st.get('bound')}x)")


def header_md(meta: dict, projection: Mapping | None = None) -> str:
    lines = [f"# gwbench run {_md_escape(meta.get('run_id'))}", ""]
    lines += [f"- {k}: {_md_escape(v)}" for k, v in system_facts(meta)]
    lines += [f"- {_md_escape(x)}" for x in summary_lines(projection)]
    return "\n".join(lines)


def pivot_md(pv: Pivot) -> str:
    headers, body = pv.table()
    out = [f"### {_md_escape(pv.title)}", "",
           "| " + " | ".join(_md_escape(h) for h in headers) + " |",
           "|---|" + "|".join("---:" for _ in headers[1:]) + "|"]
    out += ["| " + " | ".join(_md_escape(c) for c in r) + " |" for r in body]
    if pv.note:
        out += ["", f"_{_md_escape(pv.note)}_"]
    return "\n".join(out)


def family_md(family: str, rows: list[dict]) -> str:
    """Every row of a family, one line each: the list behind the pivots, with errors."""
    out = [f"### {family}: all rows", "",
           "| op | case | dtype | backend | status | median ms | IQR % | TFLOP/s median | TFLOP/s mean "
           "| GB/s median | W | TFLOP/s/W | note |",
           "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        t, iqr = number(r.get("time_s")), number(r.get("time_iqr_s"))
        iqr_pct = 100 * iqr / t if t and iqr is not None else None
        note = r.get("error") or ("noisy" if r.get("noisy") else "")
        case = f"{r.get('label') or ''} {shape_text(r)}".strip()
        mean = rate_at(r, "tflops", "mean")
        out.append("| " + " | ".join(_md_escape(x) for x in (
            r.get("op"), case, r.get("dtype"), r.get("backend"), r.get("status"),
            _num(t * 1e3 if t else None), _num(iqr_pct, ".1f"), _num(r.get("tflops")),
            _num(mean), _num(r.get("gbps")), _watts(r),
            _num(per_watt(r), ".3g"), note)) + " |")
    return "\n".join(out)


def _watts(row: Mapping) -> str:
    """Power of a window under 1 s in parentheses: shown, never used (core/row.trusted_power)."""
    w = _num(row.get("power_w"), ".0f")
    return f"({w})" if w and trusted_power(row) is None else w


def _by_family(rows: Iterable[dict]) -> dict[str, list[dict]]:
    fams: dict[str, list[dict]] = {}
    for r in rows:
        fams.setdefault(str(r.get("family")), []).append(r)
    return fams


def render_md(meta: dict, rows: list[dict], projection: Mapping | None = None) -> str:
    parts = [header_md(meta, projection)]
    pv = pivots(meta, rows)
    if pv:
        parts.append(LEGEND)
    for fam, fam_rows in _by_family(rows).items():
        parts.append(f"## {fam}")
        parts += [pivot_md(p) for p in pv.get(fam, [])]
        parts.append(family_md(fam, fam_rows))
    if "every GPU" in pv:
        parts.append("## every GPU at once")
        parts += [pivot_md(p) for p in pv["every GPU"]]
    if not rows:
        parts.append("(no rows yet)")
    return "\n\n".join(parts) + "\n"


def pivot_html(pv: Pivot) -> str:
    headers, body = pv.table()
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    trs = []
    for r in body:
        tds = [f"<th>{esc(r[0])}</th>"]
        for c in r[1:]:
            cls = ' class="noisy"' if c.endswith(NOISY_MARK) else (
                ' class="bad"' if c in ("failed", "skipped", "n/a") else "")
            tds.append(f"<td{cls}>{esc(c)}</td>")
        trs.append("<tr>" + "".join(tds) + "</tr>")
    note = f"<p class=\"note\">{esc(pv.note)}</p>" if pv.note else ""
    return (f"<h3>{esc(pv.title)}</h3>\n<div class=\"wide\"><table class=\"pivot\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table></div>{note}")


def rows_html(rows: list[dict]) -> str:
    """Every row; TFLOP/J and GB/J are work per joule (= per watt) from trusted windows only."""
    cols = ("family", "op", "dtype", "backend", "status", "case", "median ms", "TFLOP/s median",
            "GB/s median", "W", "TFLOP/J", "GB/J", "note")
    trs = []
    for r in rows:
        t = number(r.get("time_s"))
        fam = r.get("family")
        tj = per_watt(r, "tflops") if fam in ("gemm", "attention") else None
        gj = per_watt(r, "gbps") if fam == "memory" else None
        vals = (r.get("family"), r.get("op"), r.get("dtype"), r.get("backend"), r.get("status"),
                f"{r.get('label') or ''} {shape_text(r)}".strip(), _num(t * 1e3 if t else None),
                _num(r.get("tflops")), _num(r.get("gbps")), _watts(r), _num(tj, ".3g"), _num(gj, ".3g"),
                r.get("error") or ("noisy" if r.get("noisy") else ""))
        tds = [f"<td>{esc(v)}</td>" for v in vals]
        w = number(r.get("power_w"))
        if w is not None:  # "(696)" for an untrusted window still sorts by its number
            tds[9] = f"<td data-sort=\"{w:.6g}\">{esc(vals[9])}</td>"
        trs.append("<tr>" + "".join(tds) + "</tr>")
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    return (f"<div class=\"wide\"><table class=\"rows\"><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(trs)}</tbody></table></div>")


def render_html_body(meta: dict, rows: list[dict], projection: Mapping | None = None,
                     figures: Iterable[str] = (), intro: str = "") -> str:
    """The run's page body; `intro` (HTML, already escaped: publish's provenance) after the facts."""
    facts = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in system_facts(meta))
    facts += "".join(f"<li>{esc(x)}</li>" for x in summary_lines(projection))
    parts = [f"<h1>gwbench run {esc(meta.get('run_id'))}</h1><ul class=\"facts\">{facts}</ul>" + intro]
    figs = list(figures)
    if figs:
        parts.append("<h2>figures</h2>" + "".join(
            f"<img src=\"{esc(f)}\" alt=\"{esc(Path(f).stem)}\">" for f in figs))
    pv = pivots(meta, rows)
    if pv:
        parts.append(f"<p class=\"note\">{esc(LEGEND.replace('`', ''))}</p>")
    for fam, tables in pv.items():
        parts.append(f"<h2>{esc(fam)}</h2>" + "\n".join(pivot_html(p) for p in tables))
    parts.append("<h2>all rows</h2>" + rows_html(rows))
    return "\n".join(parts)


def render_html(meta: dict, rows: list[dict], projection: Mapping | None = None) -> str:
    return html_page(f"gwbench run {meta.get('run_id')}", render_html_body(meta, rows, projection))


def _csv_cell(v: Any) -> str:
    """One CSV cell: integers as integers, flags true/false, floats at full precision, and text
    that a spreadsheet would run as a formula (= + - @ first) quoted with a leading '."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "" if v != v else repr(v)
    return csv_cell(str(v))  # text a spreadsheet would run as a formula is quoted (present/escape.py)


def render_csv(meta: dict, rows: list[dict], projection: Mapping | None = None) -> str:
    """One line per row (CSV_FIELDS), then the case's parameters as p_<name> columns."""
    param_cols = sorted({k for r in rows for k in params(r)})
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow([*CSV_COLUMNS, *(f"p_{k}" for k in param_cols)])
    for r in rows:
        p = params(r)
        out.writerow([_csv_cell(cell(r)) for _, cell in CSV_FIELDS] + [_csv_cell(p.get(k)) for k in param_cols])
    return buf.getvalue()


def _cell_record(row_key: Any, col: Any, c: Cell) -> dict:
    return {"row": row_key, "column": col, "value": c.value, "share_of_peak": c.share,
            "per_w": c.per_w, "noisy": c.noisy, "status": c.status, "text": c.render()}


def render_json(meta: dict, rows: list[dict], projection: Mapping | None = None) -> str:
    """The run, its rows and its pivot tables; each table as text (headers, rows) and as records
    with numbers (`cells`), so `pandas.json_normalize(report["rows"])` and
    `pandas.DataFrame(table["cells"])` give typed tables."""
    tables = {fam: [{"title": p.title, "unit": p.unit, "headers": p.table()[0], "rows": p.table()[1],
                     "cells": [_cell_record(rk, ck, c) for (rk, ck), c in p.cells.items()]}
                    for p in pts] for fam, pts in pivots(meta, rows).items()}
    return json_text({"run": meta, "rows": rows, "pivots": tables}, indent=1, sort_keys=True)


def _nccl_tests(meta: dict, rows: list[dict], projection: Mapping | None = None) -> str:
    return format_nccl_tests(rows)  # collectives rows in nccl-tests' layout


# Format name -> renderer(meta, rows, projection). New formats add an entry here.
FORMATTERS: dict[str, Callable[..., str]] = {
    "md": render_md, "html": render_html, "csv": render_csv, "json": render_json,
    "nccl-tests": _nccl_tests,
}
FORMATS = tuple(FORMATTERS)


def render(meta: dict, rows: list[dict], fmt: str = "md", projection: Mapping | None = None) -> str:
    """The run in format `fmt`; `projection` is the run's projection (analysis/projection.py
    run_projection), shown in the Markdown and HTML headers."""
    fn = FORMATTERS.get(fmt)
    if fn is None:
        raise UsageError(f"unknown format {fmt!r}: choose {', '.join(FORMATS)}")
    return fn(meta, rows, projection)
