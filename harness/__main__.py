import signal
import sys


def _early(signum, frame):
    """A signal before harness.cli has loaded (it takes over then): exit 130, no traceback."""
    sys.stderr.write("gwbench: interrupted\n")
    raise SystemExit(130)


signal.signal(signal.SIGINT, _early)
signal.signal(signal.SIGTERM, _early)

from harness.cli import main  # noqa: E402 - after the handlers, on purpose

raise SystemExit(main())
