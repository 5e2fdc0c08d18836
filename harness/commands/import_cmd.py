"""`gwbench import TOOL FILE`: another tool's output becomes a gwbench run folder of rows.

nccl-tests (its text log or `-J` JSON), mamf-finder (its log file), BabelStream (its `--csv`
output or text table) and nvbandwidth (its `-j` JSON). Each row records `source` = the tool, its
version, the file's sha256 and the line, so a run measured by someone else, on hardware we never
had, can be reported, compared and published beside ours. The parsers are analysis/<tool>.py.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from harness.commands.common import bounded, folder

NAME = "import"
HELP = "turn nccl-tests, mamf-finder, BabelStream or nvbandwidth output into a run folder of rows"
TOOLS = ("nccl-tests", "mamf-finder", "babelstream", "nvbandwidth")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=TOOLS, help="the tool that wrote the file")
    p.add_argument("logfile", type=Path, metavar="FILE",
                   help="nccl-tests log or -J JSON; mamf-finder log; BabelStream --csv output or "
                        "table; nvbandwidth -j JSON")
    p.add_argument("--out", type=folder, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--collective", help="nccl-tests: all_reduce, all_gather, reduce_scatter, alltoall, "
                   "broadcast, reduce or sendrecv (default: from the log, else the file name)")
    p.add_argument("--nranks", type=bounded(int, 1, 1_000_000),
                   help="nccl-tests: number of ranks, 1..1000000, when the log has no `# Rank` lines")


def main(args: argparse.Namespace) -> int:
    from harness.core.errors import UsageError
    from harness.core.store import RunStore, git_info, make_run_id, now_iso

    if args.kind != "nccl-tests" and (args.collective or args.nranks is not None):
        raise UsageError("--collective and --nranks are nccl-tests' options")
    digest = hashlib.sha256()
    try:
        with open(args.logfile, "rb") as f:
            # nccl-tests logs can be hundreds of MB: read a line at a time; the others are small.
            text = _lines(f, digest) if args.kind == "nccl-tests" else _whole(f, digest)
            imported = _IMPORTERS[args.kind](text, args)
    except OSError as exc:
        raise UsageError(f"cannot read {args.logfile}: {exc.strerror or exc}") from None
    source = {"tool": args.kind, "file": str(args.logfile), "sha256": digest.hexdigest()}
    meta = {"argv": args.argv,
            "imported_from": {**source, "version": imported["version"], "header": imported["header"]},
            "git": git_info(), "started_at": now_iso(), "finished_at": now_iso(),
            "device": {"backend": args.kind, "host": imported["host"] or "not recorded in the file",
                       "name": imported["device"],
                       "count": imported["count"]}}
    if imported.get("distributed"):
        meta["distributed"] = imported["distributed"]
    run_id = make_run_id(imported["host"] or "unknown", args.kind.replace("-", ""))
    with RunStore.create(args.out, run_id, meta) as store:  # locked while written
        rows = imported["rows"](store.meta["run_id"], source)
        for row in rows:
            store.append(row)
        counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
        store.write_meta(status="complete", counts=counts, n_cases=len(rows))
    print(f"imported {count_of(len(rows), 'row')} ({imported['what']}) into {store.dir}")
    return 1 if counts["failed"] else 0


def _nccl_tests(text: str, args: argparse.Namespace) -> dict:
    from harness.analysis import nccl_tests
    from harness.core.errors import UsageError
    from harness.core.flops import BUSBW_FACTORS

    where = str(args.logfile)
    tables = nccl_tests.parse_tables(text, args.collective, where=where)
    by_name = nccl_tests.collective_from_name(where)
    for t in tables:
        t["collective"] = t["collective"] or by_name
        if t["collective"] is None:
            raise UsageError(f"{where}: cannot tell the collective from the log or the file name; "
                             f"pass --collective ({', '.join(BUSBW_FACTORS)})")
        if args.nranks is not None:
            t["nranks"] = args.nranks
        if not t["nranks"]:
            raise UsageError(f"{where}: the log names no ranks (`# Rank` lines); pass --nranks")
    hosts = sorted({h for t in tables for h in t["hosts"]})
    nranks = max(t["nranks"] for t in tables)

    def rows(run_id: str, source: dict) -> list[dict]:
        return [r for t in tables for r in nccl_tests.rows_from_log(t, run_id, source)]

    colls = ", ".join(dict.fromkeys(t["collective"] for t in tables))
    return {"version": nccl_tests.version_text(tables[0]), "header": [h for t in tables for h in t["header"]],
            "host": hosts[0] if hosts else None, "device": _one_name(n for t in tables for n in t["devices"]),
            "count": nranks, "rows": rows,
            "distributed": {"world_size": nranks, "nodes": len(hosts) or None, "hosts": hosts},
            "what": f"{colls}, {count_of(nranks, 'rank')}"}


def _fact(label: str, value) -> str:
    """`torch 2.7.0`, or `torch not recorded` where the file does not say (never `torch None`)."""
    return f"{label} {value if value not in (None, '') else 'not recorded'}"


def count_of(n: int, noun: str) -> str:
    """`1 row`, `2 rows`: the count and its noun in the right number."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _one_name(names) -> str | None:
    """The device name the rank lines print (None where they print none); a mixed set of GPUs is
    named in full, so it matches no single spec entry."""
    unique = sorted(set(names))
    return " + ".join(unique) if unique else None


def _mamf_finder(text: str, args: argparse.Namespace) -> dict:
    from harness.analysis import mamf_finder

    parsed = mamf_finder.parse(text, str(args.logfile))
    return {"version": parsed["version"], "header": [_fact("command", parsed.get("command")), _fact("torch", parsed.get("torch"))],
            "host": None, "device": parsed["device"], "count": 1,
            "rows": lambda run_id, source: mamf_finder.rows(parsed, run_id, source),
            "what": count_of(len(parsed['shapes']), f"{parsed['dtype']} shape")}


def _babelstream(text: str, args: argparse.Namespace) -> dict:
    from harness.analysis import babelstream

    parsed = babelstream.parse(text, str(args.logfile))
    return {"version": parsed["version"], "header": [_fact("implementation", parsed.get("implementation")),
                                                    _fact("format", parsed.get("format"))],
            "host": None, "device": parsed["device"], "count": 1,
            "rows": lambda run_id, source: babelstream.rows(parsed, run_id, source, text),
            "what": count_of(len(parsed['kernels']), "kernel")}


def _nvbandwidth(text: str, args: argparse.Namespace) -> dict:
    from harness.analysis import nvbandwidth

    parsed = nvbandwidth.parse(text, str(args.logfile))
    devs = parsed["devices"]
    return {"version": parsed["version"], "header": [_fact("driver", parsed.get("driver")), _fact("cuda", parsed.get("cuda"))],
            "host": next((d[3] for d in devs if d[3]), None), "device": devs[0][1] if devs else None,
            "count": nvbandwidth.gpu_count(parsed),
            "rows": lambda run_id, source: nvbandwidth.rows(parsed, run_id, source),
            "what": count_of(len(parsed['testcases']), "testcase")}


_IMPORTERS = {"nccl-tests": _nccl_tests, "mamf-finder": _mamf_finder, "babelstream": _babelstream,
              "nvbandwidth": _nvbandwidth}


def _lines(f, digest):
    """The file's lines as text (undecodable bytes replaced), hashing them as they pass."""
    for raw in f:
        digest.update(raw)
        yield raw.decode("utf-8", errors="replace")


def _whole(f, digest) -> str:
    data = f.read()
    digest.update(data)
    return data.decode("utf-8", errors="replace")
