"""`gwbench import nccl-tests LOGFILE`: an nccl-tests log becomes a gwbench run folder."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from harness.commands.common import bounded, folder

NAME = "import"
HELP = "turn an nccl-tests (all_reduce_perf, ...) log into a run folder of rows"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=("nccl-tests",), help="the log's tool (nccl-tests)")
    p.add_argument("logfile", type=Path, metavar="LOGFILE")
    p.add_argument("--out", type=folder, default=Path("results"), help="results folder (default results/)")
    p.add_argument("--collective", help="all_reduce, all_gather, reduce_scatter, alltoall, broadcast, "
                   "reduce or sendrecv (default: from the file name, e.g. all_reduce_perf.log)")
    p.add_argument("--nranks", type=bounded(int, 1, 1_000_000),
                   help="number of ranks, 1..1000000, when the log has no `# Rank` lines")


def main(args: argparse.Namespace) -> int:
    from harness.analysis import nccl_tests
    from harness.core.flops import BUSBW_FACTORS
    from harness.core.errors import UsageError
    from harness.core.store import RunStore, git_info, make_run_id, now_iso

    digest = hashlib.sha256()
    try:
        f = open(args.logfile, "rb")  # streamed: a log of any size is read a line at a time
    except OSError as exc:
        raise UsageError(f"cannot read {args.logfile}: {exc.strerror or exc}") from None
    with f:
        coll = args.collective or nccl_tests.collective_from_name(str(args.logfile))
        if coll is None:
            raise UsageError(f"{args.logfile}: cannot tell the collective from the file name; "
                             f"pass --collective ({', '.join(BUSBW_FACTORS)})")
        try:
            parsed = nccl_tests.parse_log(_lines(f, digest), coll, where=str(args.logfile))
        except OSError as exc:
            raise UsageError(f"cannot read {args.logfile}: {exc.strerror or exc}") from None
    if args.nranks is not None:
        if args.nranks < 1:
            raise UsageError(f"--nranks {args.nranks}: must be >= 1")
        parsed["nranks"] = args.nranks
    if not parsed["nranks"]:
        raise UsageError(f"{args.logfile}: the log names no ranks (`# Rank` lines); pass --nranks")
    host = parsed["hosts"][0] if parsed["hosts"] else "unknown"
    meta = {"argv": args.argv, "imported_from": {"tool": "nccl-tests", "file": str(args.logfile),
                                                   "sha256": digest.hexdigest(),
                                                   "header": parsed["header"]},
            "git": git_info(), "started_at": now_iso(), "finished_at": now_iso(),
            "device": {"backend": "nccl-tests", "host": host, "name": None, "count": parsed["nranks"]},
            "distributed": {"world_size": parsed["nranks"], "nodes": len(parsed["hosts"]) or None,
                            "hosts": parsed["hosts"]},
            "n_cases": 2 * len(parsed["results"])}
    with RunStore.create(args.out, make_run_id(host, "nccltests"), meta) as store:  # locked while written
        rows = nccl_tests.rows_from_log(parsed, store.meta["run_id"], str(args.logfile))
        for row in rows:
            store.append(row)
        counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "skipped")}
        store.write_meta(status="complete", counts=counts)
    print(f"imported {len(rows)} rows ({coll}, {parsed['nranks']} ranks) into {store.dir}")
    return 1 if counts["failed"] else 0


def _lines(f, digest):
    """The file's lines as text (undecodable bytes replaced), hashing them as they pass."""
    for raw in f:
        digest.update(raw)
        yield raw.decode("utf-8", errors="replace")
