"""Benchmark (make bench): the 1 GW / 10 GW Monte Carlo at its default 100,000 samples.

Target: under 1 s on 2 cores for both sites. Checked here with pytest-benchmark, not by a
timed assertion in the test suite (the build machine is shared and noisy)."""

from harness.analysis import projection
from harness.core import specs


def test_monte_carlo_1e5_samples_both_sites(benchmark):
    basis = projection.from_spec("gb300", specs.load())
    a = projection.Assumptions(samples=100_000)
    result = benchmark(projection.project, basis, a, sites_w=[1e9, 1e10])
    assert [s["name"] for s in result["sites"]] == ["1 GW", "10 GW"]
    assert result["sites"][1]["outputs"]["accelerators"]["p50"] > result["sites"][0]["outputs"]["accelerators"]["p50"]
