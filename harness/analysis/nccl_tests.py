"""nccl-tests semantics as pure functions: its output parsed into gwbench rows, its flags.

Source: NVIDIA/nccl-tests (doc/PERFORMANCE.md, src/common.cu, src/util.cu; docs/sources.md
"Collectives"). algbw = S / t with GB = 1e9 B; busbw = algbw × a per-collective factor; S is
the `size` column (the whole buffer for all_gather / reduce_scatter / alltoall) and `count` is
per rank for those three (per peer for alltoall), the whole buffer for the others
(core/flops.nccl_counts). The busbw factors live in core/flops.py; printing rows in
nccl-tests' layout is present/nccl_tests.py, and what it prints parses here again.

The parser keys on the column header, not on column positions, so that it reads every layout
nccl-tests has printed since 2019 (formats read from its history):
  * rank lines with or without `Group` (2022-09) and `Pid`, any PCI id form, and the device name
    each ends with (the `-J` file's `device_info`);
  * per-collective headers of v2.0-v2.11 (all_gather: `size count type`, broadcast: `... root`)
    with the legacy `error` column (a max abs delta `%5.0le`, not a count);
  * `#wrong` as `%g` (`1e+06`, `5.36871e+08`) or `N/A` (-c 0, in-place alltoall/sendrecv);
  * `-I 1` per-iteration columns (i_min i_max i_p99 i_cv% after each placement), `-S 1`
    timestamps, `-C 1` `cputime`; several tables in one file (`# Collective test starting`);
  * the `-J` JSON file (version 3);
  * `-` in a placement's cells: gwbench's mark for a placement it does not measure.
No torch here: the importer uses this module on any machine.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from collections.abc import Iterable, Mapping

from harness.core.cases import Case
from harness.core.errors import UsageError
from harness.core.flops import BUSBW_FACTORS, busbw_factor
from harness.core.result import Check
from harness.core.row import build_imported_row
from harness.core.sizes import parse_size

TOOL = "nccl-tests"
# nccl-tests binary stem -> our name (all_reduce_perf -> all_reduce, ...).
PERF_BINARIES = {"all_reduce": "all_reduce", "all_gather": "all_gather",
                 "reduce_scatter": "reduce_scatter", "alltoall": "alltoall",
                 "broadcast": "broadcast", "reduce": "reduce", "sendrecv": "sendrecv"}
# nccl-tests type names (src/common.cu test_typenames) -> gwbench dtype names; others are kept
# as nccl-tests spells them.
NCCL_TYPES = {"float": "fp32", "bfloat16": "bf16", "half": "fp16", "double": "fp64",
              "f8e4m3": "fp8", "fp8e4m3": "fp8", "f8e5m2": "fp8e5m2", "fp8e5m2": "fp8e5m2"}
DTYPE_NCCL = {"fp32": "float", "bf16": "bfloat16", "fp16": "half", "fp64": "double", "fp8": "f8e4m3"}
PLACEMENTS = ("out_of_place", "in_place")


class LogError(UsageError):
    """Not an nccl-tests log, or a truncated one; the message names the line."""


# ---------------------------------------------------------------- names

def collective_from_name(name: str) -> str | None:
    """`all_reduce_perf.log`, `logs/alltoall_perf-8gpu.txt`, `h200_reduce_scatter_16G.txt` -> the
    collective named in the file name (longest name first: reduce_scatter before reduce), else None."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1]
    for key in sorted(PERF_BINARIES, key=len, reverse=True):
        if re.search(rf"(?:^|[^a-z]){key}(?:$|[^a-z])", stem):
            return PERF_BINARIES[key]
    return None


# ---------------------------------------------------------------- parsing the text output

# `#  Rank %2d Group %2d Pid %6d on %10s device %2d [%04x:%02x:%02x] %s` (HEAD; v2.11 and older: no
# Group, `[0x%02x]`): the last field is the CUDA device name (cudaDeviceProp.name).
_RANK_LINE = re.compile(r"^#\s+Rank\s+(\d+)(?:\s+Group\s+\d+)?(?:\s+Pid\s+\d+)?\s+on\s+(\S+)\s+device\s+(\d+)"
                        r"(?:\s+\[[^\]]*\](?:\s+(\S.*?))?)?\s*$")
