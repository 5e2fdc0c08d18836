"""Runs side by side: ratio per case, geometric mean per family, significance, marks.

Rows are aligned by `case_id` (harness/cases.py: the case identity). The ratio is B's rate over
A's (time_A / time_B on the median), so > 1 means B is faster. A case is called better or worse
only when the raw samples (`samples_s`) differ significantly (two-sided Mann–Whitney U,
normal approximation with tie correction; asv and pyperf likewise refuse a verdict without a
test) AND the ratio moves by more than `min_change`; otherwise it is "same". Marks follow asv's
compare: better / worse / same / newly failing / fixed / not comparable (skipped on either
side, both failed, a changed definition: FLOP or bytes per call differ) / only in A / only in B.

On different hardware the comparison also shows the measured ratio next to the datasheet
ratio (dense peak of the dtype, HBM bandwidth, NVLink bandwidth) and perf per watt, the latter
only from power windows of 1 s or more (core/row.per_watt). A run flagged `unstable` (its
reference kernel timed differently at its start and end, measure/stability.py) gets no verdict:
its cases are "not comparable", with the ratio shown and the reason in "judged by".
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError, clip
from harness.analysis.peaks import peak_for, spec_for
from harness.core.row import busbw_gbps, number, per_watt
from harness.core.runinfo import NOT_RECORDED, device, device_label

ALPHA = 0.01  # significance level of the U test
MIN_CHANGE = 0.05  # |ratio - 1| below this is "same" even when significant (asv's factor idea)
MIN_SAMPLES = 4  # fewer samples a side: fall back to non-overlapping [min, max] ranges
MARKS = ("better", "worse", "same", "newly failing", "fixed", "not comparable", "only in A", "only in B")
SYMBOL = {"better": "+", "worse": "-", "same": "=", "newly failing": "!", "fixed": "*",
          "not comparable": "x", "only in A": "<", "only in B": ">"}


# ------------------------------------------------------------------ statistics


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """(U of `a`, two-sided p) by the normal approximation with tie correction and continuity
    correction (Mann & Whitney 1947; tie term from Lehmann, Nonparametrics, 1975). Exact
    enough from about 4 samples a side, which the timing loop always exceeds."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("Mann-Whitney U needs samples on both sides")
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    ties = 0.0
    i = 0
    while i < len(pooled):  # average ranks over runs of equal values
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        t = j - i + 1
        ties += t ** 3 - t
        i = j + 1
    r1 = sum(r for r, (_, side) in zip(ranks, pooled) if side == 0)
    u1 = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    mu = n1 * n2 / 2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u1, 1.0
    z = (abs(u1 - mu) - 0.5) / math.sqrt(var)
    p = math.erfc(max(z, 0.0) / math.sqrt(2))  # two-sided: 2 * (1 - Phi(z))
    return u1, min(1.0, p)


# Below this a p-value is printed as a bound: the normal approximation's far tail is not
# accurate (exact U tables stop long before; an erfc that underflows printed "p=0"), and no
# verdict here turns on more than "far below ALPHA".
P_FLOOR = 1e-6


def p_text(p: float) -> str:
    """A p-value as a statistician writes it: "p = 0.0028", "p = 3.4e-5" (two significant
    figures), "p < 1e-6" below P_FLOOR (never "p=0")."""
    if math.isnan(p):
        return "p not computed"
    if p < P_FLOOR:
        return f"p < {P_FLOOR:.0e}".replace("e-0", "e-")
    text = f"{p:.2g}"
    mantissa, e, exponent = text.partition("e")
    return f"p = {mantissa}e{int(exponent)}" if e else f"p = {text}"


def _samples(row: Mapping) -> list[float]:
    s = row.get("samples_s")
    if not isinstance(s, list):
        return []
    return [float(x) for x in s if number(x) is not None and x > 0]


def significant(a: Sequence[float], b: Sequence[float]) -> tuple[bool | None, str]:
    """(differ?, how judged); None when there is nothing to judge from."""
    if not a or not b:
        return None, "no raw samples"
    if min(len(a), len(b)) >= MIN_SAMPLES:
        _, p = mann_whitney_u(a, b)
        return p < ALPHA, f"Mann-Whitney {p_text(p)}"
    apart = max(a) < min(b) or max(b) < min(a)
    return apart, "ranges " + ("apart" if apart else "overlap") + f" ({len(a)}/{len(b)} samples)"


def geomean(xs: Sequence[float]) -> float | None:
    xs = [x for x in xs if x and x > 0 and math.isfinite(x)]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ------------------------------------------------------------------ one case


@dataclass
class CaseResult:
    case_id: str
    family: str
    dtype: str
    mark: str
    ratio: float | None = None  # B rate / A rate (> 1: B faster)
    how: str = ""
    a_value: float | None = None
    b_value: float | None = None
    unit: str = ""
    per_w_ratio: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def _rate(row: Mapping) -> tuple[float | None, str]:
    """The row's headline figure: busbw, TFLOP/s, GB/s, else 1/time."""
    bus = busbw_gbps(row)
    if bus:
        return bus, "busbw GB/s"
    for key, unit in (("tflops", "TFLOP/s"), ("gbps", "GB/s")):
        v = number(row.get(key))
        if v:
            return v, unit
    t = number(row.get("time_s"))
    return (1 / t if t else None), "1/s"


