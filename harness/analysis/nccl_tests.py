"""nccl-tests semantics as pure functions: its log parser and its rows as gwbench rows.

Source: NVIDIA/nccl-tests doc/PERFORMANCE.md (docs/sources.md "Collectives"). algbw = S / t
with GB = 1e9 B; busbw = algbw × a per-collective factor that makes the figure comparable
to the hardware's link bandwidth whatever the number of ranks n. S is the nccl-tests
"size" column: the whole buffer for all_gather / reduce_scatter / alltoall.

The busbw factors live in core/flops.py; printing rows in nccl-tests' layout is
present/nccl_tests.py. No torch here: the importer uses this module on any machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from harness.core.cases import Case
from harness.core.errors import UsageError
from harness.core.result import Check
from harness.core.row import build_imported_row
from harness.core.flops import BUSBW_FACTORS, busbw_factor

# nccl-tests binary stem -> our name (all_reduce_perf -> all_reduce, ...).
PERF_BINARIES = {"all_reduce": "all_reduce", "all_gather": "all_gather",
                 "reduce_scatter": "reduce_scatter", "alltoall": "alltoall",
                 "broadcast": "broadcast", "reduce": "reduce", "sendrecv": "sendrecv"}
# nccl-tests type names -> gwbench dtype names (others are kept as nccl-tests spells them).
NCCL_TYPES = {"float": "fp32", "bfloat16": "bf16", "half": "fp16", "double": "fp64",
              "fp8e4m3": "fp8", "fp8e5m2": "fp8e5m2", "int8": "int8", "uint8": "uint8",
              "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64"}
DTYPE_NCCL = {"fp32": "float", "bf16": "bfloat16", "fp16": "half", "fp64": "double", "fp8": "fp8e4m3"}


# ---------------------------------------------------------------- parsing a log

_RANK_LINE = re.compile(r"^#\s+Rank\s+(\d+)\s+Group\s+\d+\s+Pid\s+\d+\s+on\s+(\S+)\s+device\s+(\d+)")
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


class LogError(UsageError):
    """Not an nccl-tests log, or a truncated one; the message names the line."""


def collective_from_name(name: str) -> str | None:
    """`all_reduce_perf.log`, `logs/alltoall_perf-8gpu.txt` -> the collective, else None."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    for key in sorted(PERF_BINARIES, key=len, reverse=True):
        if stem.startswith(key) or f"{key}_perf" in stem:
            return PERF_BINARIES[key]
    return None


def _half(tokens: list[str], lineno: int, line: str) -> dict:
    time_us, algbw, busbw, wrong = tokens
    try:
        out = {"time_us": float(time_us), "algbw_gbps": float(algbw), "busbw_gbps": float(busbw)}
    except ValueError:
        raise LogError(f"line {lineno}: expected time, algbw, busbw numbers: {line.strip()!r}") from None
    out["wrong"] = None if wrong.upper() == "N/A" else _int(wrong, lineno, line)
    return out