_VERSION = re.compile(r"^#\s*nccl-tests version\s+(\S+)")
_STARTING = re.compile(r"^#\s*Collective test starting:\s*(\S+)")
_GWBENCH = re.compile(r"^#\s*gwbench:.*\branks\s+(\d+)")
_OOB = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)\s*(\w*)")
_AVG = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*(\S+)")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}$")
_HEAD_NAMES = ("size", "count", "type", "redop", "root")


def _layout(tokens: list[str], where: str) -> dict | None:
    """The column layout of a header row (`size count type ... time algbw busbw #wrong ...`):
    the leading identity columns, then one group per placement, each starting at `time`."""
    if tokens[:2] == ["bytes", "N"]:
        raise LogError(f"{where}: nccl-tests 1.x output (`bytes N type op`, times in ms) is not supported")
    if tokens[:2] != ["size", "count"]:
        return None
    starts = [i for i, t in enumerate(tokens) if t in ("time", "cputime")]
    if not starts:
        return None
    head = tokens[:starts[0]]
    if any(h not in _HEAD_NAMES for h in head):
        return None
    groups, timestamp = [], tokens[-1] == "timestamp"
    ends = starts[1:] + [len(tokens) - (1 if timestamp else 0)]
    for a, b in zip(starts, ends):
        groups.append(tokens[a:b])
    return {"head": head, "groups": groups, "timestamp": timestamp}


