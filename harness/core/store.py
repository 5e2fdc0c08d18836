"""The results store: OUT/<run-id>/run.json and OUT/<run-id>/rows.jsonl.

Format history (bump SCHEMA_VERSION on any change a reader must know about):
  1 (gwbench 0.1): run.json {schema_version, run_id, status, argv, config, git, started_at,
    finished_at, device, timer_overhead_s, ...}; rows.jsonl one tidy row per case with the
    case identity, status ok|failed|skipped, raw samples_s, the STAT_FIELDS statistics,
    flop/bytes/tflops/gbps, the correctness check and telemetry fields.
    Additions within 1 (2026-12; optional, so older files still read): rows gain tflops_mean,
    gbps_mean, gbps_best and, when imported, `source`; tflops_per_w / gbps_per_w are null for
    windows under 1 s (older rows may hold them: read them through core/row.per_watt); a
    collectives row's extra.count is nccl-tests' count column (per rank for all_gather /
    reduce_scatter, per peer for alltoall; older gwbench rows held the total); run.json gains
    `stability` and `unstable` (the reference kernel at the run's start and end).

Rows are appended, flushed and fsync'ed as each case ends, so a crash, an OOM kill or
Ctrl-C leaves every finished row readable; run.json is replaced atomically.

Faults and hostile folders: one writer at a time holds `.gwbench.lock` (RunLock);
a folder is made whole under a hidden name and renamed into place; no write follows a link or
a second hard link placed in the folder (write_atomic, _open_regular); a row the disk refuses
is undone and raised as StorageError. Readers go through _load_json and core/row.validate:
UTF-8, nesting, integer size and field types checked, NaN/infinity read as null, control
characters written out; every whole row is read and a cut last line is reported, not fatal.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core import row as rowmod
from harness.core.errors import UsageError, clip, storage_error
from harness.core.row import ROW_STATUSES, SCHEMA_VERSION  # noqa: F401 - the store's readers use both

RUN_FILE = "run.json"
ROWS_FILE = "rows.jsonl"
RUN_STATUSES = ("running", "complete", "interrupted", "failed")
LOCK_FILE = ".gwbench.lock"  # the writer's lock (RunLock); absent when no one writes


def _read_umask() -> int:
    """The process umask, read without changing it (Linux: /proc/self/status)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


