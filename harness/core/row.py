"""The row: one tidy record per (case, run), the thing gwbench delivers. Built here and only here.

`FIELDS` declares every top-level key a row can hold, with its type and meaning; `build_row`
makes a measured row from a case and its Outcome, `build_imported_row` one from another tool's
output (nccl-tests), and `validate` checks a row read back from disk. Readers use the typed
accessors at the bottom instead of guessing where a family keeps a figure.

Schema v1 (core/store.py has the format history). A row holds, in this order of concern:
  identity   case_id, family, op, dtype, backend, world_size, params, label (core/cases.py)
  run        schema_version, run_id, started_at, wall_s; host, rank, local_rank under a launch
  outcome    status ok|failed|skipped, error
  samples    samples_s (every timed sample), n_warmup, estimate_s, window_s, sustained, and
             the statistics of core/stats.py (time_s is the median)
  work       flop, bytes, and the rate at each statistic of core/stats.STATISTICS: tflops and
             gbps (median), tflops_mean and gbps_mean (mean), tflops_best and gbps_best (fastest
             sample); check, extra
  power      the telemetry window's summary (measure/telemetry), telemetry_short_window,
             sustain_slowdown, and per-watt figures only where power was read over a window
             long enough to trust (>= 1 s and 32 iterations; trusted_power below)
  source     imported rows only: the tool, its version, the file's sha256 and the line
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from harness.core.cases import Case
from harness.core.errors import UsageError, clip, printable
from harness.core.flops import gbps, tflops
from harness.core.result import Check, Outcome
from harness.core.stats import STAT_FIELDS, STATISTICS, short_window, slowdown, summarize

SCHEMA_VERSION = 1
ROW_STATUSES = ("ok", "failed", "skipped")

# name -> (JSON type(s), meaning). Optional fields are absent or null when not measured.
_NUM = (int, float)
FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "schema_version": ((int,), "row format version (core/store.py history)"),
    "run_id": ((str,), "the run folder's id"),
    "case_id": ((str,), "stable text identity of the case (Case.id)"),
    "family": ((str,), "gemm | attention | memory | collectives"),
    "op": ((str,), "the operation within the family"),
    "dtype": ((str,), "data type name (core/cases.py DTYPES, or the tool's for imports)"),
    "backend": ((str,), "implementation measured (torch, sdpa-flash, cupy-kernel, nccl-tests ...)"),
    "world_size": ((int,), "ranks taking part in the case (1 for per-device families)"),
    "params": ((dict,), "the case's shape and options"),
    "label": ((str,), "a table label, not part of the identity"),
    "status": ((str,), "ok | failed | skipped"),
    "error": ((str, type(None)), "why the case failed or was skipped"),
    "started_at": ((str, type(None)), "UTC ISO time the case started"),
    "wall_s": (_NUM + (type(None),), "wall time of the whole case, set-up and checks included"),
    "samples_s": ((list, type(None)), "every timed sample, seconds"),
    "n_warmup": ((int, type(None)), "untimed warm-up iterations"),
    "estimate_s": (_NUM + (type(None),), "one iteration's estimated cost, seconds"),
    "window_s": (_NUM + (type(None),), "wall time of the timed region, seconds"),
    "sustained": ((bool,), "the case ran a sustained power window"),
    **{k: (_NUM + (type(None),), "statistic of samples_s, seconds (core/stats.py)") for k in STAT_FIELDS},
    "n_samples": ((int, type(None)), "number of timed samples"),
    "noisy": ((bool, type(None)), "IQR above 10% of the median (core/stats.py)"),
    "flop": (_NUM + (type(None),), "floating-point operations per call"),
    "bytes": (_NUM + (type(None),), "bytes moved per call, by the family's stated convention"),
    "tflops": (_NUM + (type(None),), "flop / median time / 1e12"),
    "tflops_mean": (_NUM + (type(None),), "flop / mean time / 1e12 (mamf-finder's statistic)"),
    "tflops_best": (_NUM + (type(None),), "flop / fastest sample / 1e12"),
    "gbps": (_NUM + (type(None),), "bytes / median time / 1e9"),
    "gbps_mean": (_NUM + (type(None),), "bytes / mean time / 1e9"),
    "gbps_best": (_NUM + (type(None),), "bytes / fastest sample / 1e9 (BabelStream's statistic)"),
    "check": ((dict, type(None)), "the result check (core/result.py Check)"),
    "extra": ((dict,), "family-specific facts (backend chosen, algbw/busbw, launch geometry ...)"),
    "power_w": (_NUM + (type(None),), "mean power over the window, W"),
    "energy_j": (_NUM + (type(None),), "energy over the window, J"),
    "power_source": ((str, type(None)), "where power came from, or why it is null"),
    "telemetry_window_s": (_NUM + (type(None),), "the telemetry clock's view of the window"),
    "telemetry_short_window": ((bool,), "window under 1 s or 32 iterations: power not trusted"),
    "sustain_slowdown": (_NUM + (type(None),), "median of the last tenth / first tenth - 1"),
    "tflops_per_w": (_NUM + (type(None),), "tflops / power_w; null unless the window is >= 1 s"),
    "gbps_per_w": (_NUM + (type(None),), "gbps / power_w; null unless the window is >= 1 s"),
    "source": ((dict,), "imported rows: {tool, version, sha256, file, line} of the tool's output"),
    "host": ((str,), "host name, under a multi-rank launch"),
    "rank": ((int,), "global rank, under a multi-rank launch"),
    "local_rank": ((int,), "rank on its node (its GPU on a CUDA run)"),
}
# The rest of a telemetry window's summary (measure/telemetry SUMMARY_KEYS) is stored as read:
# power_max_w, energy_trace_j, energy_disagreement, clock_*_mhz, temp_c, power_limit_w,
# throttle, throttle_time_s, n_power_samples, per_gpu, telemetry_errors.


def build_row(case: Case, run_id: str, status: str, outcome: Outcome | None, *,
              error: str | None, started_at: str | None, wall_s: float | None) -> dict:
    """The row of one measured case: identity, status, every sample and what derives from it."""
    if status not in ROW_STATUSES:
        raise ValueError(f"row status {status!r}: one of {', '.join(ROW_STATUSES)}")
    row: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "run_id": run_id, **case.identity(),
                           "status": status, "error": error, "started_at": started_at, "wall_s": wall_s,
                           "samples_s": None, "flop": None, "bytes": None, "tflops": None,
                           "tflops_mean": None, "tflops_best": None, "gbps": None,
                           "gbps_mean": None, "gbps_best": None, "check": None, "extra": {},
                           "power_w": None, "energy_j": None,
                           "power_source": "not measured: case did not run"}
    if outcome is None:
        return row
    m = outcome.measurement
    stats = m.stats()
    row.update(stats)
    row.update({"samples_s": m.samples_s, "n_warmup": m.n_warmup, "estimate_s": m.estimate_s,
                "window_s": m.window_s, "sustained": m.sustained, "flop": outcome.flop,
                "bytes": outcome.nbytes,
                "check": outcome.check.as_dict() if outcome.check is not None else None,
                "extra": outcome.extra})
    _add_rates(row, outcome.flop, outcome.nbytes)
    tel = dict(m.telemetry or {})
    if "window_s" in tel:  # the telemetry clock's view of the window; ours stays window_s
        tel["telemetry_window_s"] = tel.pop("window_s")
    row.update(tel)
    if not m.telemetry:
        row["power_source"] = "unavailable: no telemetry window"
    row["telemetry_short_window"] = short_window(m.window_s, len(m.samples_s))
    # Per-watt figures only from a window long enough to trust: an H200's 0.1 s windows read
    # 250-1370 W against its 700 W cap (README), so a short window's ratio means nothing.
    if row.get("power_w"):
        power = trusted_power(row)
        row["tflops_per_w"] = row["tflops"] / power if power and row["tflops"] else None
        row["gbps_per_w"] = row["gbps"] / power if power and row["gbps"] else None
    if m.sustained:
        row["sustain_slowdown"] = slowdown(m.samples_s)
    return row


# The rate fields at each statistic (core/stats.STATISTICS): (TFLOP/s field, GB/s field).
RATE_FIELDS = {"median": ("tflops", "gbps"), "mean": ("tflops_mean", "gbps_mean"),
               "min": ("tflops_best", "gbps_best")}


def _add_rates(row: dict, flop: float | None, nbytes: float | None) -> None:
    """Every rate field whose time statistic the row holds (core/stats.STATISTICS)."""
    for stat, (tf_key, gb_key) in RATE_FIELDS.items():
        t = number(row.get(STATISTICS[stat]))
        if not t or t <= 0:
            continue
        if flop:
            row[tf_key] = tflops(flop, t)
        if nbytes:
            row[gb_key] = gbps(nbytes, t)


def build_imported_row(case: Case, run_id: str, *, check: Check, extra: dict[str, Any],
                       source: dict[str, Any], samples_s: list[float] | None = None,
                       times_s: dict[str, float | None] | None = None, flop: float | None = None,
                       nbytes: float | None = None, rates: dict[str, float | None] | None = None,
                       error: str | None = None) -> dict:
    """A row from another tool's output, shaped like a measured one.

    Times are every sample the tool printed (`samples_s`: nccl-tests prints one mean per size)
    or, where it prints statistics only, `times_s` keyed by STAT_FIELDS names (BabelStream's
    min/max/average runtimes; mamf-finder's mean/median/max TFLOPS turned back into times);
    a statistic the tool does not give stays null, never guessed. Rates are derived from the
    work and the times, then `rates` (field -> value) puts back the tool's own printed figures
    where its time column is rounded (nccl-tests' algbw, to 2 decimals of a µs) or absent
    (nvbandwidth prints bandwidths only). `source` = {tool, version, sha256, file, line}.
    Power is not in such output and stays null.
    """
    tool = str(source.get("tool"))
    status = "ok" if check.ok else "failed"
    row = build_row(case, run_id, status, None, error=None if check.ok else (error or check.failure),
                    started_at=None, wall_s=None)
    if samples_s:
        row.update(summarize(samples_s))
    else:
        row.update(dict.fromkeys(STAT_FIELDS))
        row.update({k: v for k, v in (times_s or {}).items() if k in STAT_FIELDS})
        row["noisy"] = None  # no samples: noise cannot be judged
    row.update({"samples_s": list(samples_s) if samples_s else None, "n_warmup": None,
                "estimate_s": row.get("time_s"), "window_s": None, "sustained": False,
                "flop": flop, "bytes": nbytes, "check": check.as_dict(), "extra": extra,
                "source": dict(source), "power_source": f"not measured: imported from {tool} output",
                # No power window at all: short by short_window's own rule (window_s None).
                "telemetry_short_window": short_window(None, len(samples_s or ()))})
    _add_rates(row, flop, nbytes)
    row.update(rates or {})
    return row


def tag_rank(row: dict, host: str, rank: int, local_rank: int) -> dict:
    """The row as one rank of a multi-rank launch wrote it."""
    return row | {"host": host, "rank": rank, "local_rank": local_rank}


# ------------------------------------------------------------------ reading rows back


REQUIRED = ("case_id", "family", "op", "dtype", "status")  # identity and outcome: every row has them
MAX_DEPTH = 32  # nesting of objects and arrays in a row or run.json (gwbench writes at most 4)
MAX_INT = 2**63  # integers beyond are no count gwbench writes (and overflow float())


def validate(row: Any, where: str) -> dict:
    """`row` if its declared fields have their declared types, else UsageError naming `where`
    and the field. The one check every reader goes through (core/store.py): after it, readers
    may index the required fields, trust each declared field's type, and find no nesting
    deeper than MAX_DEPTH, no integer beyond MAX_INT, and no NaN or infinity (read as null,
    as gwbench stores them)."""
    if not isinstance(row, dict):
        raise UsageError(f"{where}: not a gwbench row (a JSON object is expected)")
    for key in REQUIRED:
        if key not in row:
            raise UsageError(f"{where}: not a gwbench row (no {key})")
    if row.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{where}: schema version {_short(row.get('schema_version'))} is not supported "
                         f"by this gwbench (reads version {SCHEMA_VERSION}); use the gwbench that wrote it")
    for key, (types, _) in FIELDS.items():
        if key in row and not _is(row[key], types):
            raise UsageError(f"{where}: field {key!r} holds {type(row[key]).__name__}, "
                             f"expected {' or '.join(_type_name(t) for t in types)}")
    if row["status"] not in ROW_STATUSES:
        raise UsageError(f"{where}: status {_short(row['status'])} is not one of {', '.join(ROW_STATUSES)}")
    samples = row.get("samples_s")
    if samples is not None and not all(type(x) in _SAMPLE_TYPES for x in samples):
        raise UsageError(f"{where}: samples_s holds a value that is not a number")
    check_values(row, where)
    return row


_SAMPLE_TYPES = frozenset({int, float, type(None)})


def check_values(value: Any, where: str) -> None:
    """Walk a row or run.json read from disk, once: nesting within MAX_DEPTH, integers within
    MAX_INT (UsageError otherwise); a NaN or infinity (`1e999`) becomes null in place."""
    stack = [(value, 0)]
    while stack:
        obj, depth = stack.pop()
        if depth >= MAX_DEPTH:
            raise UsageError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        for k, v in (obj.items() if type(obj) is dict else enumerate(obj)):
            t = type(v)
            if t is float:
                if v - v != 0:  # inf - inf and nan - nan are nan
                    obj[k] = None
            elif t is int:
                if not -MAX_INT <= v <= MAX_INT:
                    raise UsageError(f"{where}: integer out of range ({len(str(abs(v)))} digits)")
            elif t is dict or t is list:
                stack.append((v, depth + 1))


def printable_strings(value: Any, where: str) -> Any:
    """`value` with every string (keys too) passed through core/errors.printable: a control
    character in a results file (a terminal escape, a bidi override) is shown, never obeyed."""
    def walk(v: Any, depth: int) -> Any:
        if depth >= MAX_DEPTH:
            raise UsageError(f"{where}: nested deeper than {MAX_DEPTH} levels")
        if type(v) is str:
            return printable(v)
        if type(v) is dict:
            return {printable(k): walk(x, depth + 1) for k, x in v.items()}
        if type(v) is list:
            return [walk(x, depth + 1) for x in v]
        return v
    return walk(value, 0)


def _short(value: Any) -> str:
    return clip(repr(value), 60)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:  # JSON true is not a count
        return False
    return isinstance(value, types)


def _type_name(t: type) -> str:
    return {type(None): "null", dict: "object", list: "array", str: "string", bool: "boolean",
            int: "integer", float: "number"}.get(t, t.__name__)


# ------------------------------------------------------------------ typed accessors


def number(value: Any) -> float | None:
    """A finite number as float, else None (rows hold null where nothing was measured)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def positive(value: Any) -> float | None:
    """A finite number > 0 as float, else None (a failed reading may be stored as 0)."""
    v = number(value)
    return v if v is not None and v > 0 else None


def params(row: Mapping) -> Mapping:
    p = row.get("params")
    return p if isinstance(p, Mapping) else {}


def extra(row: Mapping) -> Mapping:
    e = row.get("extra")
    return e if isinstance(e, Mapping) else {}


def message_bytes(row: Mapping) -> float | None:
    """A collective's message size S: the size measured (nccl-tests' rounding applied, in
    `extra`), else the size asked for (`params`)."""
    return positive(extra(row).get("size_bytes")) or positive(params(row).get("size_bytes"))


def memory_bytes(row: Mapping) -> float | None:
    """A memory case's size: one STREAM array (`extra.array_bytes`) or the transfer size."""
    return positive(extra(row).get("array_bytes")) or positive(params(row).get("size_bytes"))


def algbw_gbps(row: Mapping) -> float | None:
    return number(extra(row).get("algbw_gbps"))


def busbw_gbps(row: Mapping) -> float | None:
    return number(extra(row).get("busbw_gbps"))


def gemm_shape(row: Mapping) -> tuple[int, int, int] | None:
    p = params(row)
    dims = tuple(p.get(d) for d in ("m", "n", "k"))
    ok = all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in dims)
    return dims if ok else None  # type: ignore[return-value]


def gemm_method(p: Mapping) -> str:
    """A GEMM's method in words where it differs from mamf-finder's, the default of
    benchmarks/gemm.py (B built (n, k) and used transposed, C rewritten before every call, fp8
    written as fp8): "B kn, no C rewrite", or "" for mamf's method."""
    parts = []
    if p.get("b_layout", "nk") != "nk":
        parts.append(f"B {p['b_layout']}")
    if p.get("out_rewrite", True) is False:
        parts.append("no C rewrite")
    if p.get("out", "fp8") != "fp8":
        parts.append(f"out {p['out']}")
    return ", ".join(parts)


def trusted_power(row: Mapping) -> float | None:
    """The row's power in W when it may be used for per-watt figures: read (not 'unavailable')
    over a window long enough to trust (core/stats.short_window). A row without the flag
    (written before it existed) is judged from its own window and sample count."""
    if str(row.get("power_source") or "").startswith(("unavailable", "not measured")):
        return None
    short = row.get("telemetry_short_window")
    if short is None:
        samples = row.get("samples_s")
        short = short_window(number(row.get("window_s")), len(samples) if isinstance(samples, list) else None)
    return None if short else positive(row.get("power_w"))


def per_watt(row: Mapping, key: str = "tflops") -> float | None:
    """`key` (tflops or gbps) per trusted watt, or None. Readers use this rather than the stored
    tflops_per_w, which rows written before schema 1's per-watt rule filled from windows of any length."""
    value, power = number(row.get(key)), trusted_power(row)
    return value / power if value and power else None


def rate_at(row: Mapping, quantity: str, statistic: str = "median") -> float | None:
    """The row's `quantity` (tflops or gbps) at `statistic` (core/stats.STATISTICS): the stored
    field, else computed from the work and the stored time statistic (rows written before the
    field existed)."""
    if statistic not in RATE_FIELDS:
        raise ValueError(f"statistic {statistic!r}: one of {', '.join(RATE_FIELDS)}")
    if quantity not in ("tflops", "gbps"):
        raise ValueError(f"quantity {quantity!r}: tflops or gbps")
    key = RATE_FIELDS[statistic][0 if quantity == "tflops" else 1]
    v = number(row.get(key))
    if v is not None:
        return v
    t = positive(row.get(STATISTICS[statistic]))
    work = positive(row.get("flop" if quantity == "tflops" else "bytes"))
    return work / t / (1e12 if quantity == "tflops" else 1e9) if t and work else None


def rate(row: Mapping, statistic: str = "median") -> tuple[float | None, str]:
    """(the row's TFLOP/s at `statistic`, else its GB/s, unit)."""
    for quantity, unit in (("tflops", "TFLOP/s"), ("gbps", "GB/s")):
        v = rate_at(row, quantity, statistic)
        if v is not None:
            return v, unit
    return None, ""