def _int(text: str, lineno: int, line: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LogError(f"line {lineno}: expected an integer, got {text!r}: {line.strip()!r}") from None


def parse_log(text: str | Iterable[str], collective: str | None = None, where: str = "log") -> dict:
    """Parse all_reduce_perf-style output.

    Returns {"collective", "nranks", "hosts", "header", "results": [ {size_bytes, count,
    type, redop, root, "out_of_place": {...}, "in_place": {...}} ]}. Data lines hold
    `size count type [redop [root]]` then time/algbw/busbw/#wrong twice (out-of-place,
    in-place), as printed by nccl-tests 2.x.
    """
    if collective is not None and collective not in BUSBW_FACTORS:
        raise LogError(f"unknown collective {collective!r}: choose from {', '.join(BUSBW_FACTORS)}")
    ranks: dict[int, tuple[str, int]] = {}
    header: list[str] = []
    results: list[dict] = []
    saw_columns = False
    saw_end = False
    lineno = 0
    for lineno, line in enumerate(text.splitlines() if isinstance(text, str) else text, 1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            m = _RANK_LINE.match(s)
            if m:
                ranks[int(m.group(1))] = (m.group(2), int(m.group(3)))
            elif "size" in s and "count" in s and "type" in s:
                saw_columns = True
            elif s.startswith("# nThread") or s.startswith("# Collective test starting"):
                header.append(s)
            elif "Avg bus bandwidth" in s:
                saw_end = True
            continue
        if not saw_columns:
            if results or header:
                raise LogError(f"{where}: line {lineno}: data before the column header: {s!r}")
            continue  # launcher noise before the nccl-tests banner
        tokens = s.split()
        if not re.fullmatch(r"\d+", tokens[0]):
            # NCCL INFO/WARN lines interleave with the table; anything else is not a row.
            if tokens[0].startswith(("NCCL", "[")) or ":" in tokens[0]:
                continue
            raise LogError(f"{where}: line {lineno}: not an nccl-tests result row: {s!r}")
        if len(tokens) not in (11, 12, 13) or not re.fullmatch(r"\d+", tokens[1]):
            raise LogError(f"{where}: line {lineno}: expected `size count type [redop [root]]` and "
                           f"8 figures, got {len(tokens)} fields (truncated?): {s!r}")
        head, oop, ip = tokens[:-8], tokens[-8:-4], tokens[-4:]
        results.append({
            "size_bytes": _int(head[0], lineno, s), "count": _int(head[1], lineno, s), "type": head[2],
            "redop": head[3] if len(head) > 3 else None,
            "root": _int(head[4], lineno, s) if len(head) > 4 else None,
            "out_of_place": _half(oop, lineno, s), "in_place": _half(ip, lineno, s),
            "line": lineno})
    if not results:
        raise LogError(f"{where}: no nccl-tests result rows found (not an nccl-tests log?)")
    if not saw_end:
        raise LogError(f"{where}: line {lineno}: log ends before "
                       "'# Avg bus bandwidth' (truncated?)")
    nranks = len(ranks) or _ranks_from_factor(results, collective)
    return {"collective": collective, "nranks": nranks,
            "hosts": sorted({h for h, _ in ranks.values()}), "header": header, "results": results}


def _ranks_from_factor(results: list[dict], collective: str | None) -> int | None:
    """No `# Rank` lines: recover n from busbw/algbw = 2(n-1)/n or (n-1)/n where possible."""
    if collective not in ("all_reduce", "all_gather", "reduce_scatter", "alltoall"):
        return None
    big = max(results, key=lambda r: r["size_bytes"])["out_of_place"]
    if not big["algbw_gbps"]:
        return None
    f = big["busbw_gbps"] / big["algbw_gbps"] / (2 if collective == "all_reduce" else 1)
    return round(1 / (1 - f)) if f < 1 else None


# ---------------------------------------------------------------- log -> gwbench rows

def rows_from_log(parsed: dict, run_id: str, source: str) -> list[dict]:
    """One row per (size, placement), built by the one imported-row builder (core/row.py).

    nccl-tests prints one time per size (the mean over ranks of `-n` iterations), so each
    row holds that single sample; power is not in the log and stays null. The algbw column is
    kept as printed: gbps recomputed from the log's two-decimal time would differ from it (6%
    at 1 KiB in tests/data's sample).
    """
    op, n = parsed["collective"], parsed["nranks"]
    rows = []
    for res in parsed["results"]:
        dtype = NCCL_TYPES.get(res["type"], res["type"])
        for placement in ("out_of_place", "in_place"):
            half = res[placement]
            case = Case.make("collectives", op, dtype, backend="nccl-tests", world_size=n or 0,
                             size_bytes=res["size_bytes"], placement=placement,
                             label=f"{op} {placement.replace('_', '-')}")
            wrong = half["wrong"]
            check = Check(wrong in (0, None), None, None, "nccl-tests #wrong", {"wrong": wrong})
            extra = {"size_bytes": res["size_bytes"], "count": res["count"],
                     "time_us": half["time_us"], "algbw_gbps": half["algbw_gbps"],
                     "busbw_gbps": half["busbw_gbps"], "wrong": wrong, "nranks": n,
                     "placement": placement, "redop": res["redop"], "root": res["root"],
                     "busbw_factor": busbw_factor(op, n) if n else None,
                     "source": f"{source}:{res['line']}"}
            rows.append(build_imported_row(
                case, run_id, samples_s=[half["time_us"] / 1e6], nbytes=res["size_bytes"],
                gbps_value=half["algbw_gbps"], check=check, extra=extra, tool="an nccl-tests log",
                error=f"nccl-tests reported {wrong} wrong elements"))
    return rows