_UMASK = _read_umask()
_FILE_MODE = 0o666 & ~_UMASK


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
    """One run folder: atomic run.json updates and an append-only rows.jsonl.

    A store made by `create`, or opened with `write=True`, holds the folder's lock (RunLock)
    until `close()` (or the process's death): one writer per run folder."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.meta: dict = {}
        self.lock: RunLock | None = None

    @property
    def run_file(self) -> Path:
        return self.dir / RUN_FILE

    @property
    def rows_file(self) -> Path:
        return self.dir / ROWS_FILE

    @classmethod
    def create(cls, out: Path, run_id: str, meta: dict) -> "RunStore":
        """A new run folder OUT/<run_id> (or <run_id>-2 ...), locked, with run.json and an empty
        rows.jsonl. It is built under a hidden temporary name and renamed into place, so a run
        folder never exists without its run.json (a full disk or a kill mid-way leaves none)."""
        out = Path(out)
        try:
            out.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{run_id}.", suffix=".tmp", dir=out))
        except OSError as exc:
            raise _fault(out, exc, "cannot write results under it") from None
        store = cls(tmp)
        try:
            os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes it private; a run folder is not
            store.lock = RunLock.acquire(tmp)
            _create_empty(store.rows_file)
            for suffix in range(1, 1000):  # two runs in one second on one host
                name = run_id if suffix == 1 else f"{run_id}-{suffix}"
                if (out / name).exists() or (out / name).is_symlink():
                    continue
                store.meta = {"schema_version": SCHEMA_VERSION, "run_id": name, "status": "running", **meta}
                store.write_meta()
                try:
                    os.rename(tmp, out / name)
                except FileExistsError:
                    continue
                except OSError as exc:
                    if exc.errno == errno.ENOTEMPTY:  # taken since the check above
                        continue
                    raise _fault(out / name, exc, "cannot create the run folder") from None
                store.dir = store.lock.dir = out / name
                return store
            raise UsageError(f"{out}: no free name for run {run_id!r}")
        except BaseException:
            store.close()
            shutil.rmtree(tmp, ignore_errors=True)  # only the temporary folder made above
            raise

    @classmethod
    def open(cls, run_dir: Path, write: bool = False) -> "RunStore":
        """An existing run folder; `write=True` takes its lock first (UsageError naming the
        process that holds it)."""
        store = cls(run_dir)
        if write:
            read_meta(run_dir)  # a folder that is not a run folder is said so before any write
            store.lock = RunLock.acquire(store.dir)
        try:
            store.meta = read_meta(run_dir)
        except BaseException:
            store.close()
            raise
        return store

    def close(self) -> None:
        """Release the folder's lock (the kernel releases it anyway when the process dies)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write_meta(self, **fields: Any) -> None:
        self.meta.update(fields)
        self.write_text(RUN_FILE, json.dumps(_clean(self.meta), indent=2, sort_keys=True) + "\n")

    def write_text(self, name: str, text: str) -> Path:
        """Replace the folder's file `name` atomically (write_atomic: never through a link)."""
        target = self.dir / name
        try:
            return write_atomic(target, text)
        except OSError as exc:
            raise _fault(target, exc) from None

    def append(self, row: dict) -> None:
        """Append one row as one line and fsync it. The file is opened without following a link
        and without creating it: rows.jsonl deleted under a running run is an error, not a new
        empty file. A write the disk refuses is undone (the file cut back to its last whole
        line) and raised as StorageError."""
        data = (json.dumps(_clean(row), sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
        path = self.rows_file
        try:
            fd = _open_regular(path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError as exc:
            raise _fault(path, exc, "cannot append a row (deleted while the run was going?)") from None
        except OSError as exc:
            raise _fault(path, exc, "cannot append a row") from None
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise _fault(path, exc, "cannot append a row") from None
        finally:
            os.close(fd)

    def rows(self) -> list[dict]:
        return read_rows(self.dir)

    def repair_tail(self) -> str | None:
        """A kill between a row and its newline leaves a last line without one. Kept (its
        newline added) when it is a whole valid row, dropped when it is not; None when the file
        ends cleanly. Only the folder's writer (holding the lock) calls this."""
        path = self.rows_file
        try:
            fd = _open_regular(path, os.O_RDWR)
        except OSError as exc:
            raise _fault(path, exc, "cannot read") from None
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return None
            start = max(0, size - _TAIL_CHUNK)
            while True:  # find the last newline, reading backwards in chunks
                tail = os.pread(fd, size - start, start)
                cut = tail.rfind(b"\n")
                if cut >= 0 or start == 0:
                    break
                start = max(0, start - _TAIL_CHUNK)
            if cut == len(tail) - 1:
                return None
            last = tail[cut + 1:]
            lineno = _count_lines(fd, start + cut + 1) + 1
            try:
                _parse_row(last, f"{path}:{lineno}")
                os.pwrite(fd, b"\n", size)
                os.fsync(fd)
                return "kept"
            except UsageError:
                os.ftruncate(fd, start + cut + 1)
                os.fsync(fd)
                return f"dropped line {lineno}: an incomplete row of {len(last)} bytes"
        except OSError as exc:
            raise _fault(path, exc) from None
        finally:
            os.close(fd)


_TAIL_CHUNK = 1 << 16


def _count_lines(fd: int, end: int) -> int:
    n, pos = 0, 0
    while pos < end:
        chunk = os.pread(fd, min(1 << 20, end - pos), pos)
        if not chunk:
            break
        n += chunk.count(b"\n")
        pos += len(chunk)
    return n


class RunLock:
    """The one-writer lock of a run folder: `fcntl.flock` on `.gwbench.lock` inside it, holding
    the writer's pid, host and start time. The kernel drops the lock when the process dies
    (kill -9 included), so a stale lock file is taken over by the next writer: nothing to clean
    by hand. A second writer gets a UsageError naming the holder. flock works across the nodes
    of NFSv4 and of Lustre mounted with `flock`; only rank 0 of a run writes its folder anyway."""

    def __init__(self, run_dir: Path, fd: int):
        self.dir, self._fd = Path(run_dir), fd

    @classmethod
    def acquire(cls, run_dir: Path) -> "RunLock":
        path = Path(run_dir) / LOCK_FILE
        for _ in range(5):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                             _FILE_MODE & 0o644)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise UsageError(f"{path}: is a symbolic link; gwbench never writes through a "
                                     "link inside a run folder") from None
                raise _fault(path, exc, "cannot lock the run folder") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise UsageError(f"{run_dir} is being written by {holder}: one writer per run "
                                 "folder; wait for it to end (or stop it), then try again") from None
            except OSError as exc:
                if exc.errno not in _NO_FLOCK:
                    os.close(fd)
                    raise _fault(path, exc, "cannot lock the run folder") from None
                # Lustre mounted without `flock`, some FUSE file systems: run unguarded, say so.
                _warn(f"{path}: this file system has no flock ({exc.strerror}); nothing stops a "
                      "second writer of this run folder")
            # The previous holder may have removed the file between our open and our lock:
            # then we locked a file nobody else will see. Try again on the current one.
            try:
                same = os.path.samestat(os.fstat(fd), os.lstat(path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()})
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, info.encode() + b"\n", 0)
            lock = cls(run_dir, fd)
            lock._finalizer = weakref.finalize(lock, os.close, fd)
            return lock
        raise UsageError(f"{path}: the lock file keeps changing under us; is another gwbench starting?")

    def release(self) -> None:
        """Remove the lock file, then drop the lock (in this order: a writer that opened the
        old file meanwhile sees it gone and retries on a fresh one)."""
        if self._finalizer.alive:
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(self._fd), os.lstat(self.dir / LOCK_FILE)):
                    os.unlink(self.dir / LOCK_FILE)
            self._finalizer()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f"gwbench pid {int(info['pid'])} on host {clip(str(info['host']), 80)} (since {clip(str(info['since']), 40)})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another gwbench process"


