"""The `unstable` run flag: a fixed reference kernel timed at a run's start and end."""

from __future__ import annotations

import json

import pytest

from harness.cli import main
from harness.core.stats import UNSTABLE_RATIO, unstable
from harness.measure import stability
from tests.conftest import FAST


def test_unstable_judges_the_ratio_of_two_timings():
    assert unstable(1e-3, 1e-3 * UNSTABLE_RATIO * 0.99) is False
    assert unstable(1e-3 * UNSTABLE_RATIO * 1.01, 1e-3) is True  # either direction
    assert unstable(8e-3, 16e-3) is True  # the shared VM's stuck-at-8/16 ms samples
    assert unstable(None, 1e-3) is None and unstable(1e-3, 0.0) is None


def test_reference_kernel_times_on_the_cpu(cpu_dev):
    from harness.measure.timing import Budget

    t = stability.reference_time_s(cpu_dev, Budget(warmup_s=0.001, rep_s=0.005, min_reps=3))
    assert 0 < t < 1.0
    info = stability.summary(stability.describe(cpu_dev), t, 2 * t)
    assert info["unstable"] is True and info["ratio"] == pytest.approx(2.0)
    assert info["reference"].startswith("matmul 256x256x256 float32")


def _run(tmp_path, capsys, argv=()):
    code = main(["run", "--device", "cpu", "--only", "gemm", "--search", "--m-range", "64",
                 "--n-range", "64", "--k-range", "64", "--telemetry", "none", *FAST,
                 "--out", str(tmp_path), *argv])
    out = capsys.readouterr().out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    return code, out, run_dir


def test_unstable_run_is_flagged_in_run_json_summary_and_report(tmp_path, capsys, monkeypatch):
    times = iter([1e-3, 170e-3])  # 170x: what one case did between runs on the shared VM
    monkeypatch.setattr(stability, "reference_time_s", lambda dev, budget, clock=None: next(times))
    code, out, run_dir = _run(tmp_path, capsys)
    assert code == 0
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["unstable"] is True
    assert meta["stability"]["start_s"] == 1e-3 and meta["stability"]["ratio"] == pytest.approx(170)
    assert "UNSTABLE run: the reference kernel took 1 ms at the start and 170 ms at the end" in out
    # The search's answer names its statistic (mamf-finder's mean by default).
    assert "TFLOP/s mean (ranked by mean;" in out
    assert main(["report", str(run_dir)]) == 0
    assert "- stability: UNSTABLE: figures not steady" in capsys.readouterr().out


def test_steady_run_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(stability, "reference_time_s", lambda dev, budget, clock=None: 1e-3)
    code, out, run_dir = _run(tmp_path, capsys, ["--search-stat", "median"])
    meta = json.loads((run_dir / "run.json").read_text())
    assert code == 0 and meta["unstable"] is False and "UNSTABLE" not in out
    assert "TFLOP/s median (ranked by median;" in out and meta["config"]["search_stat"] == "median"