def _definition(row: Mapping) -> tuple:
    return (row.get("flop"), row.get("bytes"))


def compare_case(a: Mapping | None, b: Mapping | None, unstable: str | None = None) -> CaseResult:
    r = a or b or {}
    res = CaseResult(str(r.get("case_id")), str(r.get("family")), str(r.get("dtype")), "same")
    if a is None:
        res.mark = "only in B"
        return res
    if b is None:
        res.mark = "only in A"
        return res
    sa, sb = a.get("status"), b.get("status")
    if sa == "ok" and sb == "failed":
        res.mark, res.how = "newly failing", str(b.get("error") or "")[:200]
        return res
    if sa == "failed" and sb == "ok":
        res.mark = "fixed"
    elif sa != "ok" or sb != "ok":
        res.mark, res.how = "not comparable", f"status {sa} → {sb}"
        return res
    if _definition(a) != _definition(b) and all(x is not None for x in _definition(a) + _definition(b)):
        res.mark, res.how = "not comparable", "case definition changed (FLOP or bytes per call differ)"
        return res
    (va, unit), (vb, _) = _rate(a), _rate(b)
    res.unit = unit
    if res.mark == "fixed":
        res.b_value = vb
        return res
    res.a_value, res.b_value = va, vb
    ta, tb = number(a.get("time_s")), number(b.get("time_s"))
    if ta and tb:
        res.ratio = ta / tb  # rates are per-call work / median time: same definition, so time ratio
    elif va and vb:
        res.ratio = vb / va
    pa, pb = per_watt(a), per_watt(b)
    if pa and pb:
        res.per_w_ratio = pb / pa
    if res.ratio is None:
        res.mark, res.how = "not comparable", "no figure on one side"
        return res
    if unstable:
        res.mark, res.how = "not comparable", unstable
        return res
    differ, res.how = significant(_samples(a), _samples(b))
    if differ is None:  # no raw samples: the ratio alone, with the noise threshold
        differ, res.how = abs(res.ratio - 1) > 2 * MIN_CHANGE, "no raw samples: ratio only"
    if differ and abs(res.ratio - 1) > MIN_CHANGE:
        res.mark = "better" if res.ratio > 1 else "worse"
    else:
        res.mark = "same"
    return res


# ------------------------------------------------------------------ two runs


def _device_name(meta: Mapping) -> str:
    return f"{device_label(meta)} ({device(meta).get('backend') or NOT_RECORDED})"


def _spec_ratio(acc_a, acc_b, family: str, dtype: str) -> float | None:
    pa = peak_for(acc_a, family, dtype)[0]
    pb = peak_for(acc_b, family, dtype)[0]
    return pb / pa if pa and pb else None


def compare_runs(a: tuple[dict, list[dict]], b: tuple[dict, list[dict]]) -> dict[str, Any]:
    """The comparison of run B against baseline A; UsageError when they share no case or differ
    in schema version."""
    (meta_a, rows_a), (meta_b, rows_b) = a, b
    va, vb = meta_a.get("schema_version"), meta_b.get("schema_version")
    if va != vb:
        raise UsageError(f"runs {meta_a.get('run_id')} and {meta_b.get('run_id')} have different schema "
                         f"versions ({va!r} vs {vb!r}): not comparable")
    by_a = {r["case_id"]: r for r in rows_a}
    by_b = {r["case_id"]: r for r in rows_b}
    common = [c for c in by_a if c in by_b]
    if not common:
        raise UsageError(f"runs {meta_a.get('run_id')} and {meta_b.get('run_id')} have no case in common")
    ids = list(by_a) + [c for c in by_b if c not in by_a]
    unstable = _unstable(meta_a, "A") or _unstable(meta_b, "B")
    cases = [compare_case(by_a.get(c), by_b.get(c), unstable) for c in ids]
    same_hw = _device_name(meta_a) == _device_name(meta_b)
    acc_a, acc_b = spec_for(meta_a), spec_for(meta_b)  # once: the table lookup is not free
    families: dict[str, dict[str, Any]] = {}
    for c in cases:
        f = families.setdefault(c.family, {"ratios": [], "per_w": [], "marks": dict.fromkeys(MARKS, 0),
                                           "spec": {}})
        f["marks"][c.mark] += 1
        if c.ratio and c.mark in ("better", "worse", "same"):
            f["ratios"].append(c.ratio)
            if c.per_w_ratio:
                f["per_w"].append(c.per_w_ratio)
            if not same_hw:
                s = _spec_ratio(acc_a, acc_b, c.family, c.dtype)
                if s:
                    f["spec"].setdefault(c.dtype if c.family in ("gemm", "attention") else "", []).append(
                        (c.ratio, s))
    summary = {}
    for fam, f in families.items():
        spec = {dt: {"measured": geomean([m for m, _ in pairs]), "spec": pairs[0][1], "n": len(pairs)}
                for dt, pairs in f["spec"].items()}
        summary[fam] = {"geomean_ratio": geomean(f["ratios"]), "n": len(f["ratios"]),
                        "perf_per_w_ratio": geomean(f["per_w"]), "marks": f["marks"], "vs_spec": spec}
    return {"kind": "gwbench.compare", "a": {"run_id": meta_a.get("run_id"), "device": _device_name(meta_a)},
            "b": {"run_id": meta_b.get("run_id"), "device": _device_name(meta_b)},
            "unstable": unstable,
            "same_hardware": same_hw, "families": summary, "cases": [c.to_dict() for c in cases],
            "software": _software_diff(meta_a, meta_b)}