def write_atomic(path: Path, text: str | bytes) -> Path:
    """Replace `path` with `text` atomically, never writing through a link: the data goes to a
    new file made here by mkstemp (O_CREAT|O_EXCL, a name nobody could plant), is fsync'ed,
    then takes the name in one rename, which replaces a link placed at `path`, never its
    target. OSError as the OS gave it."""
    path = Path(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)  # mkstemp makes it private; results are not
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _create_empty(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, _FILE_MODE)
    os.close(fd)


def _open_regular(path: Path, flags: int) -> int:
    """os.open of a regular file, never through a link (nor a FIFO that would block a reader)."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path}: is a symbolic link; gwbench does not follow links inside "
                             "a run folder") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UsageError(f"{path}: not a regular file")
    if flags & (os.O_WRONLY | os.O_RDWR) and st.st_nlink > 1:  # the same file under another name
        os.close(fd)
        raise UsageError(f"{path}: has other hard links; gwbench writes only files that are the run's own")
    os.set_blocking(fd, True)
    return fd


def _fault(path: Path, exc: OSError, doing: str = "cannot write") -> Exception:
    """An OSError as the CLI reports it: a storage fault (full, read-only, I/O error, a file
    gone) is a StorageError (exit 1); anything else (not a folder, no permission) names a
    place the user gave that cannot hold results: a UsageError (exit 2)."""
    if exc.errno in _STORAGE_ERRNOS:
        return storage_error(path, exc, doing)
    return UsageError(f"{path}: {doing}: {exc.strerror or exc}")


_NO_FLOCK = {errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG, errno.ENOENT,
                   errno.ESTALE}


# ------------------------------------------------------------------ readers


def _parse_int(text: str) -> int:
    """JSON integers up to 2^63 in size: a 5000-digit number is a corrupt file, not a
    ValueError (or a minute of conversion) deep inside a reader."""
    if len(text) > 20:
        raise ValueError(f"an integer of {len(text)} digits")
    return int(text)


# NaN and Infinity are not JSON; a file that holds them reads them as null, as gwbench stores them.
_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_constant=lambda _: None)


def _load_json(data: bytes, where: str, what: str) -> Any:
    """Parse one JSON document (a line of rows.jsonl, run.json); UsageError "`where`: `what`
    (why)". Strings come back printable (core/errors.printable): no terminal escape sequence
    from a results file reaches any output."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: {what} (not UTF-8 text: byte {exc.start + 1})") from None
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise UsageError(f"{where}: {what} (nested too deeply)") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: {what} ({exc.msg})") from None
    except ValueError as exc:  # _parse_int's refusal
        raise UsageError(f"{where}: {what} ({clip(str(exc), 80)})") from None
    if not text.isascii() or "\\u" in text:  # only then can a string hold a control character
        value = rowmod.printable_strings(value, where)
    return value


