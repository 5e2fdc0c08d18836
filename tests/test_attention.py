"""The attention family: FLOP convention, CPU backends end to end, checks, skips, suites."""

import json

import pytest
import torch
import torch.nn.functional as F

from conftest import FAST, gwbench
from harness.benchmarks import attention as A
from harness.core.cases import Case
from harness.measure.context import Context
from harness.measure.device import Device
from harness.core.errors import UsageError
from harness.core.flops import attention_flop
from harness.core.row import build_row
from harness.runner import measure_case


def _case(backend="sdpa-math", op="fwd", dtype="fp32", seq=64, heads=2, kv_heads=None,
          head_dim=32, causal=True, batch=1, **extra):
    return Case.make("attention", op, dtype, backend=backend, batch=batch, seq=seq, heads=heads,
                     kv_heads=kv_heads or heads, head_dim=head_dim, causal=causal, **extra)


# --- FLOP ----------------------------------------------------------------------------------

def test_flop_hand_computed():
    # 4·b·h·s_q·s_k·d: 4·2·8·1024·1024·128 = 8,589,934,592
    assert attention_flop(2, 8, 1024, 1024, 128, False, "fwd") == 8_589_934_592
    assert attention_flop(2, 8, 1024, 1024, 128, True, "fwd") == 4_294_967_296  # exactly /2
    assert attention_flop(2, 8, 1024, 1024, 128, False, "bwd") == 21_474_836_480  # 2.5 × fwd
    assert attention_flop(2, 8, 1024, 1024, 128, False, "fwdbwd") == 30_064_771_072  # 3.5 × fwd
    assert attention_flop(2, 8, 1024, 1024, 128, True, "fwdbwd") == 15_032_385_536


def test_flop_q_len_differs_from_kv_len():
    # 4·1·4·100·300·64 = 30,720,000; causal 15,360,000
    assert attention_flop(1, 4, 100, 300, 64, False, "fwd") == 30_720_000
    assert attention_flop(1, 4, 300, 100, 64, False, "fwd") == 30_720_000
    assert attention_flop(1, 4, 100, 300, 64, True, "fwd") == 15_360_000


def test_flop_gqa_counts_query_heads(fast_ctx):
    # llama3-8b: 32 query heads share 8 KV heads; the matmul work is per query head.
    status, outcome, error = measure_case(_case("sdpa-math", heads=8, kv_heads=2), fast_ctx)
    assert status == "ok", error
    assert outcome.flop == attention_flop(1, 8, 64, 64, 32, True, "fwd") == 4 * 8 * 64 * 64 * 32 // 2


@pytest.mark.parametrize("bad", [dict(b=0), dict(d=-1), dict(mode="bwd2")])
def test_flop_rejects_bad_input(bad):
    args = dict(b=1, h=1, s_q=8, s_k=8, d=8, causal=False, mode="fwd") | bad
    with pytest.raises(ValueError):
        attention_flop(**args)


