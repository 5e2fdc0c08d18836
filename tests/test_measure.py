"""The timing algorithm, checked exactly with a fake clock (no real time involved)."""

import pytest

from harness.measure.timing import ESTIMATE_ITERS, Budget, measure, timer_overhead_s


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class Recorder:
    """A 'kernel' that takes `cost` seconds of fake time and counts its calls."""

    def __init__(self, clock, cost):
        self.clock, self.cost, self.calls = clock, cost, 0

    def __call__(self):
        self.calls += 1
        self.clock.t += self.cost


def test_counts_derived_from_budgets(cpu_dev):
    clock = FakeClock()
    fn = Recorder(clock, 0.001)
    m = measure(fn, cpu_dev, Budget(warmup_s=0.010, rep_s=0.050, min_reps=5), clock=clock)
    assert m.estimate_s == pytest.approx(0.001)
    assert m.n_warmup == 10
    assert len(m.samples_s) == 50
    assert all(s == pytest.approx(0.001) for s in m.samples_s)
    # first call + estimate + warm-up + timed
    assert fn.calls == 1 + ESTIMATE_ITERS + 10 + 50
    assert m.window_s == pytest.approx(0.050)


def test_min_and_max_reps(cpu_dev):
    clock = FakeClock()
    slow = measure(Recorder(clock, 1.0), cpu_dev, Budget(warmup_s=0, rep_s=0.1, min_reps=7), clock=clock)
    assert len(slow.samples_s) == 7 and slow.n_warmup == 1
    fast = measure(Recorder(clock, 1e-6), cpu_dev, Budget(rep_s=10, max_reps=123), clock=clock)
    assert len(fast.samples_s) == 123


def test_flush_and_setup_outside_timed_region(cpu_dev, monkeypatch):
    clock = FakeClock()
    flushes = []
    monkeypatch.setattr(cpu_dev, "flush_cache", lambda: (flushes.append(1), setattr(clock, "t", clock.t + 0.5)))
    setups = []

    def setup():
        setups.append(1)
        clock.t += 0.25

    m = measure(Recorder(clock, 0.001), cpu_dev, Budget(warmup_s=0, rep_s=0.01, min_reps=4),
                flush=True, setup=setup, clock=clock)
    # estimate includes flush + setup (the budget is wall time), samples exclude them
    assert m.estimate_s == pytest.approx(0.751)
    assert len(m.samples_s) == 4
    assert all(s == pytest.approx(0.001) for s in m.samples_s)
    assert len(flushes) == len(setups) == 1 + ESTIMATE_ITERS + 1 + 4


def test_sustained_window_length(cpu_dev):
    clock = FakeClock()
    m = measure(Recorder(clock, 0.01), cpu_dev, Budget(sustain_s=2.0, min_reps=1), clock=clock)
    assert m.sustained
    assert len(m.samples_s) == 200
    assert m.window_s == pytest.approx(2.0)


def test_window_wraps_only_timed_loop(cpu_dev):
    clock = FakeClock()
    events = []

    class Window:
        def __enter__(self):
            events.append(("enter", clock.t))
            return self

        def __exit__(self, *exc):
            events.append(("exit", clock.t))

        def summary(self):
            return {"power_w": 123.0}

    fn = Recorder(clock, 0.002)
    m = measure(fn, cpu_dev, Budget(warmup_s=0.004, rep_s=0.02, min_reps=1), clock=clock, window=Window)
    (_, t_in), (_, t_out) = events
    assert t_out - t_in == pytest.approx(0.02)
    assert m.telemetry == {"power_w": 123.0}


def test_budget_validation():
    with pytest.raises(ValueError):
        Budget(rep_s=0)
    with pytest.raises(ValueError):
        Budget(min_reps=5, max_reps=4)
    with pytest.raises(ValueError):
        Budget(sustain_s=-1)


def test_real_timer_overhead_is_small(cpu_dev):
    # Not a speed target (benchmarks check those): a sanity bound three orders looser.
    assert 0 <= timer_overhead_s(cpu_dev, n=200) < 5e-3
