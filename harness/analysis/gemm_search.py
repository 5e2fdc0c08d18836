"""The answer of a maximum-achievable GEMM search (mamf-finder's question): the best shape.

Shapes are ranked by one stated statistic of their timed samples (core/stats.STATISTICS):
the mean by default, as mamf-finder's published table ("a mean of 100 iterations after 50
warmup iterations", stas00/ml-engineering compute/accelerator/README.md) and triton's
do_bench; median and min (mamf-finder's "max" TFLOPS) on request. The best row's figures at
the other statistics and its noise flag go with it, so a best shape picked from a noisy row
says so. One answer per dtype and method (B layout, output rewrite, fp8 output): runs that
cross those options rank each combination apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.core.row import gemm_shape, params, rate
from harness.core.stats import STATISTICS

DEFAULT_STATISTIC = "mean"
# How each statistic reads next to a TFLOP/s figure ("min" time is the fastest sample).
STAT_NAMES = {"median": "median", "mean": "mean", "min": "fastest sample"}
METHOD_KEYS = ("b_layout", "out_rewrite", "out")


def method_text(p: Mapping) -> str:
    """`b_layout=nk out_rewrite=True`-style text of a row's method params ('' if none)."""
    return " ".join(f"{k}={p[k]}" for k in METHOD_KEYS if k in p)


def best_shapes(rows: Sequence[Mapping], statistic: str = DEFAULT_STATISTIC) -> list[dict]:
    """One entry per (dtype, method) of the GEMM rows: the best ok shape at `statistic`, with
    its TFLOP/s at every statistic, its IQR share and noise flag, and how many shapes ran."""
    if statistic not in STATISTICS:
        raise ValueError(f"statistic {statistic!r}: one of {', '.join(STATISTICS)}")
    groups: dict[tuple, list[Mapping]] = {}
    for r in rows:
        if r.get("family") != "gemm" or gemm_shape(r) is None:
            continue
        key = (str(r.get("dtype")), method_text(params(r)))
        groups.setdefault(key, []).append(r)
    out = []
    for (dtype, method), group in sorted(groups.items()):
        ok = [(rate(r, statistic)[0], r) for r in group if r.get("status") == "ok"]
        ok = [(v, r) for v, r in ok if v]
        entry: dict = {"dtype": dtype, "method": method, "statistic": statistic,
                       "shapes": len(group), "ok": len(ok)}
        if ok:
            value, best = max(ok, key=lambda x: x[0])
            t, iqr = best.get("time_s"), best.get("time_iqr_s")
            entry.update({"shape": gemm_shape(best), "tflops": value,
                          "at": {s: rate(best, s)[0] for s in STATISTICS},
                          "iqr_share": iqr / t if t and iqr is not None else None,
                          "noisy": bool(best.get("noisy")), "case_id": best.get("case_id")})
        out.append(entry)
    return out


def best_text(entry: Mapping) -> str:
    """One line: `search bf16 (b_layout=nk ...): best MxNxK = X TFLOP/s mean (ranked by mean;
    median Y, fastest sample Z; IQR ...) over N of N shapes`."""
    method = f" ({entry['method']})" if entry.get("method") else ""
    if "shape" not in entry:
        return f"search {entry['dtype']}{method}: no successful shape of {entry['shapes']}"
    m, n, k = entry["shape"]
    stat = entry["statistic"]
    others = ", ".join(f"{STAT_NAMES[s]} {v:.4g}" for s, v in entry["at"].items() if s != stat and v)
    noise = ""
    if entry.get("iqr_share") is not None:
        noise = f"; IQR {100 * entry['iqr_share']:.1f}% of the median" + (", NOISY" if entry["noisy"] else "")
    return (f"search {entry['dtype']}{method}: best {m}x{n}x{k} = {entry['tflops']:.4g} TFLOP/s "
            f"{STAT_NAMES[stat]} (ranked by {STAT_NAMES[stat]}; {others}{noise}) over {entry['ok']} "
            f"of {entry['shapes']} shapes")
