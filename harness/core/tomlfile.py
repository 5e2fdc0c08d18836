"""Reading a TOML data table: the one place its failures become one-line usage errors.

The hardware table, the cost and one-run tables, the per-generation model inputs, the
back-tests and the published figures are all TOML; a user may point gwbench at their own
(`--hardware-file`, `--cost-file`). Whatever is wrong with such a file, the user gets one
line naming it and what is wrong, never a traceback.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError


def read_toml(path: str | Path, what: str = "table") -> dict[str, Any]:
    """The parsed file; UsageError naming `what` and the path when it is missing, unreadable,
    not UTF-8, not TOML, or nested deeper than the parser can follow."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {p} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {what} {p}: {' '.join(str(exc).split())}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: not valid TOML: {' '.join(str(exc).split())}") from None
    except RecursionError:  # tomllib recurses once per level of nesting
        raise UsageError(f"{p}: not a {what} (nested too deeply)") from None
