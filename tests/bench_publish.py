"""Benchmark: `publish` over 50 synthetic runs of 2,000 rows each (target: < 30 s on
2 cores). Measures only; it asserts what was written, never the time.

    .venv/bin/python -m pytest tests/bench_publish.py --benchmark-only -q
"""

from __future__ import annotations

import random

import pytest

from harness.present import publish
from harness.core.store import SCHEMA_VERSION, RunStore

N_RUNS, N_ROWS = 50, 2000
DEVICES = ("NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA B200", "AMD EPYC", "NVIDIA A100-SXM4-80GB")


def _rows(run_id: str, rng: random.Random) -> list[dict]:
    out = []
    for i in range(N_ROWS):
        fam = ("gemm", "attention", "memory", "collectives")[i % 4]
        t = 1e-3 * (1 + i % 7) * rng.uniform(0.9, 1.1)
        r = {"schema_version": SCHEMA_VERSION, "run_id": run_id, "case_id": f"{fam}/op/bf16/torch/i={i}",
             "family": fam, "op": "op", "dtype": "bf16", "backend": "torch", "status": "ok",
             "samples_s": [t * rng.uniform(0.98, 1.02) for _ in range(10)], "time_s": t,
             "flop": 2e12, "bytes": 1e9, "tflops": 2 / t, "gbps": 1 / t, "noisy": rng.random() < 0.1,
             "power_w": 600.0, "tflops_per_w": 2 / t / 600}
        if fam == "gemm":
            r["params"] = {"m": 256 * (1 + i % 16), "n": 4096, "k": 4096}
        elif fam == "attention":
            r["params"] = {"seq": 128 << (i % 8), "head_dim": 128, "causal": bool(i % 2), "batch": i}
        elif fam == "memory":
            r["params"] = {"n": 1 << (10 + i % 20)}
            r["op"] = ("copy", "scale", "add", "triad")[i // 4 % 4]
        else:
            r["params"] = {"size_bytes": 1 << (10 + i % 20), "batch": i}
            r["extra"] = {"algbw_gbps": 1 / t, "busbw_gbps": 1.75 / t}
        out.append(r)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench") / "results"
    rng = random.Random(0)
    for k in range(N_RUNS):
        rid = f"run{k:02d}"
        dev = DEVICES[k % len(DEVICES)]
        s = RunStore.create(root, rid, {"device": {"name": dev, "backend": "cpu" if "EPYC" in dev else "cuda",
                                                   "count": 8, "host": f"node{k}"},
                                        "started_at": f"2026-01-01T00:{k:02d}:00"})
        with open(s.rows_file, "a", encoding="utf-8") as f:  # bulk write: append() fsyncs per row
            import json
            for r in _rows(s.meta["run_id"], rng):
                f.write(json.dumps(r) + "\n")
        s.write_meta(status="complete")
    return root


def test_publish_50_runs(benchmark, results, tmp_path):
    def go():
        runs = publish.load_runs(results)
        publish.build_site(runs, tmp_path / "site")
        publish.write_readme(runs, results)
        return runs

    runs = benchmark.pedantic(go, rounds=1, iterations=1)
    assert len(runs) == N_RUNS and len(list((tmp_path / "site" / "runs").glob("*.html"))) == N_RUNS
