"""gwbench's collectives rows printed in nccl-tests' own column layout (`report --format nccl-tests`)."""

from __future__ import annotations

from collections.abc import Iterable

from harness.analysis.nccl_tests import DTYPE_NCCL



_COLS = ("{:>12} {:>12} {:>8} {:>6} {:>6}  {:>8} {:>7} {:>7} {:>6}  {:>8} {:>7} {:>7} {:>6}")


def _cells(r: dict | None) -> tuple[str, str, str, str]:
    if r is None:
        return ("-", "-", "-", "-")
    ex = r.get("extra") or {}
    if r.get("status") == "skipped" or (r.get("status") != "ok" and ex.get("algbw_gbps") is None):
        return ("-", "-", "-", "skip" if r.get("status") == "skipped" else "fail")
    t = ex.get("time_us")
    if t is None and r.get("time_s") is not None:
        t = r["time_s"] * 1e6
    wrong = ex.get("wrong")
    return (f"{t:.2f}" if t is not None else "-", f"{ex.get('algbw_gbps', 0):.2f}",
            f"{ex.get('busbw_gbps', 0):.2f}", "N/A" if wrong is None else str(wrong))


def format_nccl_tests(rows: Iterable[dict]) -> str:
    """Collective rows in nccl-tests' column layout: one table per (collective, dtype, ranks)."""
    tables: dict[tuple, dict[int, dict[str, dict]]] = {}
    for r in rows:
        if r.get("family") != "collectives":
            continue
        p = r.get("params") or {}
        key = (r["op"], r["dtype"], r.get("world_size"))
        cell = tables.setdefault(key, {}).setdefault(int(p.get("size_bytes", 0)), {})
        cell[p.get("placement", "out_of_place")] = r
    if not tables:
        return "# no collectives rows in this run\n"
    out = []
    for (op, dtype, n), sizes in tables.items():
        out += [f"# Collective: {op}  ranks: {n}  type: {DTYPE_NCCL.get(dtype, dtype)}", "#",
                "#" + " " * 61 + "out-of-place" + " " * 23 + "in-place",
                "#" + _COLS.format("size", "count", "type", "redop", "root", "time", "algbw",
                                   "busbw", "#wrong", "time", "algbw", "busbw", "#wrong")[1:],
                "#" + _COLS.format("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "",
                                   "(us)", "(GB/s)", "(GB/s)", "")[1:]]
        busbws = []
        for size in sorted(sizes):
            by = sizes[size]
            any_row = next(iter(by.values()))
            ex = any_row.get("extra") or {}
            oop, ip = _cells(by.get("out_of_place")), _cells(by.get("in_place"))
            out.append(_COLS.format(size, ex.get("count", "-"), DTYPE_NCCL.get(dtype, dtype),
                                    ex.get("redop") or "none", ex.get("root") if ex.get("root") is not None else -1,
                                    *oop, *ip))
            busbws += [(x.get("extra") or {}).get("busbw_gbps") for x in by.values()
                       if x.get("status") == "ok"]
        busbws = [b for b in busbws if b is not None]
        avg = sum(busbws) / len(busbws) if busbws else float("nan")
        out += [f"# Avg bus bandwidth    : {avg:.4g} ", "#", ""]
    return "\n".join(out)
