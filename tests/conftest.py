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


def built_row(family: str, op: str, dtype: str, params: dict, *, status: str = "ok",
              time_s: float = 1e-3, flop: float | None = None, nbytes: float | None = None,
              power_w: float | None = None, window_s: float = 2.0, samples: int = 40,
              sustained: bool = False, extra: dict | None = None, backend: str = "torch",
              world_size: int = 1, error: str | None = None, run_id: str = "run",
              samples_s: list[float] | None = None, label: str = "") -> dict:
    """A row from the real row builder (harness/core/row.py) for a case measured `samples` times
    at `time_s` each, in a window of `window_s` seconds with `power_w` read from NVML's energy
    counter (None: no power). A `failed`/`skipped` status without an outcome, as the runner
    records a case that raised."""
    from harness.core.cases import Case
    from harness.core.result import Measurement, Outcome, check_within
    from harness.core.row import build_row

    case = Case.make(family, op, dtype, backend=backend, world_size=world_size, label=label, **params)
    if status != "ok":
        return build_row(case, run_id, status, None, error=error or f"{status} in a test",
                         started_at=None, wall_s=None)
    tel = {"window_s": window_s, "power_source": "unavailable: no NVML in this test",
           "power_w": None, "energy_j": None}
    if power_w is not None:
        tel.update(power_w=power_w, energy_j=power_w * window_s, power_source="nvml:energy_counter")
    m = Measurement(list(samples_s or [time_s] * samples), n_warmup=1, estimate_s=time_s, window_s=window_s,
                    telemetry=tel, sustained=sustained)
    outcome = Outcome(m, flop=flop, nbytes=nbytes, check=check_within(0.0, 1e-3, "test reference"),
                      extra=dict(extra or {}))
    return build_row(case, run_id, "ok", outcome, error=None, started_at=None, wall_s=None)


def gemm_row(tflops: float | None, dtype: str = "bf16", n: int = 8192, noisy: bool = False,
             **kw) -> dict:
    """A square GEMM row at `tflops` (its median); None: a row that measured nothing usable
    (skipped). `noisy`: samples spread +-20% around the median (IQR 20% of it: flagged)."""
    flop = 2 * n**3
    if tflops is None:
        return built_row("gemm", "matmul", dtype, {"m": n, "n": n, "k": n, "data": "randn"},
                         status="skipped", **kw)
    t = flop / (tflops * 1e12)
    if noisy:
        kw["samples_s"] = [t * f for f in (0.8, 0.9, 1.0, 1.1, 1.2)] * 8
    return built_row("gemm", "matmul", dtype, {"m": n, "n": n, "k": n, "data": "randn"},
                     time_s=t, flop=flop, **kw)


def write_run_folder(run_dir: Path, rows: list[dict], device: dict, **meta) -> Path:
    """A run folder through the real store (RunStore): run.json and the rows appended."""
    from harness.core.store import RunStore

    store = RunStore.create(run_dir.parent, run_dir.name, {"device": device, **meta})
    for r in rows:
        store.append(r | {"run_id": store.meta["run_id"]})
    store.write_meta(status="complete")
    store.close()
    return store.dir


def project_cli(argv: list[str]) -> int:
    """`gwbench project ARGV` in-process, as harness/cli.py runs a command module: a UsageError
    becomes its one line on stderr and exit 2."""
    import argparse

    from harness.commands import project as project_cmd
    from harness.core.errors import UsageError

    parser = argparse.ArgumentParser(prog="gwbench project")
    project_cmd.add_arguments(parser)
    try:
        return project_cmd.main(parser.parse_args(argv))
    except UsageError as exc:
        print(f"gwbench: error: {exc}", file=sys.stderr)
        return 2


def project_json(capsys, argv: list[str]) -> dict:
    """`gwbench project ARGV --format json`, parsed."""
    import json

    assert project_cli([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)
