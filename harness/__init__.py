"""gwbench: what one AI compute node really delivers, and what a gigawatt of it would.

The Python API for analysing results with pandas:

    import harness
    frame = harness.load_run("results/h200-20261129-220559-standard")   # one run's rows
    every = harness.load_runs("results")                                   # every run folder
"""

__version__ = "0.1.0"


def load_run(path):
    """One run folder's rows as a typed pandas DataFrame (see harness/core/frame.py)."""
    from harness.core.frame import load_run as _load

    return _load(path)


def load_runs(folder):
    """Every run folder under `folder` as one DataFrame, `run_id` telling them apart."""
    from harness.core.frame import load_runs as _load

    return _load(folder)
