import numpy as np
import pytest
from hypothesis import given, strategies as st

from harness.core.stats import STAT_FIELDS, median_ci, percentile, summarize


def test_summarize_known_values():
    s = summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    assert s["time_s"] == 3.0
    assert s["time_mean_s"] == 3.0
    assert s["time_min_s"] == 1.0 and s["time_max_s"] == 5.0
    assert s["time_iqr_s"] == pytest.approx(2.0)  # p75 4 - p25 2
    assert s["time_p10_s"] == pytest.approx(1.4)
    assert s["time_cv"] == pytest.approx(np.std([1, 2, 3, 4, 5], ddof=1) / 3)
    assert s["n_samples"] == 5
    assert s["noisy"] is True  # IQR/median = 0.67
    assert set(s) == set(STAT_FIELDS)


def test_noise_flag_threshold():
    steady = [1.0] * 50 + [1.05] * 50
    assert summarize(steady)["noisy"] is False
    spread = [1.0] * 25 + [1.15] * 75
    assert summarize(spread + [1.0] * 10)["noisy"] is True


@given(st.lists(st.floats(1e-9, 1e3), min_size=1, max_size=200), st.floats(0, 100))
def test_percentile_matches_numpy(xs, q):
    assert percentile(sorted(xs), q) == pytest.approx(np.percentile(xs, q), rel=1e-9, abs=1e-12)


def test_single_sample_and_errors():
    s = summarize([0.5])
    assert s["time_s"] == 0.5 and s["time_cv"] == 0.0 and s["noisy"] is False
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_ci_brackets_median():
    xs = list(range(1, 101))
    lo, hi = median_ci(xs, 0.99)
    assert lo < 50.5 < hi
    assert (lo, hi) == (38, 63)
    with pytest.raises(ValueError):
        median_ci(xs, 0.5)
