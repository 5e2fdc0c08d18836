"""`gwbench run --only gemm --model FILE --tp N --micro-batch M --seq S` measures a layout's layer
GEMMs (forward, dgrad, wgrad), and `gwbench model --from RUN` uses exactly those rates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.analysis.perfmodel import predict, profile, step
from harness.benchmarks import gemm
from harness.core.errors import UsageError
from harness.core.models import load_model
from tests.conftest import FAST, ROOT

TINY = str(ROOT / "tests" / "data" / "tiny-llama.json")


def test_layer_shapes_are_the_models_forward_and_backward_gemms():
    opts = {"model": TINY, "model_tp": 2, "model_micro_batch": 2, "model_seq": 32}
    shapes = [(m, n, k) for _, m, n, k in gemm.layer_shapes(opts)]
    m = load_model(TINY)
    lay = step.Layout(8, tp=2, micro_batch=2, seq=32, batch_tokens=32 * 2 * 4)
    assert shapes == predict.layout_shapes(m, lay)  # what the model will look up
    tokens, h, f = 64, 256, 512
    assert (tokens, (8 // 2 + 2 * 1) * 32, h) in shapes  # QKV: 4 query heads + 1 KV pair of head dim 32 per rank
    assert (tokens, h, f // 2) in shapes and (tokens, f // 2, h) in shapes  # down fwd / its dgrad
    assert (f // 2, h, tokens) in shapes  # down wgrad: k x n x tokens
    assert (tokens, 1000 // 2, h) in shapes  # logits, vocab split over TP
    assert len(shapes) == len(set(shapes))
    with pytest.raises(UsageError, match="--tp 3 does not divide tiny-llama's 8 attention heads"):
        gemm.check_options(opts | {"model_tp": 3})
    with pytest.raises(UsageError, match="--seq must be"):
        gemm.check_options(opts | {"model_seq": 0})


def test_cpu_run_of_layer_shapes_feeds_model_from(tmp_path, capsys):
    args = ["run", "--only", "gemm", "--model", TINY, "--tp", "2", "--seq", "32", "--dtype", "bf16",
            "--device", "cpu", "--out", str(tmp_path), *FAST]
    assert cli.main(args) == 0
    capsys.readouterr()
    run = next(p for p in Path(tmp_path).iterdir() if p.is_dir())
    rows = [json.loads(line) for line in (run / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == len(gemm.layer_shapes({"model": TINY, "model_tp": 2, "model_seq": 32}))
    assert all(r["status"] == "ok" and r["label"].startswith("tiny-llama tp2 ") for r in rows)
    p = profile.from_run(run, fill="H100")
    m = load_model(TINY)
    lay = step.Layout(8, tp=2, pp=1, seq=32, batch_tokens=32 * 16)
    assert predict.measured_shapes(m, lay, p) == {"exact": len(rows), "of": len(rows)}
    # every layer GEMM of the step runs at exactly its measured rate (no interpolation)
    rate = {(r["params"]["m"], r["params"]["n"], r["params"]["k"]): r["tflops"] for r in rows}
    for shape, tflops in rate.items():
        assert p.gemm_time(*shape) == pytest.approx(2 * shape[0] * shape[1] * shape[2] / (tflops * 1e12), rel=1e-6)
    assert cli.main(["model", "--from", str(run), "--hardware", "H100", "--model", TINY, "--gpus", "8",
                     "--tp", "2", "--pp", "1", "--seq", "32", "--batch-tokens", str(32 * 16), "--format", "text"]) == 0
    out = capsys.readouterr().out
    assert f"GEMM shapes of this layout measured exactly: {len(rows)} of {len(rows)}" in out
    assert "measured: GEMM bf16" in out and "assumed: attention" in out
