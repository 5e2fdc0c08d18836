"""Exceptions that the CLI turns into one-line messages and exit codes, and the text helpers that
keep such a line one line: printable, and short."""

import re

MESSAGE_LIMIT = 500  # characters of one error or warning line (a 50 MB log line is not echoed)

# C0 and C1 control characters (ESC starts a terminal escape sequence), DEL, the Unicode
# bidirectional overrides and isolates that reorder what a terminal or an editor shows, and lone
# surrogates (JSON's "\\ud800" decodes to one; no encoder can write it).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` with every control character written out (`\\x1b`, `\\u202e`): no escape sequence
    from a results file or an argument reaches a terminal, a Markdown file or a CSV cell."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1] if m.group() != "\n" else "\\n", text)


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One printable line of at most `limit` characters, marked where it was cut."""
    text = printable(" ".join(str(text).split("\n")))
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # at the last word boundary when there is one in the last fifth: no note ends mid-word
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 4 // 5 else cut) + "…"


def one_line(exc: BaseException, limit: int = MESSAGE_LIMIT) -> str:
    """The first line of an exception's message (or its type), cut to `limit`: rows, run.json
    and stderr hold one line per error, whatever a library put in its message."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


class UsageError(Exception):
    """Bad input from the user: the CLI prints `gwbench: error: <msg>` and exits 2."""


class StorageError(OSError):
    """The file system refused a read or write gwbench needs (disk full, read-only, I/O error,
    a file deleted under a running run): the CLI prints one line naming the path and the OS
    error and exits 1; every row written before stays, and `--resume` can finish the run.

    An OSError, so code that tolerates a failed optional write (`except OSError`) still does."""


def storage_error(path, exc: OSError, doing: str = "cannot write") -> StorageError:
    """A StorageError naming `path` and the OS's reason (`[Errno 28] No space left on device`)."""
    reason = f"{exc.strerror} (errno {exc.errno})" if exc.strerror else str(exc)
    err = StorageError(f"{path}: {doing}: {reason}")
    err.errno = exc.errno
    return err


class SkipCase(Exception):
    """A case that cannot run here (unsupported dtype, backend, size): a `skipped` row."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: finished rows stay, run.json says `interrupted`.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way up (ours
    or a library's) can turn the interruption into a failed row.
    """
