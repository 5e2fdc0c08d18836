"""gwbench's collectives rows printed in nccl-tests' own layout (`report --format nccl-tests`).

The layout is nccl-tests' current one (src/util.cu, HEAD 2.19.6): the same header rows, the
per-size line `"%12li  %12li  %8s  %6s  %6s"` then `"  %7s  %6s  %6s  %6g"` per placement,
numbers through its getFloatStr (2 decimals, then 1, then 0, then an exponent, to fit the
width), `#wrong` as `%6g` or N/A, and its footer. The `size` column is the size actually
moved, `count` nccl-tests' count (per rank for all_gather / reduce_scatter, per peer for
alltoall). Each table opens with `# Collective test starting: <name>_perf` and a
`# gwbench: ranks N ...` line, and a placement gwbench does not measure prints `-` in its
cells, so `gwbench import nccl-tests` reads the output back (analysis/nccl_tests.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from harness.analysis.nccl_tests import DTYPE_NCCL
from harness.core.flops import DTYPE_BYTES, nccl_counts
from harness.core.row import extra, message_bytes, number, params

_TOP = "#" + " " * 62 + "out-of-place" + " " * 23 + "in-place          "
_HEAD = "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s "
_LINE = "%12d  %12s  %8s  %6s  %6s"


def float_str(value: float, width: int) -> str:
    """nccl-tests' getFloatStr: the most decimals (2, 1, 0) that fit `width`, else an exponent."""
    for fmt in (".2f", ".1f", ".0f"):
        text = format(value, fmt)
        if len(text) <= width:
            return text.rjust(width)
    return format(value, ".1e" if width >= 7 else ".0e").rjust(width)


def _body(r: dict | None) -> str:
    """One placement's `time algbw busbw #wrong` cells; `-` where gwbench has no figure."""
    if r is None:
        return "  %7s  %6s  %6s  %6s" % ("-", "-", "-", "-")
    ex = extra(r)
    alg, bus = number(ex.get("algbw_gbps")), number(ex.get("busbw_gbps"))
    if r.get("status") == "skipped" or alg is None or bus is None:
        return "  %7s  %6s  %6s  %6s" % ("-", "-", "-", "skip" if r.get("status") == "skipped" else "fail")
    t = number(ex.get("time_us"))
    if t is None and number(r.get("time_s")) is not None:
        t = r["time_s"] * 1e6
    wrong = ex.get("wrong")
    tail = "    N/A" if wrong is None else "  %6g" % wrong
    return "  %7s  %6s  %6s" % (float_str(t, 7) if t is not None else "-", float_str(alg, 6),
                                float_str(bus, 6)) + tail


def _count(r: dict, dtype: str) -> str:
    c = extra(r).get("count")
    if isinstance(c, int) and not isinstance(c, bool):
        return str(c)
    size, esize, n = params(r).get("size_bytes"), DTYPE_BYTES.get(dtype), r.get("world_size")
    if isinstance(size, int) and isinstance(n, int) and n >= 1 and esize and esize >= 1:
        return str(nccl_counts(r["op"], size, int(esize), n)[0])
    return "-"


def format_nccl_tests(rows: Iterable[dict]) -> str:
    """Collective rows in nccl-tests' layout: one table per (collective, dtype, ranks, backend)."""
    tables: dict[tuple, dict[tuple, dict[str, dict]]] = {}
    for r in rows:
        if r.get("family") != "collectives":
            continue
        p = params(r)
        key = (r["op"], r["dtype"], r.get("world_size"), r.get("backend"))
        size = int(message_bytes(r) or 0)
        line_key = (size, p.get("redop"), p.get("root"))
        cell = tables.setdefault(key, {}).setdefault(line_key, {})
        cell[p.get("placement", "out_of_place")] = r
    if not tables:
        return "# no collectives rows in this run\n"
    out = []
    for (op, dtype, n, backend), lines in tables.items():
        out += [f"# Collective test starting: {op}_perf",
                f"# gwbench: ranks {n}, type {DTYPE_NCCL.get(dtype, dtype)}, backend {backend}",
                "#", _TOP,
                _HEAD % ("size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong",
                         "time", "algbw", "busbw", "#wrong"),
                _HEAD % ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)",
                         "(GB/s)", "(GB/s)", "")]
        busbws, bad = [], 0
        for size, redop, root in sorted(lines, key=lambda k: (k[0], str(k[1]), str(k[2]))):
            by = lines[(size, redop, root)]
            first = next(iter(by.values()))
            ex = extra(first)
            redop_text = redop or ex.get("redop") or "none"
            root_v = root if root is not None else ex.get("root")
            out.append(_LINE % (size, _count(first, dtype), DTYPE_NCCL.get(dtype, dtype), redop_text,
                                "%6i" % (root_v if isinstance(root_v, int) else -1))
                       + _body(by.get("out_of_place")) + _body(by.get("in_place")))
            for r in by.values():
                b = number(extra(r).get("busbw_gbps"))
                if r.get("status") != "skipped" and b is not None:
                    busbws.append(b)
                bad += bool(extra(r).get("wrong"))
        avg = sum(busbws) / len(busbws) if busbws else float("nan")
        out += [f"# {'Out of bounds values':<20} : {bad} {'FAILED' if bad else 'OK'}",
                f"# {'Avg bus bandwidth':<20} : {avg:g} ", "#",
                f"# Collective test concluded: {op}_perf", "#", ""]
    return "\n".join(out)
