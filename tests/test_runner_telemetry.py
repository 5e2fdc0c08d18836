"""The run loop with a real Telemetry object over a replayed power trace: rows carry the
window's power and the derived efficiency; a CPU run with nothing readable says why."""

from dataclasses import replace

import pytest

from harness.core.cases import Case
from harness.core.row import build_row
from harness.measure.telemetry import ReplayBackend, Telemetry
from harness.runner import measure_case


def test_row_gets_power_from_window(fast_ctx):
    # A constant 250 W "device", replayed over a minute; polled by the real sampler thread.
    t = [i * 0.01 for i in range(6000)]
    tel = Telemetry(ReplayBackend({"gpu0": {"t_s": t, "power_w": [250.0] * len(t)}}), sample_hz=200)
    ctx = replace(fast_ctx, window=lambda: tel.window(sync=fast_ctx.dev.sync))
    case = Case.make("gemm", "matmul", "fp32", m=128, n=128, k=128, data="randn")
    status, outcome, error = measure_case(case, ctx)
    assert status == "ok", error
    row = build_row(case, "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    tel.close()
    assert row["power_w"] == pytest.approx(250.0, rel=1e-6)
    assert row["power_source"].startswith("replay")
    assert row["window_s"] == outcome.measurement.window_s  # ours, not the telemetry clock's
    assert row["telemetry_short_window"] is True  # a 5 ms budget is far below 1 s
    assert row["tflops_per_w"] is None  # so no per-watt figure from it


def test_cpu_run_without_sensors_says_why(fast_ctx):
    tel = Telemetry.create("auto", gpu=False, rapl_root="/nonexistent/powercap")
    ctx = replace(fast_ctx, window=lambda: tel.window(sync=fast_ctx.dev.sync))
    case = Case.make("gemm", "matmul", "bf16", m=64, n=64, k=64, data="randn")
    status, outcome, error = measure_case(case, ctx)
    row = build_row(case, "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    tel.close()
    assert status == "ok"
    assert row["power_w"] is None and row["energy_j"] is None
    assert row["power_source"].startswith("unavailable:") and "RAPL" in row["power_source"]
    assert row.get("tflops_per_w") is None


def test_run_in_process_gives_gc_back(tmp_path):
    # The runner freezes the objects imported before the cases (gc.freeze) so per-case
    # collections stay cheap; a library caller must get a normal gc back afterwards.
    import gc

    from harness import runner

    assert gc.get_freeze_count() == 0
    cfg = runner.RunConfig(only=["gemm"], dtypes=["fp32"], device="cpu", warmup_ms=1, rep_ms=5,
                           idle_s=0, telemetry="none", sustain_s=0, search=True,
                           m_range="64:128:64", n_range="64:64", k_range="64:64")
    code, store = runner.run(cfg, tmp_path, ["test"])
    assert code == runner.EXIT_OK and store.meta["status"] == "complete"
    assert store.rows() and gc.get_freeze_count() == 0
