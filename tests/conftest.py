import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cuda_count() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


def pytest_collection_modifyitems(config, items):
    n = _cuda_count()
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    skip_multi = pytest.mark.skip(reason="needs two or more CUDA GPUs")
    for item in items:
        if "gpu" in item.keywords and n < 1:
            item.add_marker(skip_gpu)
        if "multigpu" in item.keywords and n < 2:
            item.add_marker(skip_multi)


@pytest.fixture
def cpu_dev():
    from harness.measure.device import Device

    return Device("cpu")


@pytest.fixture
def fast_ctx(cpu_dev):
    """A CPU context with tiny budgets: tests check behaviour, not speed."""
    from harness.measure.context import Context
    from harness.measure.timing import Budget

    return Context(dev=cpu_dev, suite="quick", budget=Budget(warmup_s=0.001, rep_s=0.005, min_reps=3))


def gwbench(*args, timeout=300, **kw):
    """Run the real CLI in a subprocess (as a user would) from the checkout."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=kw.pop("cwd", ROOT), **kw)


FAST = ["--warmup-ms", "1", "--rep-ms", "5", "--idle", "0", "--no-projection"]