def _unstable(meta: Mapping, side: str) -> str | None:
    """Why run `side` gets no verdict (its run.json says `unstable`), else None."""
    if not meta.get("unstable"):
        return None
    st = meta.get("stability") if isinstance(meta.get("stability"), Mapping) else {}
    ratio = number(st.get("ratio"))
    return (f"run {side} unstable (reference kernel {ratio:.3g}x apart at its start and end): no verdict"
            if ratio else f"run {side} unstable: no verdict")


def _software_diff(meta_a: Mapping, meta_b: Mapping) -> list[str]:
    def sw(m):
        d = m.get("device") if isinstance(m.get("device"), Mapping) else {}
        s = d.get("software") if isinstance(d.get("software"), Mapping) else {}
        return {**{k: v for k, v in s.items() if isinstance(v, (str, int, float)) or v is None},
                "driver": d.get("driver_version")}
    x, y = sw(meta_a), sw(meta_b)
    return [f"{k}: {x.get(k)} → {y.get(k)}" for k in sorted(set(x) | set(y)) if x.get(k) != y.get(k)]


def compare(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """Baseline = the first run; one comparison per other run."""
    from harness.core.store import load_run

    if len(runs) < 2:
        raise UsageError("compare needs two or more run folders (the first is the baseline)")
    loaded = [load_run(Path(runs[0]))]  # without a readable baseline there is nothing to compare
    for r in runs[1:]:
        try:
            loaded.append(load_run(Path(r)))
        except (UsageError, OSError) as exc:
            if len(runs) == 2:  # the one comparison asked for: its error, not a warning
                raise
            print(f"gwbench: warning: skipped {r}: {clip(str(exc))}", file=sys.stderr)  # one of many
    if len(loaded) < 2:
        raise UsageError("compare: no readable run folder besides the baseline")
    return [compare_runs(loaded[0], other) for other in loaded[1:]]


# ------------------------------------------------------------------ which runs to put side by side

MIN_SHARED_CASES = 5  # fewer cases in common say nothing worth a table
MIN_SHARED_FRACTION = 0.5  # of the smaller run's cases


def shared_cases(rows_a: Sequence[Mapping], rows_b: Sequence[Mapping]) -> tuple[int, int, int]:
    """(cases in both, only in A, only in B), by case identity."""
    a = {r.get("case_id") for r in rows_a}
    b = {r.get("case_id") for r in rows_b}
    return len(a & b), len(a - b), len(b - a)


def worth_comparing(rows_a: Sequence[Mapping], rows_b: Sequence[Mapping]) -> bool:
    """Two runs are put side by side when they share at least MIN_SHARED_CASES cases and at
    least MIN_SHARED_FRACTION of the smaller run's: a GEMM-only run beside a standard suite is
    compared on its GEMM cases; an H200 memory run beside a CPU memory run shares none."""
    both, only_a, only_b = shared_cases(rows_a, rows_b)
    smaller = min(both + only_a, both + only_b)
    return both >= MIN_SHARED_CASES and smaller > 0 and both / smaller >= MIN_SHARED_FRACTION


def pairings(runs: Sequence[tuple[str, str, Sequence[Mapping]]]) -> dict[str, Any]:
    """Which runs a results site compares, from (run_id, device, rows) oldest first:
    `same`: each run against the latest earlier run on the same device it shares enough with;
    `across`: each device's latest run against the first device's latest, where they share
    enough; `left_out`: one line per run that found no partner, and why."""
    same, across, left_out = [], [], []
    by_dev: dict[str, list[int]] = {}
    for i, (_, dev, _) in enumerate(runs):
        by_dev.setdefault(dev, []).append(i)
    for dev, idx in by_dev.items():
        for k, i in enumerate(idx):
            partner = next((j for j in reversed(idx[:k]) if worth_comparing(runs[j][2], runs[i][2])), None)
            if partner is not None:
                same.append((partner, i))
            elif k:
                left_out.append(f"{runs[i][0]}: no earlier {dev} run shares {MIN_SHARED_CASES}+ cases "
                                f"and half of its cases")
    latest = [idx[-1] for idx in by_dev.values()]
    for i in latest[1:]:
        if worth_comparing(runs[latest[0]][2], runs[i][2]):
            across.append((latest[0], i))
        else:
            left_out.append(f"{runs[i][0]} ({runs[i][1]}) vs {runs[latest[0]][0]} ({runs[latest[0]][1]}): "
                            "too few cases in common to compare across hardware")
    return {"same": same, "across": across, "left_out": left_out}
