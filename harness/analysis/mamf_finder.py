"""mamf-finder's log (stas00/ml-engineering compute/accelerator/benchmarks/mamf-finder.py) as
gwbench GEMM rows. No torch here.

Its log file (written through its `Tee`, which turns each `\\r` into a line break) holds one line
per tried shape: `N | MEAN(mean) MEDIAN(median) MAX(max) @ MxNxK | best: ...` in TFLOPS = 1e12
FLOP/s, where "max" is FLOP over the fastest iteration. Each shape becomes one row whose time
statistics are those figures turned back into seconds (time = 2·m·n·k / TFLOPS): the mean, the
median and the fastest sample, with no raw samples (the log has none) and no check (mamf-finder
does not check its products). Formats over its history (docs/sources.md "mamf-finder log"):
  * 2024-08 (12a2c44): `X TFLOPS @ cfg`, the max only; 2024-12 (9057122): `X(max) / Y(median)`;
    benchmark version 2 (dacf05a, 2025-01-03): mean added, C rewritten before each iteration;
    2025-01-15 on: `mean median max`. The parser reads whichever statistics a line names.
  * Until 59fc831 (2025-01-04) the middle number of `MxNxK` was the shared dimension
    (A = (m, n), B = (n, k)); since then K is. Lines without a mean are read the old way, lines
    with one the new way (a log from the one day in between would be read the new way).
Method params follow benchmarks/gemm.py: B is (n, k) contiguous used transposed (`nk`) in
every version, the output rewritten only from benchmark version 2, an fp8 output in fp8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from harness.analysis.nccl_tests import LogError
from harness.core.cases import Case
from harness.core.flops import DTYPE_BYTES, gemm_bytes, gemm_flop
from harness.core.result import Check
from harness.core.row import build_imported_row

TOOL = "mamf-finder"
TORCH_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32",
                "float": "fp32", "float8_e4m3fn": "fp8", "float8_e4m3fnuz": "fp8"}
_STAT = re.compile(r"([0-9]+(?:\.[0-9]*)?)\s*\((mean|median|max)\)")
_SHAPE = re.compile(r"@\s*(\d+)x(\d+)x(\d+)")
_MAX_ONLY = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?)\s*TFLOPS\s*@")
_LINE = re.compile(r"^\s*\d+\s*\|(.*?)\|\s*best:")
# The time statistic (core/stats.STAT_FIELDS) each of mamf-finder's TFLOPS figures comes from.
STAT_TIME = {"mean": "time_mean_s", "median": "time_s", "max": "time_min_s"}


def parse(text: str, where: str = "log") -> dict:
    """{"version", "dtype", "device", "torch", "benchmark_version", "header", "shapes": [...]}."""
    head: dict = {"dtype": None, "device": None, "torch": None, "benchmark_version": None,
                  "command": None}
    shapes = []
    lines = text.splitlines()
    for i, line in enumerate(lines, 1):
        s = line.strip()
        if s.startswith("** Dtype:"):
            name = s.split(":", 1)[1].strip().removeprefix("torch.")
            head["dtype"] = TORCH_DTYPES.get(name, name)
        elif (m := re.search(r"name='([^']+)'", s)) and head["device"] is None:
            head["device"] = m.group(1)
        elif (m := re.match(r"^-?\s*torch=(\S+)", s)) is not None:
            head["torch"] = m.group(1)
        elif (m := re.search(r"benchmark version:\s*(\S+)", s)) is not None:
            head["benchmark_version"] = m.group(1)
        elif s == "** Command line:" and i < len(lines):
            head["command"] = lines[i].strip()
        elif (m := _LINE.match(line)) is not None:
            shapes.append(_shape(m.group(1), i, f"{where}: line {i}"))
    if not shapes:
        raise LogError(f"{where}: no mamf-finder result lines (`N | ... @ MxNxK | best: ...`) found")
    if head["dtype"] is None:
        raise LogError(f"{where}: no `** Dtype:` line (not a mamf-finder log?)")
    bv = head["benchmark_version"]
    version = f"mamf-finder benchmark version {bv}" if bv else (
        "mamf-finder (log format of 2024-12: max and median)" if any("median" in s["tflops"] for s in shapes)
        else "mamf-finder (log format of 2024-08: max only)")
    return {**head, "version": version, "shapes": shapes}


def _shape(part: str, lineno: int, at: str) -> dict:
    stats = {name: float(v) for v, name in _STAT.findall(part)}
    if not stats and (m := _MAX_ONLY.match(part)) is not None:
        stats = {"max": float(m.group(1))}
    shape = _SHAPE.search(part)
    if not stats or shape is None:
        raise LogError(f"{at}: expected `FIGURE(mean|median|max) ... @ MxNxK`, got {part.strip()!r}")
    a, b, c = (int(x) for x in shape.groups())
    # Lines with a mean are from benchmark version 2: K (the last number) is the shared
    # dimension; older lines printed m x shared x n.
    m, n, k = (a, b, c) if "mean" in stats else (a, c, b)
    if min(m, n, k) <= 0 or any(v <= 0 for v in stats.values()):
        raise LogError(f"{at}: a zero shape or figure: {part.strip()!r}")
    return {"m": m, "n": n, "k": k, "tflops": stats, "line": lineno}


def rows(parsed: Mapping, run_id: str, source: Mapping) -> list[dict]:
    dtype = parsed["dtype"]
    v2 = parsed.get("benchmark_version") not in (None, "1")
    method = {"b_layout": "nk", "out_rewrite": bool(v2)} | ({"out": "fp8"} if dtype == "fp8" else {})
    out = []
    for sh in parsed["shapes"]:
        m, n, k = sh["m"], sh["n"], sh["k"]
        flop = gemm_flop(m, n, k)
        case = Case.make("gemm", "matmul", dtype, backend=TOOL, m=m, n=n, k=k, data="randn",
                         label="mamf-finder", **method)
        times = {STAT_TIME[s]: flop / (v * 1e12) for s, v in sh["tflops"].items()}
        eb = DTYPE_BYTES.get(dtype)
        out.append(build_imported_row(
            case, run_id, times_s=times, flop=flop,
            nbytes=gemm_bytes(m, n, k, eb, eb) if eb else None,
            check=Check(True, None, None, "not checked: mamf-finder does not check its products"),
            extra={"tflops_printed": sh["tflops"], "device": parsed.get("device"),
                   "torch": parsed.get("torch"), "statistics": "mamf-finder: mean, median and max "
                   "(= FLOP / fastest iteration) TFLOPS of each shape's timed iterations"},
            source={**source, "version": parsed["version"], "line": sh["line"]}))
    return out
