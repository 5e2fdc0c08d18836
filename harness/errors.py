"""Exceptions that the CLI turns into one-line messages and exit codes."""


class UsageError(Exception):
    """Bad input from the user: the CLI prints `gwbench: error: <msg>` and exits 2."""


class SkipCase(Exception):
    """A case that cannot run here (unsupported dtype, backend, size): a `skipped` row."""


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived: finished rows stay, run.json says `interrupted`.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on the way up (ours
    or a library's) can turn the interruption into a failed row.
    """
