"""The largest single run: Llama 3's interruptions and effective training time back-tested, the
batch law, the latency wall and the cross-campus sync checked against their derivations, the
coarse layout grid against the performance model's full search, the binding limit moving as the
inputs say it should, and bad input."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import project_cli, project_json

from harness.analysis import onerun, projection
from harness.analysis.perfmodel import goodput as gpmod
from harness.analysis.perfmodel import predict
from harness.analysis.perfmodel import profile as prof_mod
from harness.analysis.perfmodel import step as stepmod
from harness.core import specs
from harness.core.sourced import Range

REF = onerun.reference()






@pytest.fixture(scope="module")
def inputs():
    return onerun.load_inputs()


# ---------------------------------------------------------------- interruptions


def test_rate_is_llama3_table5(inputs):
    """419 unexpected interruptions / (16,384 GPUs x 54 days x 24 h) = 1.973e-5 per GPU-hour."""
    gpu_hours = REF["llama3_gpus"] * REF["llama3_days"] * 24
    assert inputs.interruption_rate_per_gpu_hour.mode * gpu_hours == pytest.approx(REF["llama3_unexpected"], rel=0.001)


def test_kokolis_projection_from_the_rate_range(inputs):
    """Kokolis et al.: MTTF = 1 / (nodes x r_f); RSC-1 (the high rate) projects 1.8 h at 16,384
    GPUs and 0.23 h at 131,072."""
    r = inputs.interruption_rate_per_gpu_hour.high
    assert 1 / (16_384 * r) == pytest.approx(1.80, abs=0.01)
    assert 1 / (131_072 * r) == pytest.approx(0.225, abs=0.002)


def test_llama3_interruptions_over_54_days_from_the_cli(capsys):
    """The figure to reach: the count over Llama 3's 54-day window, from the job's MTBI at 16,384
    GPUs, within +-25% of the 419 unexpected interruptions (466 with the planned ones)."""
    # Llama 3 405B itself (--model 405b): the job a compute-optimal model of the same compute
    # would pick need not span all 16,384 GPUs.
    out = project_json(capsys, ["--hardware", "h100", "--accelerators", "16384", "--days", "54",
                                "--samples", "4000", "--model", "405b"])["sites"][0]["outputs"]
    hours = REF["llama3_days"] * 24
    assert out["one_run_gpus"]["point"] == 16384
    assert hours / out["one_run_mtbi_h"]["point"] == pytest.approx(REF["llama3_unexpected"], rel=0.25)
    assert hours / out["one_run_mtbi_h"]["p50"] == pytest.approx(REF["llama3_unexpected"], rel=0.25)
    counts = hours / out["one_run_mtbi_h"]["p95"], hours / out["one_run_mtbi_h"]["p5"]
    assert counts[0] < REF["llama3_unexpected"] < REF["llama3_all"] < counts[1]


def test_llama3_effective_training_time_inside_the_goodput_range(capsys):
    """Llama 3: 'higher than 90% effective training time' on 16,384 GPUs. gwbench's goodput at that
    size: p50 above 90%, and the p5-p95 range reaching down to within a few points of 90%."""
    out = project_json(capsys, ["--hardware", "h100", "--accelerators", "16384", "--days", "54",
                                "--samples", "4000"])["sites"][0]["outputs"]["one_run_goodput"]
    assert out["p50"] > REF["llama3_effective"]
    assert out["p5"] < REF["llama3_effective"] + 0.05 and out["p95"] < 1.0


@pytest.mark.parametrize("gpus", [16_384, 100_000, 455_000])
def test_vectorised_goodput_is_the_performance_models(gpus, inputs):
    """onerun's array form of Young/Daly equals perfmodel/goodput.goodput at the same inputs."""
    rate_h, restart, storage = 2e-5, 120.0, 0.122e9
    ckpt = 14 * 4e12
    delta = ckpt / (storage * gpus)
    want = gpmod.goodput(gpus, delta, restart, rate_h).goodput  # checkpoint_s, restart_s, rate
    got = onerun.goodput_of(np.array([gpus]), rate_h / 3600, restart, ckpt, storage)[0]
    assert got == pytest.approx(want, abs=1e-12)


# ---------------------------------------------------------------- batch, latency, network