# --- CPU backends end to end ------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sdpa-math", "sdpa-default", "sdpa-flash"])
@pytest.mark.parametrize("op", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_cpu_backend_ok_and_checked(fast_ctx, backend, op, dtype):
    case = _case(backend, op, dtype)
    status, outcome, error = measure_case(case, fast_ctx)
    assert status == "ok", error
    assert outcome.check.ok and outcome.check.max_rel_err <= A.TOLERANCE[dtype]
    assert len(outcome.check.details["parts"]) == 2  # the timed rows and the reduced-size rerun
    assert outcome.flop == attention_flop(1, 2, 64, 64, 32, True, op)
    ex = outcome.extra
    assert ex["backend"] == backend and ex["causal"] is True and ex["gqa"] is False
    assert (ex["heads"], ex["kv_heads"], ex["head_dim"], ex["seq"]) == (2, 2, 32, 64)
    assert "4*b*h*s_q*s_k*d" in ex["flop_convention"]
    row = build_row(case, "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    assert row["backend"] == backend and row["op"] == op
    assert row["params"]["seq"] == 64 and row["params"]["head_dim"] == 32 and row["params"]["causal"]
    assert row["tflops"] == pytest.approx(row["flop"] / row["time_s"] / 1e12)


def test_default_records_the_kernel_torch_picks(fast_ctx):
    status, outcome, error = measure_case(_case("sdpa-default"), fast_ctx)
    assert status == "ok", error
    # Judged by what actually ran, not by the dispatcher query the code itself uses: the
    # profiler names the aten kernel an unpinned call dispatches to on the CPU.
    kernel = {"FLASH_ATTENTION": "aten::_scaled_dot_product_flash_attention_for_cpu",
              "MATH": "aten::_scaled_dot_product_attention_math"}
    q = torch.randn(1, 2, 64, 32)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
    ran = {e.key for e in prof.key_averages()}
    assert kernel[outcome.extra["default_backend"]] in ran, (outcome.extra["default_backend"], ran)


@pytest.mark.parametrize("backend", ["sdpa-math", "sdpa-flash"])
@pytest.mark.parametrize("op", ["fwd", "fwdbwd"])
def test_gqa_native_and_checked(fast_ctx, backend, op):
    status, outcome, error = measure_case(_case(backend, op, heads=8, kv_heads=2, causal=False), fast_ctx)
    assert status == "ok", error
    assert outcome.extra["gqa"] is True and outcome.extra["gqa_mode"].startswith("native")
    assert outcome.check.ok


@pytest.mark.parametrize("backend", ["sdpa-efficient", "sdpa-cudnn"])
def test_cpu_refused_backends_skip_with_torchs_reason(fast_ctx, backend):
    status, outcome, error = measure_case(_case(backend), fast_ctx)
    assert status == "skipped" and outcome is None
    assert error.startswith(f"{backend} refused this case:")
    assert "No viable backend" in error and "FLASH_ATTENTION and MATH" in error


# --- the check catches wrong kernels ---------------------------------------------------------

def test_garbage_output_fails_the_row(fast_ctx, monkeypatch):
    monkeypatch.setattr(A, "_sdpa", lambda q, k, v, causal, gqa: torch.randn_like(q))
    case = _case("sdpa-flash")
    status, outcome, error = measure_case(case, fast_ctx)
    assert status == "failed" and error.startswith("wrong result")
    assert outcome.check.ok is False and outcome.check.max_rel_err > 0.1
    row = build_row(case, "run", status, outcome, error=error, started_at="now", wall_s=0.1)
    assert row["check"]["ok"] is False and row["tflops"] is not None  # fast but wrong


def test_wrong_mask_fails_the_row(fast_ctx, monkeypatch):
    # A subtle bug: the kernel ignores the causal mask.
    monkeypatch.setattr(A, "_sdpa", lambda q, k, v, causal, gqa:
                        F.scaled_dot_product_attention(q, k, v, is_causal=False, enable_gqa=gqa))
    status, outcome, _ = measure_case(_case("sdpa-math", causal=True), fast_ctx)
    assert status == "failed" and outcome.check.ok is False


def test_wrong_gradient_fails_fwdbwd_only(fast_ctx, monkeypatch):
    real = A._sdpa

    def right_forward_wrong_backward(q, k, v, causal, gqa):
        out = real(q, k, v, causal, gqa)
        return out + 0.5 * (out - out.detach())  # same values, gradients 1.5× too large

    monkeypatch.setattr(A, "_sdpa", right_forward_wrong_backward)
    assert measure_case(_case("sdpa-math", "fwd"), fast_ctx)[0] == "ok"
    status, outcome, _ = measure_case(_case("sdpa-math", "fwdbwd"), fast_ctx)
    assert status == "failed" and "worst d" in outcome.check.reference


def test_check_on_timed_rows_catches_size_dependent_bug(fast_ctx, monkeypatch):
    # Right at the reduced check size (s <= 256), wrong beyond it: the timed rows catch it.
    real = A._sdpa

    def wrong_when_long(q, k, v, causal, gqa):
        out = real(q, k, v, causal, gqa)
        return out * 1.1 if q.shape[2] > A.CHECK_SEQ else out

    monkeypatch.setattr(A, "_sdpa", wrong_when_long)
    status, outcome, _ = measure_case(_case("sdpa-flash", seq=512, head_dim=16), fast_ctx)
    assert status == "failed"
    timed, small = outcome.check.details["parts"]
    assert timed["ok"] is False and small["ok"] is True


# --- skipped rows -------------------------------------------------------------------------------

@pytest.mark.parametrize("case,reason", [
    (_case("flash_attn", dtype="bf16"), "needs a CUDA GPU"),
    (_case("sdpa-math", dtype="fp8"), "not an attention dtype"),
    (_case("sdpa-math", heads=6, kv_heads=4), "not a multiple"),
    (_case("sdpa-math", seq_k=128), "not comparable"),
    (Case.make("attention", "bwd3", "fp32", backend="sdpa-math", batch=1, seq=8, heads=1,
               kv_heads=1, head_dim=8, causal=False), "unknown attention op"),
])
def test_unsupported_combinations_skip(fast_ctx, case, reason):
    status, outcome, error = measure_case(case, fast_ctx)
    assert status == "skipped" and reason in error and outcome is None


def test_non_causal_q_len_differs_from_kv_len_runs(fast_ctx):
    status, outcome, error = measure_case(_case("sdpa-math", causal=False, seq_k=96), fast_ctx)
    assert status == "ok", error
    assert outcome.flop == attention_flop(1, 2, 64, 96, 32, False, "fwd")


def test_too_large_is_skipped_out_of_memory(fast_ctx, monkeypatch):
    monkeypatch.setattr(fast_ctx.dev, "free_bytes", lambda: 1 << 20)
    status, _, error = measure_case(_case("sdpa-math", seq=32768, heads=32, head_dim=128), fast_ctx)
    assert status == "skipped" and error.startswith("out of memory: needs")


def test_math_memory_estimate_counts_the_score_matrix():
    flash = A.needed_bytes(_case("sdpa-flash", dtype="bf16", seq=8192, heads=32, head_dim=128, batch=2))
    math_ = A.needed_bytes(_case("sdpa-math", dtype="bf16", seq=8192, heads=32, head_dim=128, batch=2))
    assert math_ - flash >= 3 * 4 * 2 * 32 * 8192 * 8192  # scores, probabilities (fp32)


def test_kernel_oom_becomes_skipped(fast_ctx, monkeypatch):
    def oom(*a, **k):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(A, "_sdpa", oom)
    status, _, error = measure_case(_case("sdpa-flash"), fast_ctx)
    assert status == "skipped" and error.startswith("out of memory")


def test_other_errors_are_failed_rows(fast_ctx, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(A, "_sdpa", broken)
    status, _, error = measure_case(_case("sdpa-flash"), fast_ctx)
    assert status == "failed" and "illegal memory access" in error


# --- backends by name, suites --------------------------------------------------------------------

def test_check_backends():
    assert A.check_backends(None) is None and A.check_backends([]) is None
    assert A.check_backends(["sdpa-cudnn", "flash_attn"]) == ["sdpa-cudnn", "flash_attn"]
    with pytest.raises(UsageError, match="unknown attention backend 'sdpa-fast'.*sdpa-cudnn"):
        A.check_backends(["sdpa-fast"])


def _ctx(backend, suite, **options):
    return Context(dev=Device(backend), suite=suite, options=options)


def test_cpu_quick_suite_is_small_and_covers_backends():
    cs = A.cases("quick", _ctx("cpu", "quick"))
    assert {c.backend for c in cs} == set(A.SDPA_BACKENDS)
    assert {c.op for c in cs} == {"fwd", "fwdbwd"} and {c.dtype for c in cs} == {"fp32", "bf16"}
    assert any(c.p["kv_heads"] < c.p["heads"] for c in cs)
    assert len(cs) <= 20 and all(c.p["seq"] <= 512 for c in cs)
    assert sum(A.power_case(c, "cpu") for c in cs) == 1


def test_backend_option_filters_and_validates():
    cs = A.cases("quick", _ctx("cpu", "quick", attn_backends=["sdpa-math"]))
    assert cs and {c.backend for c in cs} == {"sdpa-math"}
    with pytest.raises(UsageError):
        A.cases("quick", _ctx("cpu", "quick", attn_backends=["nope"]))


@pytest.mark.parametrize("suite", ["quick", "standard", "full"])
def test_gpu_suites_shape(suite, monkeypatch):
    monkeypatch.setattr(A, "_available_flash_attn", lambda: ())  # as on a GPU without the package
    cs = A.cases(suite, _ctx("cuda", suite))
    assert len(cs) == len(set(cs))
    assert {c.dtype for c in cs} <= {"bf16", "fp16"}
    for c in cs:
        tokens = c.p["batch"] * c.p["seq"]
        assert 512 <= c.p["seq"] <= 32768 and 16384 <= tokens <= 32768
    headline = [c for c in cs if (c.op, c.dtype, c.p["seq"], c.p["head_dim"], c.p["causal"],
                                  c.p["kv_heads"] == c.p["heads"]) == ("fwd", "bf16", 8192, 128, False, True)]
    assert {c.backend for c in headline} == set(A.SDPA_BACKENDS)
    assert sum(A.power_case(c, "cuda") for c in cs) == 1
    if suite == "standard":  # ~60–90 s on an H200 at the default budgets
        assert 100 <= len(cs) <= 200
        assert {c.p["head_dim"] for c in cs} == {64, 128, 256}
        assert {c.label for c in cs} >= {"llama3-8b", "llama3-70b", "llama3-405b"}
        assert {c.p["seq"] for c in cs} >= {512, 32768}
    if suite == "quick":
        assert len(cs) <= 20


def test_gpu_suite_adds_flash_attn_when_importable(monkeypatch):
    monkeypatch.setattr(A, "_available_flash_attn", lambda: ("flash_attn",))
    cs = A.cases("quick", _ctx("cuda", "quick"))
    assert "flash_attn" in {c.backend for c in cs}


def test_power_case():
    cuda = _case("sdpa-cudnn", "fwd", "bf16", seq=8192, heads=32, head_dim=128, causal=False, batch=2)
    assert A.power_case(cuda, "cuda") and not A.power_case(cuda, "cpu")
    assert not A.power_case(_case("sdpa-flash", "fwd", "bf16", seq=8192, heads=32, head_dim=128,
                                  causal=False, batch=2), "cuda")


# --- the real CLI -----------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_runs_attention_on_cpu(tmp_path):
    r = gwbench("run", "--only", "attention", "--device", "cpu", "--out", str(tmp_path), *FAST)
    assert r.returncode == 0, r.stderr
    (run_dir,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    rows = [json.loads(x) for x in (run_dir / "rows.jsonl").read_text().splitlines()]
    assert rows and {x["family"] for x in rows} == {"attention"}
    ok = [x for x in rows if x["status"] == "ok"]
    assert {x["backend"] for x in ok} == {"sdpa-math", "sdpa-flash", "sdpa-default"}
    assert all(x["tflops"] > 0 and x["check"]["ok"] for x in ok)
    assert {x["backend"] for x in rows if x["status"] == "skipped"} == {"sdpa-efficient", "sdpa-cudnn"}
    for x in ok:
        assert {"seq", "head_dim", "causal"} <= set(x["params"]) and x["op"] in ("fwd", "fwdbwd")


# --- real GPU ---------------------------------------------------------------------------------

def _gpu_ctx():
    from harness.measure.device import resolve
    from harness.measure.timing import Budget

    return Context(dev=resolve("cuda"), budget=Budget(warmup_s=0.01, rep_s=0.05))


@pytest.mark.gpu
@pytest.mark.parametrize("backend", A.BACKENDS)
def test_cuda_backend_forward(backend):
    case = _case(backend, "fwd", "bf16", seq=4096, heads=32, head_dim=128, causal=False, batch=4)
    status, outcome, error = measure_case(case, _gpu_ctx())
    if backend in A.FLASH_ATTN_BACKENDS and A.flash_attn_import(backend)[0] is None:
        assert status == "skipped" and "not importable" in error
        return
    assert status == "ok", error
    assert outcome.check.ok
    tflops = outcome.flop / outcome.measurement.stats()["time_s"] / 1e12
    if backend != "sdpa-math":
        assert tflops > 50, tflops


@pytest.mark.gpu
@pytest.mark.parametrize("backend", ["sdpa-flash", "sdpa-cudnn", "sdpa-efficient", "sdpa-default"])
def test_cuda_backend_fwdbwd_gqa(backend):
    case = _case(backend, "fwdbwd", "bf16", seq=2048, heads=32, kv_heads=8, head_dim=128, batch=4)
    status, outcome, error = measure_case(case, _gpu_ctx())
    if backend == "sdpa-efficient" and status == "skipped":
        # torch 2.11 on the H200 refused GQA for the efficient kernel (results/h200-*-standard);
        # a refusal must carry torch's reason, anything else is a failure.
        assert "refused" in error and "Memory efficient" in error, error
        return
    assert status == "ok", error
    assert outcome.check.ok and outcome.extra["gqa"] is True


@pytest.mark.gpu
def test_cuda_refusal_carries_torchs_reason():
    # Flash attention refuses fp32 inputs on CUDA and says why in a warning.
    status, _, error = measure_case(_case("sdpa-flash", dtype="fp32", seq=256), _gpu_ctx())
    assert status == "skipped" and "refused" in error and len(error) > 60


def test_cli_attn_backend_choice_and_unknown_name(tmp_path):
    from conftest import FAST, gwbench

    bad = gwbench("run", "--only", "attention", "--attn-backend", "sdpa-bogus", "--device", "cpu",
                  "--out", str(tmp_path), *FAST)
    assert bad.returncode == 2 and "unknown attention backend 'sdpa-bogus'" in bad.stderr
    assert "Traceback" not in bad.stderr
    r = gwbench("run", "--only", "attention", "--attn-backend", "sdpa-math", "--device", "cpu",
                "--out", str(tmp_path), *FAST)
    assert r.returncode == 0, r.stderr
    (run_dir,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    rows = [json.loads(x) for x in (run_dir / "rows.jsonl").read_text().splitlines()]
    assert rows and {x["backend"] for x in rows} == {"sdpa-math"}
