"""Training performance model: Llama 3 back-tests, formulas, bad input, measured profiles, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from harness.analysis.perfmodel import step as PM
from harness.analysis.perfmodel import goodput as G
from harness.analysis.perfmodel import profile as PP
from harness.analysis.perfmodel import predict as R
from harness.core import specs
from harness.core.errors import UsageError
from harness.core.models import Transformer
from tests.conftest import built_row, gemm_row, gwbench, write_run_folder

M405 = PM.preset("405b")


def test_param_counts_match_published():
    assert PM.preset("405b").params() == pytest.approx(405.8e9, rel=0.01)
    assert PM.preset("70b").params() == pytest.approx(70.6e9, rel=0.01)
    assert PM.preset("175b").params() == pytest.approx(175e9, rel=0.01)
    moe = PM.preset("moe")
    assert moe.params() == pytest.approx(141e9, rel=0.02) and moe.params(active=True) == pytest.approx(39e9, rel=0.02)
    assert moe.gemms(64)[0] == ("qkv", 64, (48 + 16) * 128, 6144)  # the GEMM family's API still works


def test_bubble_formula_1f1b_and_interleaved():
    p = PP.from_spec("H100")
    m = PM.preset("8b")
    base = PM.Layout(64, tp=1, pp=4, seq=4096, batch_tokens=4096 * 64, zero=1)  # dp 16, m = 4
    r1 = PM.step(m, base, p, require_fit=False)
    mb, pp = base.micro_batches, base.pp
    # bubble time / busy time = (p-1)/m for 1F1B, i.e. bubble share (p-1)/(m+p-1) of the pipeline
    busy = r1.step_s - r1.breakdown["pipeline bubble"] - r1.breakdown["DP gradient sync (exposed)"] \
        - r1.breakdown["optimizer step"]
    assert r1.breakdown["pipeline bubble"] / busy == pytest.approx((pp - 1) / mb)
    r2 = PM.step(m, replace(base, vpp=2), p, require_fit=False)
    assert r2.breakdown["pipeline bubble"] < r1.breakdown["pipeline bubble"]


def test_mfu_convention_and_hfu_with_full_recompute():
    m = PM.preset("8b")
    n = m.params() - m.vocab * m.d_model
    assert PM.model_flop_per_token(m, 2048) == 6 * n + 6 * m.layers * 2048 * m.heads * m.head_dim
    p = PP.from_spec("H100")
    lay = PM.Layout(8, tp=8, seq=4096, batch_tokens=4096 * 8)
    none = PM.step(m, lay, p, require_fit=False)
    full = PM.step(m, replace(lay, recompute="full"), p, require_fit=False)
    assert full.step_s > none.step_s and full.hfu > full.mfu and none.hfu == none.mfu
    assert full.memory_gb["activations"] < none.memory_gb["activations"]


def test_more_tp_less_memory_and_sharding():
    p = PP.from_spec("H100")
    m = PM.preset("70b")
    a = PM.memory(m, PM.Layout(64, tp=4, pp=4, seq=4096, batch_tokens=4096 * 64), p)
    b = PM.memory(m, PM.Layout(64, tp=8, pp=4, seq=4096, batch_tokens=4096 * 64), p)
    assert b["weights"] == pytest.approx(a["weights"] / 2, rel=0.05)
    z3 = PM.memory(m, PM.Layout(64, tp=4, pp=4, seq=4096, batch_tokens=4096 * 64, zero=3), p)
    assert z3["weights"] < a["weights"] and z3["optimizer"] == a["optimizer"]


@pytest.mark.parametrize("kw,msg", [
    (dict(gpus=1000, tp=8, pp=16), "does not divide 1000 GPUs"),
    (dict(gpus=16384, tp=3, pp=1), "does not divide"),
    (dict(gpus=160, tp=8, pp=20), "layers"),
    (dict(gpus=16384, tp=8, pp=16, cp=3, seq=8192), "does not divide"),
    (dict(gpus=16384, tp=8, pp=16, batch_tokens=8192 * 100), "sequences per step"),
])
def test_bad_layouts(kw, msg):
    with pytest.raises(UsageError, match=msg):
        PM.check(M405, PM.Layout(**kw))


def test_layout_that_does_not_fit():
    with pytest.raises(UsageError, match="usable"):
        PM.step(M405, PM.Layout(64, tp=8, pp=1, seq=8192, batch_tokens=8192 * 64), PP.from_spec("H100"))


def test_search_finds_fitting_layout_at_least_as_fast():
    p = PP.from_spec("H100")
    m = PM.preset("70b")
    base = PM.Layout(256, tp=8, pp=4, seq=8192, batch_tokens=4 * 2**20)
    best, tried, fit = R.search(m, base, p)
    assert best.fits and 0 < fit <= tried
    given = PM.step(m, base, p, require_fit=False)
    assert best.step_s <= given.step_s or not given.fits


def test_goodput_young_daly():
    g = G.of_model(16384, 405e9)
    assert g.mtbf_h == pytest.approx(54 * 24 / 419, rel=1e-3)  # ~3.1 h (Llama 3's unexpected ones)
    assert g.checkpoint_s == pytest.approx(14 * 405e9 / (0.122e9 * 16384), rel=1e-3)  # onerun.toml
    assert g.interval_s == pytest.approx((2 * g.checkpoint_s * g.mtbf_h * 3600) ** 0.5)
    assert 0.9 < g.goodput < 0.99  # Llama 3 reports "higher than 90%" effective training time
    assert G.of_model(1_000_000, 405e9).goodput < g.goodput
    lo, mid, hi = G.goodput_range(16384, 405e9)
    assert lo.goodput < mid.goodput < hi.goodput


def test_model_and_project_share_one_goodput(capsys):
    """`gwbench model` and `gwbench project` read the same table: at the same job size and model
    the model's goodput is the one-run answer's at the modes."""
    from harness.analysis import onerun

    inp = onerun.load_inputs()
    gpus, params = 16384, 405e9
    want = onerun.goodput_of(gpus, inp.interruption_rate_per_gpu_hour.mode / 3600, inp.restart_s.mode,
                             inp.checkpoint_bytes_per_param * params, inp.storage_gbps_per_gpu.mode * 1e9)
    assert G.of_model(gpus, params).goodput == pytest.approx(float(want), abs=1e-12)


# ---------------------------------------------------------------- measured profiles


def write_run(tmp_path, rows, name="NVIDIA H100 80GB HBM3", **device):
    return write_run_folder(tmp_path / "run", rows, {"name": name, "backend": "cuda"} | device)


def attention_row(tflops, seq=8192, head_dim=128, op="fwd"):
    heads = 4096 // head_dim
    flop = 4 * 2 * heads * seq * seq * head_dim  # batch 2, FlashAttention's fwd count
    return built_row("attention", op, "bf16", {"batch": 2, "seq": seq, "heads": heads, "kv_heads": heads,
                                               "head_dim": head_dim, "causal": False},
                     backend="sdpa-flash", time_s=flop / (tflops * 1e12), flop=flop)


def all_reduce_row(size_bytes, busbw, ranks=8):
    """A collectives row as the family writes it: busbw in `extra`, S in params.size_bytes."""
    t = size_bytes / (busbw / (2 * (ranks - 1) / ranks) * 1e9)
    return built_row("collectives", "all_reduce", "bf16", {"size_bytes": size_bytes, "placement": "in_place"},
                     backend="nccl", world_size=ranks, time_s=t, nbytes=size_bytes, samples=5,
                     extra={"size_bytes": size_bytes, "busbw_gbps": busbw})


def full_rows(eff=0.7):
    rows = [gemm_row(eff * 989 * (1 if s >= 4096 else 0.6), n=s) for s in (1024, 2048, 4096, 8192)]
    rows.append(attention_row(600.0))
    n = 1 << 26
    rows.append(built_row("memory", "triad", "fp32", {"n": n}, time_s=3 * 4 * n / 2900e9, nbytes=3 * 4 * n))
    rows += [all_reduce_row(b, g) for b, g in ((2**20, 100.0), (2**28, 350.0))]
    return rows


def test_measured_profile_lacking_rows_names_them(tmp_path):
    run = write_run(tmp_path, full_rows()[:4])
    with pytest.raises(UsageError, match="attention.*memory.*collectives.*--hardware"):
        PP.from_run(run)
    p = PP.from_run(run, fill="H100")
    assert p.source == "measured+spec" and len(p.lacking) == 3 and p.measured


def test_measured_profile_rates_drive_the_model(tmp_path):
    p_slow = PP.from_run(write_run(tmp_path, full_rows(0.5)))
    assert p_slow.source == "measured" and not p_slow.lacking
    assert p_slow.gemm_time(8192, 8192, 8192) == pytest.approx(2 * 8192**3 / (0.5 * 989e12))
    # a shape not measured is interpolated between measured efficiencies
    mid = 2 * 6000**3 / p_slow.gemm_time(6000, 6000, 6000) / 989e12
    assert 0.3 <= mid <= 0.5
    p_spec = PP.from_spec("H100")
    lay = PM.Layout(8192, tp=8, pp=16, vpp=2, seq=8192, zero=2)  # Llama 3 Table 4's 8K layout
    assert PM.step(M405, lay, p_slow, require_fit=False).mfu < PM.step(M405, lay, p_spec, require_fit=False).mfu


# ---------------------------------------------------------------- CLI


def test_cli_model_md_and_json():
    r = gwbench("model", "--hardware", "H100", "--model", "70b", "--gpus", "64", "--tp", "8", "--pp", "1",
                "--seq", "4096", "--batch-tokens", str(4096 * 64), "--recompute", "full", "--zero", "1")
    assert r.returncode == 0, r.stderr
    assert "MFU" in r.stdout and "6N" in r.stdout and "pipeline bubble" in r.stdout and "1 GW site" in r.stdout
    assert "memory per GPU in GB (1 GB = 1e9 B" in r.stdout and "GB usable (GB = 1e9 B)" in r.stdout
    j = gwbench("model", "--hardware", "H100", "--model", "8b", "--gpus", "8", "--tp", "1", "--pp", "1",
                "--seq", "4096", "--batch-tokens", str(4096 * 8), "--format", "json")
    d = json.loads(j.stdout)
    assert 0 < d["result"]["mfu"] < 1 and d["mfu_range"]["low"] <= d["result"]["mfu"] <= d["mfu_range"]["high"]


@pytest.mark.parametrize("args", [["--tp", "3"], ["--pp", "5"], ["--gpus", "1000"], ["--tp", "8", "--pp", "1",
                                                                                      "--gpus", "64"]])
def test_cli_bad_input_one_line_exit_2(args):
    r = gwbench("model", "--hardware", "H100", "--model", "405b", *args)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_cli_from_run_lacking_rows(tmp_path):
    run = write_run(tmp_path, full_rows()[:4])
    r = gwbench("model", "--from", str(run))
    assert r.returncode == 2 and "lacks" in r.stderr and "--hardware" in r.stderr


def test_project_with_model_replaces_mfu_and_goodput(tmp_path):
    r = gwbench("project", "--hardware", "H100", "--model", "405b", "--samples", "500", "--format", "json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["assumptions"]["mfu"]["source"].startswith("gwbench model")
    assert d["assumptions"]["goodput"]["source"].startswith("gwbench model")
    assert d["basis"]["mfu_scale"] == 1.0 and any("replace the defaults" in n for n in d["notes"])
    run = write_run(tmp_path, full_rows()[:4])
    # A run lacking some rows (a one-GPU run has no collectives) still projects: the lacking
    # rates come from the run's own spec entry and the note says they were assumed.
    part = gwbench("project", "--from", str(run), "--model", "405b")
    assert part.returncode == 0, part.stderr
    assert "measured+spec" in part.stdout and "assumed:" in part.stdout and "measured: GEMM" in part.stdout


def test_measured_profile_reads_collectives_rows_as_the_family_writes_them(tmp_path):
    """The collectives family keeps busbw in `extra` and the size in params.size_bytes."""
    rows = full_rows()[:-2] + [all_reduce_row(b, g) for b, g in ((2**20, 100.0), (2**28, 350.0))]
    p = PP.from_run(write_run(tmp_path, rows))
    assert p.intra_busbw_gbps == pytest.approx(350.0)
    assert any("all_reduce busbw at 2 sizes" in m for m in p.measured)


@pytest.mark.parametrize("args", [["--seq", "0"], ["--gpus", "4"], ["--gpus", "7"]])
def test_search_bad_sizes_are_one_line_errors(args):
    r = gwbench("model", "--hardware", "H100", "--search", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


# ---------------------------------------------------------------- recomputation, HBM capacity, reuse


@pytest.mark.parametrize("attention", ["flash", "unfused"])
def test_selective_recompute_is_megatrons_core_attention(attention):
    """Selective = the core attention re-run in backward (Korthikanti et al. 2022 s5; Megatron's
    recompute_granularity=selective): it adds one attention forward and no GEMM, and drops the
    saved scores, which exist only without FlashAttention (a FlashAttention kernel keeps none)."""
    tiny = Transformer("tiny", layers=4, d_model=512, ffn=2048, heads=8, kv_heads=8, vocab=1000,
                       head_dim=64, gated_mlp=False)
    p = PP.from_spec("A100")
    lay = PM.Layout(8, tp=2, seq=1024, batch_tokens=1024 * 4 * 3, attention=attention)
    none, sel, full = (PM.step(tiny, replace(lay, recompute=rc), p, require_fit=False)
                       for rc in ("none", "selective", "full"))
    assert sel.breakdown["GEMM"] == none.breakdown["GEMM"] < full.breakdown["GEMM"]
    assert none.breakdown["attention"] < sel.breakdown["attention"] == full.breakdown["attention"]
    assert none.step_s < sel.step_s < full.step_s and none.hfu == none.mfu < sel.hfu / sel.mfu * none.mfu
    a_none, a_sel = none.memory_gb["activations"], sel.memory_gb["activations"]
    if attention == "flash":
        assert a_sel == a_none
    else:  # 5 B per score (softmax 2, dropout mask 1, dropout output 2) x heads/TP x s per token
        tokens = lay.seq
        assert (a_none - a_sel) * 1e9 == pytest.approx(tiny.layers * tokens * 5 * tiny.heads / 2 * lay.seq)
    assert full.memory_gb["activations"] < a_sel


def test_activations_match_korthikanti_table_2():
    """GPT layer (ffn 4h, GELU, dropout, no FlashAttention): bytes per layer are Korthikanti et al.
    2022 Table 2 exactly: TP sbh(10 + 24/t + 5as/(ht)); TP+SP sbh/t(34 + 5as/h); + selective 34sbh/t."""
    h, a, s, b, t = 4096, 32, 2048, 2, 4
    gpt = Transformer("gpt", layers=8, d_model=h, ffn=4 * h, heads=a, kv_heads=a, vocab=51200,
                      head_dim=h // a, gated_mlp=False)
    lay = PM.Layout(8, tp=t, seq=s, micro_batch=b, batch_tokens=s * b * 2, attention="unfused",
                    sequence_parallel=False)
    tokens = s * b
    assert PM.activation_bytes_per_layer(gpt, tokens, lay) == pytest.approx(s * b * h * (10 + 24 / t + 5 * a * s / (h * t)))
    sp = replace(lay, sequence_parallel=True)
    assert PM.activation_bytes_per_layer(gpt, tokens, sp) == pytest.approx(s * b * h / t * (34 + 5 * a * s / h))
    assert PM.activation_bytes_per_layer(gpt, tokens, replace(sp, recompute="selective")) == pytest.approx(34 * s * b * h / t)
    assert PM.activation_bytes_per_layer(gpt, tokens, replace(sp, recompute="full")) == pytest.approx(2 * s * b * h / t)
    fp8 = replace(sp, precision="fp8", attention="flash")
    assert PM.activation_bytes_per_layer(gpt, tokens, fp8) < PM.activation_bytes_per_layer(gpt, tokens, replace(fp8, precision="bf16"))


def test_distributed_optimizer_shards_over_dp_times_cp_and_zero_stages():
    """Megatron-Core builds the distributed optimizer on the DP x CP group: CP2 halves the
    optimizer state per GPU at the same DP; zero 2 shards gradients, zero 3 weights."""
    m = PM.preset("70b")
    base = PM.Layout(64, tp=8, pp=4, cp=1, seq=8192, batch_tokens=8192 * 32)
    cp2 = PM.Layout(128, tp=8, pp=4, cp=2, seq=8192, batch_tokens=8192 * 32)
    assert base.dp == cp2.dp == 2
    a, b = PM.memory_by_stage(m, base)[1], PM.memory_by_stage(m, cp2)[1]
    assert b["optimizer"] == pytest.approx(a["optimizer"] / 2) and b["gradients"] == a["gradients"]
    z2 = PM.memory_by_stage(m, replace(base, zero=2))[1]
    assert z2["gradients"] == pytest.approx(a["gradients"] / 2) and z2["weights"] == a["weights"]
    z0 = PM.memory_by_stage(m, replace(base, zero=0))[1]
    assert z0["optimizer"] == pytest.approx(2 * a["optimizer"])
    bf16 = PM.memory_by_stage(m, replace(base, grad_fp32=False))[1]  # 4 + 16/d bytes per parameter
    assert bf16["gradients"] == pytest.approx(a["gradients"] / 2)
    assert bf16["optimizer"] == pytest.approx(a["optimizer"] * 16 / 12)


def test_in_flight_micro_batches_per_stage_and_uneven_stages():
    m = PM.preset("405b")
    lay = PM.Layout(8192, tp=8, pp=16, seq=8192, batch_tokens=16 * 2**20)  # m = 32 micro-batches
    assert lay.micro_batches == 32
    assert [PM.in_flight(lay, i) for i in (0, 1, 15)] == [16, 15, 1]  # 1F1B: p - i
    v4 = replace(lay, vpp=4)  # Megatron: (p - i - 1) * 2 + (v - 1) * p warm-up chunks + 1, in 1/v stages
    assert PM.in_flight(v4, 0) == pytest.approx((15 * 2 + 3 * 16 + 1) / 4)
    few = replace(v4, batch_tokens=8192 * 16 * 8192 // 8192)  # m = 16: at most all m*v chunks
    assert PM.in_flight(few, 0) == pytest.approx(min(79, few.micro_batches * 4) / 4)
    # Llama 3 (s3.3.2): one fewer layer on the first and last stages: 7 + 14 x 8 + 7 = 126
    assert PM.stage_plan(m, 16) == [7] + [8] * 14 + [7]
    assert PM.stage_plan(m, 16, first_last_layers=5) is None  # 116 layers do not split over 14
    assert PM.stage_plan(m, 9, first_last_layers=14) == [14] * 9
    stages = PM.memory_by_stage(m, lay)
    acts = [s["activations"] for s in stages]
    assert acts[1] > acts[0]  # stage 1: 8 layers x 15 in flight > stage 0: 7 x 16
    assert acts[1] > acts[8] > acts[14]
    with pytest.raises(UsageError, match="first-last-layers"):
        PM.check(m, replace(lay, first_last_layers=5))


def test_layout_that_does_not_fit_prints_its_breakdown_and_no_fit_check_predicts(capsys):
    from harness import cli

    args = ["model", "--hardware", "H100", "--model", "405b", "--gpus", "64", "--tp", "8", "--pp", "1",
            "--seq", "8192", "--batch-tokens", str(8192 * 64)]
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights" in err and "activations" in err and "--no-fit-check" in err
    assert cli.main(args + ["--no-fit-check", "--format", "text"]) == 0
    assert "DOES NOT FIT (predicted anyway: --no-fit-check)" in capsys.readouterr().out


def test_hbm_capacity_vendor_gb_is_binary_and_decides_the_fit():
    """H200 "141 GB" is 141 GiB of HBM: read as 141e9 B this layout would be refused."""
    p = PP.from_spec("H200")
    assert p.hbm_bytes == pytest.approx(141 * 2**30 * PP.HBM_VISIBLE - PP.HBM_RESERVE_B)
    m = PM.preset("70b")
    lay = PM.Layout(32, tp=4, pp=4, micro_batch=2, seq=8192, batch_tokens=8192 * 2 * 32)
    need_b = sum(PM.memory(m, lay).values()) * 1e9
    assert 141e9 - PP.HBM_RESERVE_B < need_b < p.hbm_bytes  # the GB/GiB reading decides this case
    r = PM.step(m, lay, p)
    assert r.fits and r.hbm_gb == pytest.approx(p.hbm_bytes / 1e9)
    as_decimal = replace(p, hbm_bytes=141e9 - PP.HBM_RESERVE_B)
    with pytest.raises(UsageError, match=r"GB usable on H200 SXM \(GB = 1e9 B\)"):
        PM.step(m, lay, as_decimal)
    assert any(a.startswith("HBM capacity 149.9 GB (vendor 141 GB read as GiB") for a in p.assumed)
    h100 = PP.from_spec("H100")  # the table's device-visible figure: 81,559 MiB
    assert h100.hbm_bytes == pytest.approx(79.65 * 2**30 - PP.HBM_RESERVE_B)


def test_spec_capacity_agrees_with_a_measured_device_and_the_run_value_wins(tmp_path):
    # torch total_memory of this repository's H200 (results/h200-*/run.json) vs "141 GB"
    h200_b = 150_109_880_320
    assert PP.spec_capacity_bytes(specs.load().lookup("H200")) == pytest.approx(h200_b, rel=0.01)
    assert abs(141e9 / h200_b - 1) > 0.06  # the decimal reading would be 6% off
    p = PP.from_run(write_run(tmp_path, full_rows(), name="NVIDIA H200", memory_bytes=h200_b))
    assert p.hbm_bytes == h200_b - PP.HBM_RESERVE_B
    assert any("device total_memory" in m for m in p.measured)
    assert not any(a.startswith("HBM capacity") for a in p.assumed)


def test_cpu_run_memory_is_not_taken_for_hbm(tmp_path):
    run = write_run(tmp_path, full_rows()[:4], name="AMD EPYC", backend="cpu", memory_bytes=8e9)
    p = PP.from_run(run, fill="H100")
    assert p.hbm_bytes == PP.from_spec("H100").hbm_bytes
    assert any(a.startswith("HBM capacity") for a in p.assumed)


@pytest.mark.parametrize("key,gen", [("a100", "ampere"), ("h100", "hopper"), ("h200", "hopper"),
                                     ("gb200", "blackwell"), ("rubin", "hopper")])
def test_spec_profile_takes_its_generations_inputs(key, gen):
    from harness.analysis.perfmodel import inputs

    g = inputs.load()[gen]
    table = specs.load()
    p = PP.from_spec(key, table)
    assert p.generation == gen and p.gemm_eff == pytest.approx(g.gemm_eff.mode)
    assert p.attn_fwd_eff == g.attn_fwd_eff.mode and p.shape == g.shape
    assert any(g.gemm_eff.source in a for a in p.assumed)
    assert any("stands in" in n for n in p.notes) == (key == "rubin")
    acc = table.accelerators[key]
    system = table.system_for(acc)
    nic = system.scaleout_gbps.value if system and system.scaleout_gbps else PP.NIC_GBPS_DEFAULT
    assert p.inter_busbw_gbps == pytest.approx(nic * g.nic_eff.mode)


def test_per_system_links_and_fp8_gemm_scale():
    a100, h100, gb200 = (PP.from_spec(k) for k in ("A100", "H100", "GB200"))
    assert a100.inter_busbw_gbps / a100.inter_busbw_gbps * 25 == 25  # DGX A100: 200 Gb/s per GPU
    assert a100.inter_busbw_gbps < h100.inter_busbw_gbps  # 200 vs 400 Gb/s per GPU
    assert gb200.node_gpus == 72 and h100.node_gpus == 8  # NVL72: one NVLink domain per rack
    assert PP.from_spec("NVIDIA A100-SXM4-40GB").hbm_bytes < 45e9  # the 40 GB part is its own entry
    fp8 = PP.from_spec("H100", dtype="fp8")
    assert fp8.gemm_eff == pytest.approx(h100.gemm_eff * (1402.6 / 1979) / (794.5 / 989))
    assert fp8.attn_peak == 989 and fp8.peak_tflops == 1979  # attention stays bf16


def test_gemm_shape_law_is_the_fitted_openxla_form():
    p = PP.from_spec("H100")
    x0_mn, x0_k, a, launch = p.shape

    def q(x, x0):
        return x**a / (x**a + x0**a)
    m, n, k = 8192, 1024, 4096
    expect = 2 * m * n * k / (989e12 * p.gemm_eff * q(m, x0_mn) * q(n, x0_mn) * q(k, x0_k)) + launch
    assert p.gemm_time(m, n, k) == pytest.approx(expect)
    # small dimensions cost more per FLOP than large ones
    assert p.gemm_time(8192, 256, 8192) / (8192 * 256 * 8192) > p.gemm_time(8192, 8192, 8192) / 8192**3


def test_spec_capacity_takes_the_tables_visible_figure_where_it_has_one():
    # B300 devices report ~270 GiB of the "288 GB": the table's `low`, not 288 GiB x 0.99.
    b300, h200 = specs.lookup("b300"), specs.lookup("h200")
    assert b300.hbm_gb.low == 270
    assert PP.spec_capacity_bytes(b300) == 270 * 2**30
    assert PP.spec_capacity_bytes(h200) == 141 * 2**30 * PP.HBM_VISIBLE