def test_deepseek_batch_law(inputs):
    """B_opt = 0.2920 C^0.3271: 68.0M tokens at 3.8e25, 421M at 1e28, 894M at 1e29."""
    for compute, tokens in ((3.8e25, 68.0e6), (1e28, 421e6), (1e29, 894e6)):
        assert onerun.batch_range(compute, inputs).mode == pytest.approx(tokens, rel=0.005)
    r = onerun.batch_range(3e27, inputs)
    assert r.low == 16_777_216 and r.high == pytest.approx(2.05 * r.mode, rel=0.02)


def test_latency_wall_reconstruction():
    """gwbench's wall (not the paper's): fixed 16M-token batch, 100 us per layer per pass
    (200 us forward + backward), 90 days -> 2.9e29; DeepSeek's law at 1 ms per pass -> 1.3e32."""
    assert onerun.latency_wall_flop(90, 200e-6, 16e6, 0.0) == pytest.approx(2.9e29, rel=0.05)
    assert onerun.latency_wall_flop(90, 2e-3, 0.2920, 0.3271) == pytest.approx(1.3e32, rel=0.05)
    # the published headline figures sit between the two batch assumptions at plausible t_L
    assert onerun.latency_wall_flop(90, 2e-3, 16e6, 0.0) < REF["erdil_onset_blog_flop"] < REF["erdil_wall_flop"]


def test_cross_campus_sync():
    """Ring all-reduce between k campuses: 2(k-1)/k of the bytes; bf16 gradients of 5T parameters
    over 4 Pbps -> 0.02 s for two campuses, approaching 2 x 2N / link = 0.04 s for many."""
    assert onerun.cross_site_s(5e12, 1, 4e15, 0.0, 2) == 0.0
    assert onerun.cross_site_s(5e12, 2, 4e15, 0.0, 2) == pytest.approx(0.02)
    assert onerun.cross_site_s(5e12, 1000, 4e15, 0.0, 2) == pytest.approx(0.04, rel=0.01)
    assert onerun.cross_site_s(5e12, 3, 4e15, 0.005, 2) == pytest.approx(0.04 * 2 / 3 + 0.01)


def test_dense_model_shape():
    """405B in Llama 3's proportions: 128 layers (Llama 3 405B: 126), d_model 16,384."""
    m = onerun.dense_model(405e9)
    assert (m.layers, m.d_model) == (128, 16384)
    assert m.params() == pytest.approx(405e9, rel=0.1)
    assert {s.layers for s in onerun.model_shapes(405e9)} == {96, 128, 160}


def test_coarse_layout_grid_against_the_full_search():
    """The one-run grid (TP 8, micro-batch 1) finds a layout within 3% of predict.search's best
    MFU for Llama 3 405B on 16,384 H100 with a 16M-token batch (2,048 sequences: 1/8 per GPU)."""
    model = stepmod.preset("405b")
    prof = prof_mod.from_spec("h100", specs.load())
    full, _, _ = predict.search(model, stepmod.Layout(16384, seq=8192, batch_tokens=16 * 2**20), prof)
    curve = {p.spg: p for p in onerun.layout_curve(model, prof, 8192)}
    assert curve[1 / 8].result.mfu == pytest.approx(full.mfu, rel=0.03)
    mfus = [p.result.mfu for p in sorted(curve.values(), key=lambda p: p.spg)]
    assert mfus[-1] > mfus[0]  # more sequences per GPU: a smaller pipeline bubble


# ---------------------------------------------------------------- the binding limit


def _site(basis, ext, facility_w):
    a = projection.Assumptions(samples=2000)
    return projection.project(basis, a, sites_w=[facility_w], extensions=[ext])["sites"][0]


@pytest.fixture(scope="module")
def gb200():
    table = specs.load()
    basis = projection.from_spec("gb200", table)
    prof, note = onerun.profile_for(basis, table)
    return basis, prof, note


def test_defaults_gigawatt_runs_are_interruption_bound(gb200, inputs):
    """At the defaults (restart 2 min, Llama 3's failure rate) one synchronous job peaks well below
    a 1 GW site's GPUs, so 10 GW trains no bigger single run than 1 GW."""
    basis, prof, note = gb200
    one = _site(basis, onerun.OneRunExtension(inputs, prof, note), 1e9)
    ten = _site(basis, onerun.OneRunExtension(inputs, prof, note), 1e10)
    assert one["one_run"]["binding"] == ten["one_run"]["binding"] == "interruptions"
    assert ten["outputs"]["one_run_flop"]["p50"] == pytest.approx(one["outputs"]["one_run_flop"]["p50"], rel=0.1)
    assert ten["outputs"]["one_run_idle_gpus"]["p50"] > 0.8 * ten["outputs"]["accelerators"]["p50"]
    assert one["outputs"]["one_run_flop"]["p50"] < one["outputs"]["run_flop"]["p50"]


