"""Rows as a typed pandas DataFrame: the Python API (`harness.load_run`, `harness.load_runs`).

One row per (case, run), `params` flattened to `p_<name>` columns, raw samples kept as a list
column. Columns are typed as the row's fields are declared (core/row.py FIELDS): counts as
nullable integers (Int64), flags as nullable booleans, figures as floats, so a skipped row's
missing values do not turn a count column into floats or a flag column into objects.
"""

from __future__ import annotations

from pathlib import Path

from harness.core.row import FIELDS
from harness.core.store import RUN_FILE, load_run as _load_run

_SKIP = ("params", "samples_s", "extra", "check", "per_gpu", "telemetry_errors", "throttle")


def to_frame(rows: list[dict]):
    import pandas as pd

    flat = []
    for r in rows:
        d = {k: v for k, v in r.items() if k not in _SKIP}
        for k, v in (r.get("params") or {}).items():
            d[f"p_{k}"] = v
        d["samples_s"] = r.get("samples_s")
        flat.append(d)
    frame = pd.DataFrame(flat)
    for col in frame.columns:
        types = FIELDS.get(col, ((),))[0]
        if bool in types and int not in types and float not in types:
            frame[col] = frame[col].astype("boolean")
        elif int in types and float not in types and bool not in types:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    return frame


def load_run(path: str | Path):
    """One run folder's rows as a DataFrame (run metadata in `frame.attrs["run"]`)."""
    meta, rows = _load_run(Path(path))
    frame = to_frame(rows)
    frame.attrs["run"] = meta
    return frame


def load_runs(folder: str | Path):
    """Every run folder directly under `folder`, one DataFrame (column run_id tells them apart);
    folders that are not gwbench runs are skipped."""
    import pandas as pd

    frames = [load_run(d) for d in sorted(Path(folder).iterdir()) if (d / RUN_FILE).is_file()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
