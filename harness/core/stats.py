"""Statistics over raw timing samples.

One list of statistic names (`STAT_FIELDS`) is used by rows, reports and compare, as
pytest-benchmark does. The noise flag follows torch.utils.benchmark: a measurement whose
IQR exceeds 10% of its median is flagged, never hidden.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

NOISE_IQR_OVER_MEDIAN = 0.10

# The statistics a headline figure can be taken at, and the time field each divides the work by.
# gwbench's tables use the median (robust to a preempted sample); mamf-finder's published table
# and triton's do_bench report the mean; "min" is the fastest sample (mamf-finder's "max"
# TFLOPS, BabelStream's bandwidth). A figure always says which one it is.
STATISTICS = {"median": "time_s", "mean": "time_mean_s", "min": "time_min_s"}

# A run is `unstable` when the reference kernel timed at its start and at its end
# (measure/stability.py) differ by more than this factor (slower / faster). On a shared
# 2-core VM the same case varied ~170x between runs with samples stuck at 8/16 ms, which the
# per-row IQR test cannot see. The bf16 8192³ GEMM of the three H200 runs in results/ spans
# 663-685 TFLOP/s (sustained at the power cap and burst): 1.5x sits far above that spread and far
# below the VM's.
UNSTABLE_RATIO = 1.5

# Row keys produced by `summarize`, in report order. Times are seconds.
STAT_FIELDS = (
    "time_s",  # median
    "time_mean_s",
    "time_min_s",
    "time_max_s",
    "time_p10_s",
    "time_p90_s",
    "time_iqr_s",
    "time_cv",
    "n_samples",
    "noisy",
)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside [0, 100]")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def summarize(samples: Sequence[float]) -> dict:
    """Median, mean, min, max, p10/p90, IQR, coefficient of variation and the noise flag."""
    if not samples:
        raise ValueError("no samples to summarize")
    xs = sorted(float(x) for x in samples)
    n = len(xs)
    mean = math.fsum(xs) / n
    median = percentile(xs, 50)
    iqr = percentile(xs, 75) - percentile(xs, 25)
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return {
        "time_s": median,
        "time_mean_s": mean,
        "time_min_s": xs[0],
        "time_max_s": xs[-1],
        "time_p10_s": percentile(xs, 10),
        "time_p90_s": percentile(xs, 90),
        "time_iqr_s": iqr,
        "time_cv": math.sqrt(var) / mean if mean > 0 else None,
        "n_samples": n,
        "noisy": bool(median > 0 and iqr / median > NOISE_IQR_OVER_MEDIAN),
    }


def median_ci(samples: Sequence[float], confidence: float = 0.99) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    Uses the normal approximation to the binomial (as asv does): ranks
    n/2 ± z·sqrt(n)/2. With few samples the interval widens to the extremes.
    """
    xs = sorted(samples)
    n = len(xs)
    if n == 0:
        raise ValueError("no samples")
    z = {0.90: 1.6449, 0.95: 1.9600, 0.99: 2.5758}.get(confidence)
    if z is None:
        raise ValueError(f"confidence {confidence} not one of 0.90, 0.95, 0.99")
    half = z * math.sqrt(n) / 2
    lo = max(0, math.floor(n / 2 - half))
    hi = min(n - 1, math.ceil(n / 2 + half) - 1)
    return xs[lo], xs[max(lo, hi)]


# ------------------------------------------------------------------ measurement windows


def short_window(window_s: float | None, iterations: int | None) -> bool:
    """True when a window is too short to trust its power figure.

    Shorter than 1 s or fewer than 32 iterations: SC'24 (arXiv 2312.02741) finds the A100/H100
    sensor sees 25 ms of every 100 ms and recommends >= 32 iterations or >= 5 s with phase shifts;
    the NVML energy counter itself updates only about every 100 ms (docs/sources.md, "Power").
    """
    return window_s is None or iterations is None or window_s < 1.0 or iterations < 32


def slowdown(samples_s: Sequence[float]) -> float:
    """Relative slowdown across a sustained window: median(last tenth) / median(first tenth) - 1.

    Positive means the case got slower as it ran, the signature of thermal or power throttling
    (the sustained mode of measure/timing.py). Medians, not means, so one preempted iteration does not count.
    """
    n = len(samples_s)
    if n < 2:
        raise ValueError(f"need two or more samples to compare first and last tenth, got {n}")
    k = max(1, n // 10)
    first, last = statistics.median(samples_s[:k]), statistics.median(samples_s[-k:])
    return last / first - 1.0


def unstable(start_s: float | None, end_s: float | None, bound: float = UNSTABLE_RATIO) -> bool | None:
    """True when two timings of the same reference kernel differ by more than `bound` (their
    ratio, slower over faster); None when either is missing (the check could not run)."""
    if not start_s or not end_s or start_s <= 0 or end_s <= 0:
        return None
    return max(start_s, end_s) / min(start_s, end_s) > bound
