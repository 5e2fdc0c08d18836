"""nvbandwidth's `-j` JSON (NVIDIA/nvbandwidth) as gwbench memory rows. No torch here.

Read from its sources (docs/sources.md "nvbandwidth output"): each testcase reports a matrix of
bandwidths in GB/s (1e9; latency tests in ns), each cell the *median* of `-i` samples (3 by
default; `-m` makes it the mean, and the JSON does not record which), each sample 16 copies of
the buffer (512 MiB by default since v0.7, 64 MiB before; the JSON does not record it either)
after 4 warm-up copies. Bytes are counted on one side of a copy: `device_local_copy` moves
twice the reported figure through HBM (gwbench's `d2d` counts the same way).
JSON quirks taken: cells are strings (`"55.43"`, `"N/A"` on the diagonal and for pairs without
peer access); tests that report several matrices (v0.6+ device-to-device bidirectional:
Read1/Read2/Total or Write1/Write2/Total) append all of them to one `bandwidth_matrix` while
`sum` and `bandwidth_description` keep the last (Total). Each cell is one row, keyed by the
testcase (the op), its row and column, and the matrix part where there are several; a waived
test is a skipped row, an errored one a failed row.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from harness.analysis.nccl_tests import LogError
from harness.core.cases import Case
from harness.core.result import Check
from harness.core.row import build_imported_row, build_row

TOOL = "nvbandwidth"
_DEVICE = re.compile(r"^\s*(\d+):\s*(.+?)\s*\(([0-9a-fA-F:.]+)\)(?::\s*\((.*)\))?\s*$")


def parse(text: str, where: str = "file") -> dict:
    """{"version", "driver", "cuda", "devices": [(index, name, pci, host)], "testcases": [...]}."""
    if text.lstrip().startswith("nvbandwidth Version"):
        raise LogError(f"{where}: this is nvbandwidth's text output; run it with -j (JSON) to import")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogError(f"{where}: not JSON ({exc.msg} at line {exc.lineno}); expected nvbandwidth -j output") from None
    nvb = doc.get("nvbandwidth") if isinstance(doc, Mapping) else None
    if not isinstance(nvb, Mapping) or not isinstance(nvb.get("testcases"), list):
        raise LogError(f"{where}: not nvbandwidth -j output (no nvbandwidth.testcases)")
    devices = []
    for entry in nvb.get("GPU Device list") or []:
        m = _DEVICE.match(str(entry))
        if m:
            devices.append((int(m.group(1)), m.group(2), m.group(3), m.group(4)))
    tests = []
    for i, t in enumerate(nvb["testcases"]):
        if not isinstance(t, Mapping) or not t.get("name"):
            raise LogError(f"{where}: testcases[{i}] has no name")
        matrix = t.get("bandwidth_matrix") or []
        if not isinstance(matrix, list) or not all(isinstance(r, list) for r in matrix):
            raise LogError(f"{where}: testcases[{i}] ({t['name']}): bandwidth_matrix is not a list of rows")
        tests.append({"name": str(t["name"]), "status": str(t.get("status", "")), "index": i,
                      "description": str(t.get("bandwidth_description", "")), "matrix": matrix,
                      "sum": t.get("sum"), "error": t.get("error")})
    version = nvb.get("version") or nvb.get("git_version")
    return {"version": f"nvbandwidth {version}" if version else "nvbandwidth (version not recorded)",
            "driver": nvb.get("Driver Version"), "cuda": nvb.get("CUDA Runtime Version"),
            "devices": devices, "testcases": tests}


def gpu_count(parsed: Mapping) -> int | None:
    """How many GPUs the file covers: its `GPU Device list` (v0.8+), else the width of the widest
    matrix whose columns are GPUs (`... GPU(column) bandwidth`: every testcase of v0.5-v0.8 has
    one GPU per column), else None."""
    if parsed["devices"]:
        return len(parsed["devices"])
    widths = [len(t["matrix"][0]) for t in parsed["testcases"]
              if "GPU(column)" in t["description"] and t["matrix"] and t["matrix"][0]]
    return max(widths, default=None)


def _parts(test: Mapping) -> list[tuple[str, list]]:
    """(matrix part, rows) pairs: three stacked square matrices for the bidirectional
    device-to-device tests of v0.6+, else the one matrix."""
    matrix, name = test["matrix"], test["name"]
    cols = len(matrix[0]) if matrix else 0
    if cols and len(matrix) == 3 * cols and "bidirectional" in name and "device_to_device" in name:
        kind = "read" if "_read_" in name else "write"
        names = (f"{kind}1", f"{kind}2", "total")
        return [(names[p], matrix[p * cols:(p + 1) * cols]) for p in range(3)]
    return [("", matrix)]


def rows(parsed: Mapping, run_id: str, source: Mapping) -> list[dict]:
    out = []
    for t in parsed["testcases"]:
        src = {**source, "version": parsed["version"], "testcase_index": t["index"]}
        latency = "(ns)" in t["description"]
        if t["status"] != "Passed":
            status = "skipped" if t["status"] == "Waived" else "failed"
            case = Case.make("memory", t["name"], "u8", backend=TOOL, label="nvbandwidth")
            row = build_row(case, run_id, status, None, error=f"nvbandwidth: {t['status']}"
                            + (f": {t['error']}" if t.get("error") else ""), started_at=None, wall_s=None)
            out.append(row | {"source": src, "power_source": "not measured: imported from nvbandwidth output"})
            continue
        for part, matrix in _parts(t):
            for r, cells in enumerate(matrix):
                for c, cell in enumerate(cells):
                    if str(cell).strip().upper() == "N/A":
                        continue
                    try:
                        value = float(cell)
                    except (TypeError, ValueError):
                        raise LogError(f"{source.get('file', 'file')}: {t['name']} row {r} column {c}: "
                                       f"{cell!r} is not a number") from None
                    params = {"row": r, "column": c} | ({"matrix": part} if part else {})
                    case = Case.make("memory", t["name"], "u8", backend=TOOL, label="nvbandwidth", **params)
                    extra = {"description": t["description"], "statistic":
                             "median of nvbandwidth's -i samples (its default; -m would make it the mean: "
                             "the JSON does not say)",
                             "byte_convention": "nvbandwidth: bytes copied (one side)"}
                    out.append(build_imported_row(
                        case, run_id, times_s={"time_s": value * 1e-9} if latency else {},
                        rates={} if latency else {"gbps": value},
                        check=Check(True, None, None, "nvbandwidth's own copy check (unless run with -s)"),
                        extra=extra, source=src))
    return out
