"""The results store: OUT/<run-id>/run.json and OUT/<run-id>/rows.jsonl.

Format history (bump SCHEMA_VERSION on any change a reader must know about):
  1 (gwbench 0.1): run.json {schema_version, run_id, status, argv, config, git, started_at,
    finished_at, device, timer_overhead_s, ...}; rows.jsonl one tidy row per case with the
    case identity, status ok|failed|skipped, raw samples_s, the STAT_FIELDS statistics,
    flop/bytes/tflops/gbps, the correctness check and telemetry fields.
    Additions within 1 (issue 16; optional, so older files still read): rows gain tflops_mean,
    gbps_mean, gbps_best and, when imported, `source`; tflops_per_w / gbps_per_w are null for
    windows under 1 s (older rows may hold them: read them through core/row.per_watt); a
    collectives row's extra.count is nccl-tests' count column (per rank for all_gather /
    reduce_scatter, per peer for alltoall; older gwbench rows held the total); run.json gains
    `stability` and `unstable` (the reference kernel at the run's start and end).

Rows are appended, flushed and fsync'ed as each case ends, so a crash, an OOM kill or
Ctrl-C leaves every finished row readable; run.json is replaced atomically.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core import row as rowmod
from harness.core.errors import UsageError
from harness.core.row import ROW_STATUSES, SCHEMA_VERSION  # noqa: F401 - the store's readers use both

RUN_FILE = "run.json"
ROWS_FILE = "rows.jsonl"
RUN_STATUSES = ("running", "complete", "interrupted", "failed")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def make_run_id(host: str, backend: str, when: datetime | None = None) -> str:
    when = when or datetime.now(timezone.utc)
    safe_host = re.sub(r"[^A-Za-z0-9_.-]", "-", host)[:40] or "host"
    return f"{when:%Y%m%d-%H%M%S}-{safe_host}-{backend}"


def git_info(repo: Path | None = None) -> dict:
    """Commit and dirty flag of the checkout gwbench runs from (None outside git)."""
    repo = repo or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain",
                                 "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: store them as null rather than invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class RunStore:
    """One run folder: atomic run.json updates and an append-only rows.jsonl."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.meta: dict = {}

    @property
    def run_file(self) -> Path:
        return self.dir / RUN_FILE

    @property
    def rows_file(self) -> Path:
        return self.dir / ROWS_FILE

    @classmethod
    def create(cls, out: Path, run_id: str, meta: dict) -> "RunStore":
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            run_dir = out / run_id
            suffix = 1
            while run_dir.exists():  # two runs in one second on one host
                suffix += 1
                run_dir = out / f"{run_id}-{suffix}"
            run_dir.mkdir()
            probe = run_dir / ROWS_FILE
            probe.touch()
        except OSError as exc:
            raise UsageError(f"cannot write results under {out}: {exc.strerror or exc}") from None
        store = cls(run_dir)
        store.meta = {"schema_version": SCHEMA_VERSION, "run_id": run_dir.name,
                      "status": "running", **meta}
        store.write_meta()
        return store

    @classmethod
    def open(cls, run_dir: Path) -> "RunStore":
        store = cls(run_dir)
        store.meta = read_meta(run_dir)
        return store

    def write_meta(self, **fields: Any) -> None:
        self.meta.update(fields)
        self.write_text(RUN_FILE, json.dumps(_clean(self.meta), indent=2, sort_keys=True) + "\n")

    def write_text(self, name: str, text: str) -> Path:
        """Replace the folder's file `name` atomically: the text goes to a new temporary file
        created here (never through a name someone placed in the folder, a link included),
        then takes the name in one rename."""
        target = self.dir / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return target

    def append(self, row: dict) -> None:
        line = json.dumps(_clean(row), sort_keys=True, allow_nan=False)
        with open(self.rows_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())

    def rows(self) -> list[dict]:
        return read_rows(self.dir)

    def drop_partial_tail(self) -> bool:
        """A hard kill mid-write can leave a last line without its newline: drop it."""
        if not self.rows_file.exists():
            return False
        data = self.rows_file.read_bytes()
        if not data or data.endswith(b"\n"):
            return False
        keep = data[: data.rfind(b"\n") + 1]
        self.rows_file.write_bytes(keep)
        return True


def read_meta(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a gwbench run folder (no {RUN_FILE})")
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: unreadable run metadata ({exc})") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: run metadata is not a JSON object")
    _check_version(meta.get("schema_version"), path)
    return meta


def _check_version(version: Any, where: Path | str) -> None:
    if version != SCHEMA_VERSION:
        raise UsageError(f"{where}: schema version {version!r} is not supported by this gwbench "
                         f"(reads version {SCHEMA_VERSION}); use the gwbench that wrote it")


def read_rows(run_dir: Path) -> list[dict]:
    """All rows of a run; a corrupt line is an error that names its line number."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file():
        raise UsageError(f"{run_dir}: not a gwbench run folder (no {ROWS_FILE})")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{lineno}: corrupt row ({exc.msg})") from None
            rows.append(rowmod.validate(row, f"{path}:{lineno}"))
    return rows


def read_json_file(run_dir: Path, name: str) -> Any:
    """A JSON file the run wrote beside its rows (projection.json), or None when it is absent
    or unreadable: such files are derived and can always be computed again."""
    try:
        return json.loads((Path(run_dir) / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    return read_meta(run_dir), read_rows(run_dir)