def _number(text: str, what: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise LogError(f"{where}: expected a number for {what}, got {text!r}") from None


def _wrong(text: str, where: str) -> int | None:
    """`#wrong` as nccl-tests prints it: %g (so 1e+06 and 5.36871e+08 happen) or N/A."""
    if text.upper() == "N/A":
        return None
    v = _number(text, "#wrong", where)
    if v < 0 or v != int(v):
        raise LogError(f"{where}: #wrong {text!r} is not a count")
    return int(v)


def _group(cols: list[str], cells: list[str], where: str) -> dict | None:
    """One placement's cells -> {time_us, algbw_gbps, busbw_gbps, wrong, ...}; None when the
    placement is absent (`-`, gwbench's mark) ."""
    if cells[0] == "-":
        return None
    out: dict = {}
    for name, cell in zip(cols, cells):
        if name in ("time", "cputime"):
            out["time_us"] = _number(cell, name, where)
            if name == "cputime":
                out["cpu_time"] = True
        elif name == "algbw":
            out["algbw_gbps"] = _number(cell, name, where)
        elif name == "busbw":
            out["busbw_gbps"] = _number(cell, name, where)
        elif name == "#wrong":
            out["wrong"] = _wrong(cell, where)
        elif name == "error":  # v2.0-v2.11: the largest absolute deviation, not a count
            out["wrong"] = None
            out["max_abs_error"] = None if cell.upper() == "N/A" else _number(cell, name, where)
        elif name.startswith("i_"):  # -I 1: per-iteration statistics (µs, and % for i_cv%)
            key = name[2:].rstrip("%")
            out[f"iter_{key}_{'pct' if name.endswith('%') else 'us'}"] = _number(cell, name, where)
        else:
            out[name] = cell
    for need in ("time_us", "algbw_gbps", "busbw_gbps"):
        if need not in out:
            raise LogError(f"{where}: the column header has no {need.split('_')[0]} column")
    return out


def parse_tables(text: str | Iterable[str], collective: str | None = None, where: str = "log") -> list[dict]:
    """Every result table of an nccl-tests output (or a gwbench `--format nccl-tests` report).

    Each table: {"collective", "nranks", "hosts", "devices" (the device name of each rank line
    that prints one), "header", "version", "results": [{size_bytes,
    count, type, redop, root, out_of_place, in_place, line}], "out_of_bounds", "avg_busbw"}.
    `collective` is used where the table does not name its own (`# Collective test starting`).
    """
    if collective is not None and collective not in BUSBW_FACTORS:
        raise LogError(f"unknown collective {collective!r}: choose from {', '.join(BUSBW_FACTORS)}")
    lines = iter(text.splitlines() if isinstance(text, str) else text)  # a file: read a line at a time
    head: list[str] = []  # the blank lines before the first one, and that line
    for ln in lines:
        head.append(ln)
        if ln.strip():
            break
    if head and head[-1].lstrip().startswith("{"):  # the -J JSON: small, read whole
        return [_parse_json("\n".join(itertools.chain(head, lines)), collective, where)]
    tables: list[dict] = []
    pending: dict = {"ranks": {}, "header": [], "version": None, "collective": None, "gw_ranks": None}
    table: dict | None = None
    lineno = 0
    for lineno, line in enumerate(itertools.chain(head, lines), 1):
        s = line.strip()
        if not s:
            continue
        at = f"{where}: line {lineno}"
        if s.startswith("#"):
            body = s[1:].split()
            layout = _layout(body, at) if body else None
            if layout is not None:
                if table is not None and not table["closed"]:
                    raise LogError(f"{at}: a new table starts before the last one's "
                                   "'# Avg bus bandwidth' (truncated?)")
                table = {**_start_table(pending, collective), "layout": layout, "results": [],
                         "closed": False, "out_of_bounds": None, "avg_busbw": None}
                tables.append(table)
                pending = {"ranks": {}, "header": [], "version": pending["version"],
                           "collective": None, "gw_ranks": None}
                continue
            if (m := _RANK_LINE.match(s)) is not None:
                pending["ranks"][int(m.group(1))] = (m.group(2), int(m.group(3)), m.group(4))
            elif (m := _VERSION.match(s)) is not None:
                pending["version"] = m.group(1)
            elif (m := _STARTING.match(s)) is not None:
                pending["collective"] = collective_from_name(m.group(1))
                pending["header"].append(s)
            elif (m := _GWBENCH.match(s)) is not None:
                pending["gw_ranks"] = int(m.group(1))
                pending["header"].append(s)
            elif s.startswith("# nThread"):
                pending["header"].append(s)
            elif table is not None and (m := _OOB.match(s)) is not None:
                table["out_of_bounds"] = {"count": int(m.group(1)), "status": m.group(2) or None}
            elif table is not None and (m := _AVG.match(s)) is not None:
                table["avg_busbw"] = m.group(1)
                table["closed"] = True
            continue
        tokens = s.split()
        if table is None or table["closed"]:
            if re.fullmatch(r"\d+", tokens[0]) and table is None and pending["header"]:
                raise LogError(f"{at}: data before the column header: {s!r}")
            continue  # launcher, NCCL INFO or other noise outside a table
        if not re.fullmatch(r"\d+", tokens[0]):
            # NCCL INFO/WARN lines interleave with the table; anything else is not a row.
            if tokens[0].startswith(("NCCL", "[")) or ":" in tokens[0]:
                continue
            raise LogError(f"{at}: not an nccl-tests result row: {s!r}")
        table["results"].append(_row(table["layout"], tokens, lineno, at, s))
    if not tables or not any(t["results"] for t in tables):
        raise LogError(f"{where}: no nccl-tests result rows found (not an nccl-tests log?)")
    if not tables[-1]["closed"]:
        raise LogError(f"{where}: line {lineno}: log ends before '# Avg bus bandwidth' (truncated?)")
    out = []
    for t in tables:
        if not t["results"]:
            continue
        t["nranks"] = t["nranks"] or _ranks_from_factor(t["results"], t["collective"])
        legacy_failed = (t["out_of_bounds"] or {}).get("status") == "FAILED"
        for r in t["results"]:  # the legacy `error` column fails a row only with the footer's FAILED
            for half in (r["out_of_place"], r["in_place"]):
                if half is not None and half.get("max_abs_error"):
                    half["legacy_failed"] = legacy_failed
        out.append({k: v for k, v in t.items() if k not in ("closed", "layout")})
    return out


def _start_table(pending: dict, collective: str | None) -> dict:
    ranks = pending["ranks"]
    return {"collective": collective or pending["collective"],
            "nranks": len(ranks) or pending["gw_ranks"],
            "hosts": sorted({h for h, _, _ in ranks.values()}),
            "devices": [name for _, _, name in ranks.values() if name],
            "header": list(pending["header"]),
            "version": pending["version"]}


def _row(layout: dict, tokens: list[str], lineno: int, at: str, line: str) -> dict:
    head, groups = layout["head"], layout["groups"]
    want = len(head) + sum(len(g) for g in groups) + (2 if layout["timestamp"] else 0)
    if len(tokens) != want:
        raise LogError(f"{at}: expected {want} fields ({' '.join(head)} then {len(groups)} placements"
                       f"{' and a timestamp' if layout['timestamp'] else ''}), got {len(tokens)} "
                       f"(truncated?): {line!r}")
    cells = dict(zip(head, tokens))
    res = {"size_bytes": _int(cells["size"], at, line), "count": _int(cells["count"], at, line),
           "type": cells["type"], "redop": cells.get("redop"),
           "root": _int(cells["root"], at, line) if "root" in cells else None, "line": lineno}
    pos = len(head)
    halves = []
    for g in groups:
        halves.append(_group(g, tokens[pos:pos + len(g)], at))
        pos += len(g)
    halves += [None] * (2 - len(halves))
    res["out_of_place"], res["in_place"] = halves[0], halves[1]
    if layout["timestamp"]:
        stamp = " ".join(tokens[pos:pos + 2])
        if not _TIMESTAMP.match(tokens[pos]):
            raise LogError(f"{at}: expected a timestamp, got {stamp!r}")
        res["timestamp"] = stamp
    return res


def _int(text: str, at: str, line: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LogError(f"{at}: expected an integer, got {text!r}: {line!r}") from None


def parse_log(text: str, collective: str | None = None, where: str = "log") -> dict:
    """The one table of a single-collective log (parse_tables for files holding several)."""
    tables = parse_tables(text, collective, where)
    if len(tables) != 1:
        raise LogError(f"{where}: {len(tables)} result tables; read it with parse_tables")
    return tables[0]


def _ranks_from_factor(results: list[dict], collective: str | None) -> int | None:
    """No `# Rank` lines: recover n from busbw/algbw = 2(n-1)/n or (n-1)/n where possible."""
    if collective not in ("all_reduce", "all_gather", "reduce_scatter", "alltoall"):
        return None
    halves = [r[p] for r in results for p in PLACEMENTS if r[p] is not None]
    if not halves:
        return None
    big = max(halves, key=lambda h: h["algbw_gbps"])
    if not big["algbw_gbps"]:
        return None
    f = big["busbw_gbps"] / big["algbw_gbps"] / (2 if collective == "all_reduce" else 1)
    return round(1 / (1 - f)) if f < 1 else None


# ---------------------------------------------------------------- the -J JSON file

def _parse_json(text: str, collective: str | None, where: str) -> dict:
    """nccl-tests' `-J` file (JSON_FILE_VERSION 3, src/util.cu): booleans are the strings
    "true"/"false", root a padded string, nwrong a float or null."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LogError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise LogError(f"{where}: not an nccl-tests -J file (no results list)")
    args = doc.get("args") if isinstance(doc.get("args"), list) else []
    coll = collective or (collective_from_name(str(args[0])) if args else None)
    cfg = doc.get("config") if isinstance(doc.get("config"), Mapping) else {}
    devices = cfg.get("devices") if isinstance(cfg.get("devices"), list) else []
    # One entry per process (one only for a single process running -g N): ranks = processes ×
    # threads × GPUs per thread.
    try:
        nranks = max(1, len(devices)) * int(cfg.get("nthreads", 1)) * int(cfg.get("ngpus", 1))
    except (TypeError, ValueError):
        nranks = None
    results = []
    for i, r in enumerate(doc["results"]):
        at = f"{where}: results[{i}]"
        if not isinstance(r, Mapping):
            raise LogError(f"{at}: not an object")
        try:
            res = {"size_bytes": int(r["size"]), "count": int(r["count"]), "type": str(r["type"]),
                   "redop": r.get("redop"), "root": int(str(r.get("root", "-1")).strip()), "line": None,
                   "json_index": i}
        except (KeyError, TypeError, ValueError):
            raise LogError(f"{at}: expected size, count, type, redop, root") from None
        for p in PLACEMENTS:
            half = r.get(p)
            if not isinstance(half, Mapping):
                res[p] = None
                continue
            t = half.get("time", half.get("cpu_time"))
            nwrong = half.get("nwrong")
            try:
                res[p] = {"time_us": float(t), "algbw_gbps": float(half["alg_bw"]),
                          "busbw_gbps": float(half["bus_bw"]),
                          "wrong": None if nwrong is None else int(float(nwrong))}
            except (KeyError, TypeError, ValueError):
                raise LogError(f"{at}.{p}: expected time, alg_bw, bus_bw, nwrong") from None
        results.append(res)
    hosts = sorted({str(d.get("hostname")) for d in devices if isinstance(d, Mapping) and d.get("hostname")})
    # `device_info` is the rank line's name field; one process driving -g N GPUs has one entry.
    names = [str(d["device_info"]).strip() for d in devices
             if isinstance(d, Mapping) and str(d.get("device_info") or "").strip()]
    oob = doc.get("out_of_bounds") if isinstance(doc.get("out_of_bounds"), Mapping) else {}
    return {"collective": coll, "nranks": nranks, "hosts": hosts, "devices": names,
            "header": [f"-J file version {doc.get('version')}", " ".join(str(a) for a in args)],
            "version": None, "json_version": doc.get("version"), "results": results,
            "out_of_bounds": {"count": oob.get("count"), "status": oob.get("okay")},
            "avg_busbw": (doc.get("average_bus_bandwidth") or {}).get("bandwidth")
            if isinstance(doc.get("average_bus_bandwidth"), Mapping) else None}


# ---------------------------------------------------------------- output -> gwbench rows

def version_text(table: Mapping) -> str:
    if table.get("version"):
        return f"nccl-tests {table['version']}"
    if table.get("json_version") is not None:
        return f"nccl-tests -J file version {table['json_version']}"
    return "nccl-tests (version not printed: output of a release before 2025-10-24)"


def rows_from_log(parsed: dict, run_id: str, source: Mapping) -> list[dict]:
    """One row per (size, type, placement) printed, built by the one imported-row builder.

    nccl-tests prints one time per size (the mean over ranks of `-n` iterations), so each row
    holds that single sample; algbw is kept as printed (gbps recomputed from the 2-decimal time
    would differ from it: 6% at 1 KiB in tests/data's sample). `source` = {tool, version,
    sha256, file}; each row adds its line. Power is not in the output and stays null.
    """
    op, n = parsed["collective"], parsed["nranks"]
    if op not in BUSBW_FACTORS:
        raise LogError(f"{source.get('file', 'log')}: the collective is not known; pass --collective")
    rows = []
    for res in parsed["results"]:
        dtype = NCCL_TYPES.get(res["type"], res["type"])
        for placement in PLACEMENTS:
            half = res[placement]
            if half is None:
                continue
            params: dict = {"size_bytes": res["size_bytes"], "placement": placement}
            if res.get("redop") not in (None, "sum", "none"):
                params["redop"] = res["redop"]
            if res.get("root") not in (None, -1, 0):
                params["root"] = res["root"]
            case = Case.make("collectives", op, dtype, backend=TOOL, world_size=n or 0,
                             label=f"{op} {placement.replace('_', '-')}", **params)
            wrong = half.get("wrong")
            failed = bool(wrong) or bool(half.get("legacy_failed"))
            details = {"wrong": wrong}
            if half.get("max_abs_error") is not None:
                details["max_abs_error"] = half["max_abs_error"]
            ref = ("nccl-tests legacy `error` column (max abs deviation, not a count)"
                   if "max_abs_error" in half else "nccl-tests #wrong")
            check = Check(not failed, None, None, ref, details)
            extra = {k: v for k, v in half.items() if k not in ("legacy_failed",)}
            extra.update({"size_bytes": res["size_bytes"], "count": res["count"], "nranks": n,
                          "placement": placement, "redop": res["redop"], "root": res["root"],
                          "busbw_factor": busbw_factor(op, n) if n else None})
            if res.get("timestamp"):
                extra["timestamp"] = res["timestamp"]
            where = {"line": res["line"]} if res.get("line") else {"json_index": res.get("json_index")}
            rows.append(build_imported_row(
                case, run_id, samples_s=[half["time_us"] / 1e6], nbytes=res["size_bytes"],
                rates={"gbps": half["algbw_gbps"]}, check=check, extra=extra,
                source={**source, "version": version_text(parsed), **where},
                error=(f"nccl-tests reported {wrong} wrong elements" if wrong
                       else "nccl-tests' legacy error column and '# Out of bounds values: FAILED'")))
    return rows


# ---------------------------------------------------------------- nccl-tests' flags

# The flags `gwbench run --nccl-tests '...'` takes verbatim, with nccl-tests' long names and
# defaults (src/common.cu, HEAD 2.19.6): -b/-e 32M, -i 1M (used while -f is 1), -f 1, -n 20,
# -w 1, -c 1.
FLAGS = {"-b": "minbytes", "-e": "maxbytes", "-i": "stepbytes", "-f": "stepfactor",
         "-n": "iters", "-w": "warmup_iters", "-c": "check"}
LONG = {f"--{v}": k for k, v in FLAGS.items()}
NCCL_DEFAULTS = {"-b": "32M", "-e": "32M", "-i": "1M", "-f": "1", "-n": "20", "-w": "1", "-c": "1"}


def parse_flags(text: str) -> dict[str, str]:
    """`-b 8 -e 128M -f 2` (also `-b8`, `--minbytes 8`, `--minbytes=8`) -> {"-b": "8", ...}."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--nccl-tests {text!r}: {exc}") from None
    out: dict[str, str] = {}
    i = 0
    while i < len(words):
        w = words[i]
        value = None
        if w.startswith("--"):
            name, _, value = w.partition("=")
            flag = LONG.get(name)
            value = value or None
        else:
            flag, value = w[:2], (w[2:] or None)
            flag = flag if flag in FLAGS else None
        if flag is None:
            raise UsageError(f"--nccl-tests: {w!r} is not one of nccl-tests' "
                             f"{' '.join(FLAGS)} (or their long names)")
        if value is None:
            if i + 1 >= len(words):
                raise UsageError(f"--nccl-tests: {w} needs a value")
            i += 1
            value = words[i]
        out[flag] = value
        i += 1
    return out


def _count(flags: Mapping[str, str], flag: str, low: int) -> int:
    v = flags.get(flag, NCCL_DEFAULTS[flag])
    if not re.fullmatch(r"\d+", v) or int(v) < low:
        raise UsageError(f"--nccl-tests: {flag} {v!r} must be an integer >= {low}")
    return int(v)


def run_options(flags_text: str | None, *, sizes: str | None = None, iters: int | None = None,
                warmup: int | None = None, check: int | None = None) -> dict:
    """The collectives' run options {sizes, iters, warmup, check} from gwbench's flags, or from
    nccl-tests' own flags given verbatim (then gwbench's must not be given too). Sizes come back
    as `MIN:MAX:FACTOR` or `MIN:MAX:+STEP` (benchmarks/collectives.parse_sizes)."""
    if not flags_text:
        return {"sizes": sizes, "iters": iters, "warmup": warmup, "check": check}
    given = [n for n, v in (("--sizes", sizes), ("--iters", iters), ("--warmup-iters", warmup),
                            ("--check-iters", check)) if v is not None]
    if given:
        raise UsageError(f"--nccl-tests and {', '.join(given)} both set the collectives' sweep: give one")
    flags = parse_flags(flags_text)
    lo = parse_size(flags.get("-b", NCCL_DEFAULTS["-b"]), "-b size")
    hi = parse_size(flags.get("-e", NCCL_DEFAULTS["-e"]), "-e size")
    factor = _count(flags, "-f", 1)
    step = f"+{parse_size(flags.get('-i', NCCL_DEFAULTS['-i']), '-i size')}"
    return {"sizes": f"{lo}:{hi}:{factor if factor > 1 else step}", "iters": _count(flags, "-n", 1),
            "warmup": _count(flags, "-w", 0), "check": _count(flags, "-c", 0)}
