"""Exceptions that the CLI turns into one-line messages and exit codes."""


def one_line(exc: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (or its type), cut to `limit`: rows, run.json
    and stderr hold one line per error, whatever a library put in its message."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


class UsageError(Exception):
    """Bad input from the user: the CLI prints `gwbench: error: <msg>` and exits 2."""


class SkipCase(Exception):
    """A case that cannot run here (unsupported dtype, backend, size): a `skipped` row."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: finished rows stay, run.json says `interrupted`.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way up (ours
    or a library's) can turn the interruption into a failed row.
    """
