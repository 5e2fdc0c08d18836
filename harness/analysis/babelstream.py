"""BabelStream's output (UoB-HPC/BabelStream) as gwbench memory rows. No torch here.

Read from its sources (docs/sources.md "BabelStream output"): each kernel runs `num_times`
(100) times; its bandwidth is bytes over the *fastest* run, the first run ignored; bytes per
element are Copy 2, Mul 2, Add 3, Triad 3, Dot 2, Nstream 4 words of `sizeof` (STREAM's
counting, no write-allocate). "Mul" is McCalpin's "scale" (core/flops.STREAM_WORDS), kept
under our name with BabelStream's in `extra`. Units: MB/s (1e6) by default; `--mibibytes`,
and on main `--gigabytes` etc., change the header's unit, which is read from it.

Formats taken: `--csv` (v3.4-v5.0 `max_mbytes_per_sec`, main `max_<unit>_per_sec`; v5.0's
Init/Read phase table and the device lines printed before the header are skipped;
`--triad-only`'s `gbytes_per_sec,runtime` CSV, whose figure is over the total runtime, so a
mean), and the text table (`Function MBytes/sec Min (sec) Max Average`, or `MB/s` on main).
Each kernel is one row: its min / max / mean runtimes (no median, no raw samples: the tool
prints none), `gbps_best` the tool's printed bandwidth. The text table prints runtimes with 5
decimals only (2 significant digits at 1e-4 s), so no rate is derived from them there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from harness.analysis.nccl_tests import LogError
from harness.core.cases import Case
from harness.core.result import Check
from harness.core.row import build_imported_row

TOOL = "babelstream"
# BabelStream kernel -> (our op name, words moved per element).
KERNELS = {"Copy": ("copy", 2), "Mul": ("scale", 2), "Add": ("add", 3), "Triad": ("triad", 3),
           "Dot": ("dot", 2), "Nstream": ("nstream", 4)}
UNITS = {"mbytes": 1e6, "mibytes": 2**20, "mb": 1e6, "mib": 2**20, "gb": 1e9, "gib": 2**30,
         "tb": 1e12, "tib": 2**40, "gbytes": 1e9, "gibytes": 2**30}
SIZEOF_DTYPE = {8: "fp64", 4: "fp32"}
_DEVICE = (re.compile(r"^Using (?:CUDA|HIP|SYCL|OpenCL) device\s+(.+)$"),
           re.compile(r'^CUDA Device \d+:\s*"([^"]+)"'))


def _unit(name: str, where: str) -> float:
    """`max_MB_per_sec`, `max_mbytes_per_sec`, `MBytes/sec`, `MB/s`, `gbytes_per_sec` -> bytes."""
    key = name.lower().removeprefix("max_").removesuffix("_per_sec").removesuffix("/sec").removesuffix("/s")
    if key not in UNITS:
        raise LogError(f"{where}: unknown bandwidth unit {name!r}")
    return UNITS[key]


def parse(text: str, where: str = "output") -> dict:
    """{"version", "device", "implementation", "precision", "format", "kernels": [...]}."""
    info: dict = {"version": None, "device": None, "implementation": None, "format": None}
    kernels: list[dict] = []
    lines = text.splitlines()
    csv_cols: list[str] | None = None
    text_unit: float | None = None
    for i, line in enumerate(lines, 1):
        s = line.strip()
        at = f"{where}: line {i}"
        if not s:
            text_unit = None
            continue
        if s.startswith("Version:"):
            info["version"] = s.split(":", 1)[1].strip()
        elif s.startswith("Implementation:"):
            info["implementation"] = s.split(":", 1)[1].strip()
        elif any(p.match(s) for p in _DEVICE) and info["device"] is None:
            info["device"] = next(p.match(s) for p in _DEVICE if p.match(s)).group(1).strip()
        if s.startswith("function,"):
            csv_cols, text_unit = s.split(","), None
            info["format"] = "csv"
            continue
        if s.startswith("phase,"):  # v5.0's Init/Read table: not kernels
            csv_cols = None
            continue
        if re.match(r"^Function\s+\S+/s", s):
            text_unit, csv_cols = _unit(s.split()[1], at), None
            info["format"] = "text"
            continue
        if csv_cols is not None and "," in s:
            kernels.append(_csv_row(csv_cols, s.split(","), i, at))
        elif text_unit is not None:
            kernels.append(_text_row(s.split(), text_unit, i, at))
    if not kernels:
        raise LogError(f"{where}: no BabelStream results (a `function,...` CSV header or a "
                       "`Function MBytes/sec ...` table) found")
    info["version"] = (f"BabelStream {info['version']}" if info["version"] else
                       f"BabelStream (version not printed in --csv output; {_csv_era(csv_cols)})")
    return {**info, "kernels": kernels}


def _csv_era(cols: list[str] | None) -> str:
    if not cols or len(cols) < 5:
        return "layout unknown"
    if cols[4] in ("max_mbytes_per_sec", "max_mibytes_per_sec"):
        return "CSV layout of v3.4-v5.0"
    if cols[4] in ("gbytes_per_sec", "gibytes_per_sec"):
        return "--triad-only CSV of v3.4-v5.0"
    return "CSV layout of main after v5.0"


def _num(text: str, what: str, at: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise LogError(f"{at}: expected a number for {what}, got {text!r}") from None


def _kernel(name: str, at: str) -> tuple[str, int]:
    if name not in KERNELS:
        raise LogError(f"{at}: unknown BabelStream kernel {name!r} (one of {', '.join(KERNELS)})")
    return KERNELS[name]


def _csv_row(cols: list[str], cells: list[str], lineno: int, at: str) -> dict:
    if len(cells) != len(cols):
        raise LogError(f"{at}: {len(cells)} CSV fields under a {len(cols)}-column header (truncated?)")
    d = dict(zip(cols, (c.strip() for c in cells)))
    name = d["function"]
    _kernel(name, at)
    out = {"function": name, "num_times": int(_num(d["num_times"], "num_times", at)),
           "n": int(_num(d["n_elements"], "n_elements", at)), "sizeof": int(_num(d["sizeof"], "sizeof", at)),
           "line": lineno, "precise_times": True}
    bw_col = cols[4]
    out["bandwidth_bps"] = _num(d[bw_col], bw_col, at) * _unit(bw_col, at)
    if "min_runtime" in d:
        out.update(time_min_s=_num(d["min_runtime"], "min_runtime", at),
                   time_max_s=_num(d["max_runtime"], "max_runtime", at),
                   time_mean_s=_num(d["avg_runtime"], "avg_runtime", at), statistic="min")
    else:  # --triad-only: total runtime of num_times calls; the figure is over their mean
        total = _num(d["runtime"], "runtime", at)
        out.update(time_mean_s=total / max(1, out["num_times"]), statistic="mean")
    return out


def _text_row(cells: list[str], unit: float, lineno: int, at: str) -> dict:
    if len(cells) != 5:
        raise LogError(f"{at}: expected `Function BANDWIDTH MIN MAX AVERAGE`, got {' '.join(cells)!r}")
    name = cells[0]
    _kernel(name, at)
    return {"function": name, "num_times": None, "n": None, "sizeof": None, "line": lineno,
            "bandwidth_bps": _num(cells[1], "bandwidth", at) * unit,
            "time_min_s": _num(cells[2], "Min", at), "time_max_s": _num(cells[3], "Max", at),
            "time_mean_s": _num(cells[4], "Average", at), "statistic": "min", "precise_times": False}


def _array_size(text: str) -> tuple[int | None, int | None]:
    """(elements, sizeof) from the text header (`Number of elements:`, `Precision:`)."""
    n = re.search(r"Number of elements:\s*(\d+)", text)
    prec = re.search(r"Precision:\s*(\w+)", text)
    sizeof = {"double": 8, "float": 4}.get(prec.group(1)) if prec else None
    return (int(n.group(1)) if n else None), sizeof


def rows(parsed: Mapping, run_id: str, source: Mapping, text: str = "") -> list[dict]:
    n_text, sizeof_text = _array_size(text)
    out = []
    for kr in parsed["kernels"]:
        op, words = KERNELS[kr["function"]]
        n = kr["n"] or n_text or 2**25  # BabelStream's default array size (main.cpp: 2^25)
        sizeof = kr["sizeof"] or sizeof_text or 8  # and its default precision, double
        nbytes = words * sizeof * n
        dtype = SIZEOF_DTYPE.get(sizeof, f"{sizeof}B")
        case = Case.make("memory", op, dtype, backend=TOOL, n=n, label="hbm")
        times = {k: kr[k] for k in ("time_min_s", "time_max_s", "time_mean_s") if k in kr}
        rate_key = "gbps_best" if kr["statistic"] == "min" else "gbps_mean"
        rates = {rate_key: kr["bandwidth_bps"] / 1e9}
        out.append(build_imported_row(  # 5-decimal runtimes (text table): no rate derived from them
            case, run_id, times_s=times if kr["precise_times"] else {}, nbytes=nbytes, rates=rates,
            check=Check(True, None, None, "BabelStream's own solution check (its failures are "
                        "printed to stderr, not in this output)"),
            extra={"babelstream_kernel": kr["function"], "num_times": kr["num_times"],
                   "byte_convention": f"BabelStream: {words} words of {sizeof} B per element",
                   "statistic": ("bandwidth over the fastest of num_times runs, the first ignored"
                                 if kr["statistic"] == "min" else "bandwidth over the mean runtime"),
                   "runtimes_printed_s": {k: kr[k] for k in ("time_min_s", "time_max_s", "time_mean_s") if k in kr},
                   "implementation": parsed.get("implementation"), "device": parsed.get("device")},
            source={**source, "version": parsed["version"], "line": kr["line"]}))
    return out
