from dataclasses import replace

import pytest

from harness.benchmarks import gemm
from harness.core.cases import Case, check_dtypes, check_suite, select
from harness.core.errors import UsageError
from harness.core.flops import gemm_bytes, gemm_flop
from harness.core.models import MODELS


def test_case_identity_is_stable_and_hashable():
    a = Case.make("gemm", "matmul", "bf16", n=2, m=1, k=3, label="x")
    b = Case.make("gemm", "matmul", "bf16", m=1, k=3, n=2, label="other label")
    assert a == b and hash(a) == hash(b)  # label is not identity
    assert a.id == "gemm/matmul/bf16/torch/k=3,m=1,n=2"
    assert a.p == {"m": 1, "n": 2, "k": 3}
    with pytest.raises(AttributeError):
        a.dtype = "fp32"


def test_select_filters_and_dedups():
    cs = [Case.make("gemm", "matmul", d, m=s, n=s, k=s) for d in ("fp32", "bf16") for s in (1, 2, 1)]
    assert len(select(cs)) == 4
    assert [c.dtype for c in select(cs, ["bf16"])] == ["bf16", "bf16"]


def test_bad_names():
    with pytest.raises(UsageError, match="unknown suite 'huge'"):
        check_suite("huge")
    with pytest.raises(UsageError, match="unknown dtype 'fp12'"):
        check_dtypes(["bf16", "fp12"])


def test_gemm_flop_and_bytes():
    assert gemm_flop(8192, 8192, 8192) == 2 * 8192**3
    assert gemm_flop(1, 2, 3) == 12
    assert gemm_bytes(2, 3, 4, 2, 4) == (8 + 12) * 2 + 6 * 4
    with pytest.raises(ValueError):
        gemm_flop(0, 1, 1)


def test_llama_gemm_shapes():
    g = {name: (m, n, k) for name, m, n, k in MODELS["llama3-8b"].gemms(8192)}
    assert g["qkv"] == (8192, (32 + 2 * 8) * 128, 4096)
    assert g["mlp_up"] == (8192, 2 * 14336, 4096)
    assert g["mlp_down"] == (8192, 4096, 14336)
    assert g["logits"] == (8192, 128256, 4096)
    g405 = {name: (m, n, k) for name, m, n, k in MODELS["llama3-405b"].gemms(16)}
    assert g405["attn_out"] == (16, 16384, 16384)


def test_gemm_suites_expand(fast_ctx):
    quick = gemm.cases("quick", fast_ctx)
    standard = gemm.cases("standard", fast_ctx)
    assert len(set(quick)) == len(quick)
    assert {c.dtype for c in quick} >= {"fp32", "bf16"}
    assert len(standard) > len(quick)
    assert all(c.p["data"] == "randn" for c in quick)
    assert any(c.label.startswith("llama3-8b") for c in quick)


def test_search_ranges(fast_ctx):
    ctx = replace(fast_ctx, options={"search": True, "m_range": "256:512:128", "n_range": "256",
                                     "k_range": "128:256"})
    cs = gemm.cases("quick", ctx)
    assert [c.p["m"] for c in cs] == [256, 256, 384, 384, 512, 512]
    assert {c.p["k"] for c in cs} == {128, 256}
    assert {c.dtype for c in cs} == {"bf16"}
    for bad in ("0:10", "10:5", "a:b", "1:2:0", "1:2:3:4"):
        with pytest.raises(UsageError):
            gemm.cases("quick", replace(fast_ctx, options={"search": True, "m_range": bad}))