def read_meta(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / RUN_FILE
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    if not path.is_file() and not path.is_symlink():
        raise UsageError(f"{run_dir}: not a gwbench run folder (no {RUN_FILE})")
    try:
        fd = _open_regular(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_META_BYTES + 1)
    except OSError as exc:
        raise _fault(path, exc, "cannot read") from None
    if len(data) > MAX_META_BYTES:
        raise UsageError(f"{path}: larger than {MAX_META_BYTES // 2**20} MiB: not gwbench run metadata")
    meta = _load_json(data, str(path), "unreadable run metadata")
    if not isinstance(meta, dict):
        raise UsageError(f"{path}: run metadata is not a JSON object")
    _check_version(meta.get("schema_version"), path)
    rowmod.check_values(meta, str(path))
    for key, types in META_FIELDS.items():
        if key in meta and not isinstance(meta[key], types):
            raise UsageError(f"{path}: field {key!r} holds {type(meta[key]).__name__}, expected "
                             f"{' or '.join(t.__name__ for t in types).replace('NoneType', 'null')}")
    return meta


MAX_META_BYTES = 16 * 2**20
# run.json fields the readers use, with the types they expect; other fields are kept as read.
META_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "status": (str,), "argv": (list,), "config": (dict,), "git": (dict,),
    "started_at": (str, type(None)), "finished_at": (str, type(None)), "device": (dict,),
    "distributed": (dict,), "telemetry": (dict,), "idle": (dict,), "counts": (dict,),
    "n_cases": (int,), "imported_from": (dict,), "run_energy": (dict,),
    "timer_overhead_s": (int, float, type(None)),
}


def _check_version(version: Any, where: Path | str) -> None:
    if version != SCHEMA_VERSION:
        raise UsageError(f"{where}: schema version {clip(repr(version), 40)} is not supported by this "
                         f"gwbench (reads version {SCHEMA_VERSION}); use the gwbench that wrote it")


def read_rows(run_dir: Path, warn: Callable[[str], None] | None = None) -> list[dict]:
    """All rows of a run; a corrupt line is an error that names its line number.

    A last line without its newline is what a run still writing, or one killed mid-row, leaves:
    when it is a whole valid row it is read, else every row before it is read and `warn`
    (default: one `gwbench: warning:` line on stderr) says the last line is incomplete."""
    path = Path(run_dir) / ROWS_FILE
    if not path.is_file() and not path.is_symlink():
        raise UsageError(f"{run_dir}: not a gwbench run folder (no {ROWS_FILE})")
    rows = []
    try:
        fd = _open_regular(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(_parse_row(line, f"{path}:{lineno}"))
                except UsageError as exc:
                    if line.endswith(b"\n"):
                        raise
                    (warn or _warn)(f"{path}:{lineno}: the last line is incomplete (a run still "
                                    f"writing, or one stopped mid-row): {len(rows)} whole rows read; "
                                    f"`gwbench run --resume {run_dir}` repairs it ({exc})")
    except OSError as exc:
        raise _fault(path, exc, "cannot read") from None
    return rows


def _parse_row(line: bytes, where: str) -> dict:
    return rowmod.validate(_load_json(line, where, "corrupt row"), where)


def _warn(message: str) -> None:
    if message not in _WARNED:  # a command may read a folder twice (report, then its projection)
        _WARNED.add(message)
        print(f"gwbench: warning: {clip(message)}", file=sys.stderr)


_WARNED: set[str] = set()


def new_command() -> None:
    """Forget the warnings said so far: each command says each once (cli.main calls this)."""
    _WARNED.clear()


def read_json_file(run_dir: Path, name: str) -> Any:
    """A JSON file the run wrote beside its rows (projection.json), or None when it is absent
    or unreadable: such files are derived and can always be computed again."""
    path = Path(run_dir) / name
    try:
        fd = _open_regular(path, os.O_RDONLY)
        with os.fdopen(fd, "rb") as f:
            data = f.read(MAX_META_BYTES + 1)
        if len(data) > MAX_META_BYTES:
            return None
        value = _load_json(data, str(path), "unreadable")
        rowmod.check_values(value, str(path))
        return value
    except (OSError, UsageError):
        return None


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    return read_meta(run_dir), read_rows(run_dir)


def json_text(value: Any, **kw: Any) -> str:
    """JSON for output: valid whatever the value holds (NaN and infinity become null)."""
    return json.dumps(_clean(value), allow_nan=False, **kw)