def test_fast_recovery_makes_power_or_batch_bind(gb200, inputs):
    basis, prof, note = gb200
    fast = replace(inputs, restart_s=Range.fixed(1.0, "test"), storage_gbps_per_gpu=Range.fixed(10.0, "test"))
    site = _site(basis, onerun.OneRunExtension(fast, prof, note), 1e9)
    assert site["one_run"]["binding"] in ("power", "batch")
    assert site["outputs"]["one_run_goodput"]["p50"] > 0.9
    small_batch = replace(fast, max_batch_tokens=Range.fixed(16 * 2**20, "test"))
    site = _site(basis, onerun.OneRunExtension(small_batch, prof, note), 1e10)
    assert site["one_run"]["binding"] == "batch"
    assert site["outputs"]["one_run_batch_tokens"]["p50"] <= 16 * 2**20


def test_slow_links_make_the_network_bind(gb200, inputs):
    """A job spanning campuses over thin links: the cross-campus sync is the limit."""
    basis, prof, note = gb200
    thin = replace(inputs, restart_s=Range.fixed(1.0, "test"), storage_gbps_per_gpu=Range.fixed(10.0, "test"),
                   site_links_pbps=Range.fixed(0.002, "test"), campus_max_w=2e8, model="405b")
    site = _site(basis, onerun.OneRunExtension(thin, prof, note), 1e9)
    assert site["one_run"]["binding"] == "network"
    assert site["one_run"]["gain_if_lifted"]["network"]["point"] > 1.5


def test_a_slow_layer_makes_latency_bind(gb200, inputs):
    basis, prof, note = gb200
    slow = replace(inputs, restart_s=Range.fixed(1.0, "test"), storage_gbps_per_gpu=Range.fixed(10.0, "test"),
                   layer_latency_s=Range.fixed(0.5, "test"), model="405b")
    site = _site(basis, onerun.OneRunExtension(slow, prof, note), 1e9)
    assert site["one_run"]["binding"] == "latency"


def test_one_run_outputs_in_the_json(capsys):
    out = project_json(capsys, ["--hardware", "gb300", "--power", "10GW", "--samples", "2000"])
    site = out["sites"][0]
    for key in ("one_run_flop", "one_run_gpus", "one_run_batch_tokens", "one_run_mfu", "one_run_goodput",
                "one_run_mtbi_h", "one_run_cost_usd", "one_run_usd_per_eflop", "capex_usd", "tco_usd_per_year",
                "usd_per_gpu_hour", "run_cost_usd", "usd_per_eflop"):
        o = site["outputs"][key]
        assert o["p5"] <= o["p50"] <= o["p95"] and math.isfinite(o["point"]), key
    assert site["one_run"]["binding"] in onerun.LIMITS
    assert sum(site["one_run"]["binding_share"].values()) == pytest.approx(1.0)
    assert out["one_run"]["inputs"]["days"] == 90 and out["assumptions"]["days"] == 365


def test_text_names_the_binding_limit(capsys):
    assert project_cli(["--hardware", "h100", "--power", "1GW", "--samples", "2000"]) == 0
    text = capsys.readouterr().out
    assert "Largest single synchronous run in 90 days" in text and "binding limit" in text
    assert "training FLOP of the largest single run" in text and "Cost" in text


@pytest.mark.parametrize("argv, match", [
    (["--max-batch-tokens", "4096"], "below one sequence of 8192 tokens"),
    (["--max-batch-tokens", "1e6", "--seq", "2000000"], "below one sequence"),
    (["--days", "0"], "--days must be positive"),
    (["--restart-s", "-1"], "--restart-s must be >= 0"),
    (["--interruption-rate", "nan"], "--interruption-rate: expected finite"),
    (["--site-links", "0"], "--site-links must be > 0"),
    (["--job-share", "1.5"], r"--job-share must be in \(0, 1\]"),
    (["--campus-power=-1GW"], "power must be positive"),
])
def test_bad_one_run_input_exits_2_with_one_line(capsys, argv, match):
    assert project_cli(["--hardware", "h100", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gwbench: error: ") and err.count("\n") == 1
    assert __import__("re").search(match, err), err
