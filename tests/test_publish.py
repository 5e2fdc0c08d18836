"""publish: the static site (escaping, links, data beside the pages), README index, figures. The
site in a real browser: tests/test_site_browser.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.present import figures, publish
from harness.present.html import SCRIPT_HASH, SORT_SCRIPT
from harness.core.store import SCHEMA_VERSION, RunStore
from tests.conftest import gwbench

EVIL = "<script>document.body.setAttribute('data-pwned','1')</script>"


def rows(run_id, scale=1.0):
    out = []
    for i, m in enumerate((256, 512, 1024)):
        for dt in ("fp32", "bf16"):
            t = 1e-3 * m / 256 / scale
            out.append({"case_id": f"gemm/matmul/{dt}/torch/m={m}", "family": "gemm", "op": "matmul",
                        "dtype": dt, "backend": "torch", "params": {"m": m, "n": m, "k": m},
                        "status": "ok", "flop": 2 * m ** 3, "bytes": 6 * m * m, "time_s": t,
                        "samples_s": [t * (1 + 0.001 * j) for j in range(8)], "tflops": 2 * m ** 3 / t / 1e12,
                        "noisy": i == 0})
    for seq in (128, 256):
        out.append({"case_id": f"attention/fwd/fp32/sdpa/seq={seq}", "family": "attention", "op": "fwd",
                    "dtype": "fp32", "backend": "sdpa", "params": {"seq": seq, "head_dim": 64, "causal": True},
                    "status": "ok", "flop": 1e9, "bytes": 1e7, "tflops": 0.01 * seq / 128, "time_s": 1e-3})
    for size in (1024, 1 << 20):
        out.append({"case_id": f"collectives/all_reduce/fp32/gloo/ws=2/size={size}", "family": "collectives",
                    "op": "all_reduce", "dtype": "fp32", "backend": "gloo", "world_size": 2,
                    "params": {"size_bytes": size}, "status": "ok", "bytes": size, "time_s": 1e-3,
                    "extra": {"algbw_gbps": size / 1e-3 / 1e9, "busbw_gbps": size / 1e-3 / 1e9}})
    out.append({"case_id": "memory/triad/fp32/torch/n=1", "family": "memory", "op": "triad", "dtype": "fp32",
                "backend": "torch", "params": {"n": 1 << 24}, "status": "ok", "gbps": 20.0, "flop": 2 << 24,
                "bytes": 12 << 24, "tflops": 20 / 6 / 1e3, "time_s": 1e-2})
    out.append({"case_id": "gemm/matmul/fp8/torch/m=256", "family": "gemm", "op": "matmul", "dtype": "fp8",
                "backend": "torch", "params": {"m": 256, "n": 256, "k": 256}, "status": "skipped",
                "error": "fp8 needs <b>CUDA</b>"})
    return [r | {"schema_version": SCHEMA_VERSION, "run_id": run_id} for r in out]


def make_run(out: Path, rid: str, host: str = "vm", name: str = "AMD EPYC", scale: float = 1.0,
             backend: str = "cpu") -> Path:
    meta = {"device": {"name": name, "backend": backend, "count": 1, "host": host,
                       "software": {"torch": "2.13"}}, "started_at": f"2026-01-0{len(rid) % 9 + 1}"}
    s = RunStore.create(out, rid, meta)
    for r in rows(rid, scale):
        s.append(r)
    s.write_meta(status="complete")
    (s.dir / "power.csv").write_text("t_s,device,power_w,clock_sm_mhz,temp_c\n"
                                     + "".join(f"{i / 10},gpu0,{300 + i},1980,60\n" for i in range(30)))
    return s.dir


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("site")
    res = tmp_path / "results"
    make_run(res, "run-a", host=EVIL)
    make_run(res, "run-b", scale=2.0)
    make_run(res, "run-h200", name="NVIDIA H200", backend="cuda", scale=1000.0)
    out = tmp_path / "site"
    runs = publish.load_runs(res)
    publish.build_site(runs, out, figures="all")
    return res, out


def test_site_pages_links_and_escaping(site):
    res, out = site
    pages = sorted(out.rglob("*.html"))
    names = {p.name for p in pages}
    assert {"index.html", "compare.html", "generations.html", "projection.html"} <= names and len(pages) == 7
    for p in pages:
        text = p.read_text()
        # One script, ours (sorting), allowed by its hash; nothing from the results runs.
        assert text.lower().count("<script") == 1 and f"<script>{SORT_SCRIPT}</script>" in text, p
        assert re.search(r"script-src ([^;\"]*)", text).group(1) == f"'{SCRIPT_HASH}'", p  # that one only
        assert "http://" not in text and "https://" not in text  # no CDN, no network
        for link in re.findall(r'(?:href|src)="([^"]+)"', text):
            assert (p.parent / link).exists(), (p, link)
    run_a = next(p for p in pages if p.name.startswith("run-a"))
    assert "&lt;script&gt;document.body" in run_a.read_text()
    assert "<table" in (out / "index.html").read_text()
    assert "better" in (out / "compare.html").read_text()  # run-b is twice as fast as run-a
    assert len(list((out / "runs").glob("*/gemm.png"))) == 3  # figures on every run page by default
    for run in ("run-a", "run-b", "run-h200"):  # the data beside each page
        assert {p.name for p in (out / "runs" / run).iterdir()} >= {"run.json", "rows.jsonl", "power.csv"}


def test_readme_index_goes_where_named(site, tmp_path):
    """--index writes README.md under --out; without --out, into RESULTS_DIR (`gwbench publish
    results --index`); --index PATH where named. Nothing else is written."""
    res, _ = site
    before = sorted(p.name for p in res.iterdir())
    r = gwbench("publish", str(res), "--out", str(tmp_path / "s2"), "--figures", "none", "--index")
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "s2" / "README.md").read_text()
    assert len(re.findall(r"\]\(\./runs/run-[a-z0-9]+\.html\)", text)) == 3  # each run's page
    assert text.count("/rows.jsonl)") == 3 and publish.README_BEGIN in text and "<script" not in text
    assert sorted(p.name for p in res.iterdir()) == before  # the results folder untouched
    r = gwbench("publish", str(res), "--index")
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"\]\(\./run-[a-z0-9]+/\)", (res / "README.md").read_text())) == 3  # folders
    (res / "README.md").unlink()
    r = gwbench("publish", str(res), "--index", str(tmp_path / "named.md"))
    assert r.returncode == 0, r.stderr
    assert len(re.findall(r"\]\(\./[^)]*results/run-[a-z0-9]+/\)", (tmp_path / "named.md").read_text())) == 3


def test_bad_input(tmp_path):
    r = gwbench("publish", str(tmp_path / "missing"), "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "no such results folder" in r.stderr
    (tmp_path / "empty").mkdir()
    r = gwbench("publish", str(tmp_path / "empty"), "--out", str(tmp_path / "s"))
    assert r.returncode == 2 and "no readable gwbench run" in r.stderr
    make_run(tmp_path / "res", "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    r = gwbench("publish", str(tmp_path / "res"), "--out", str(blocker / "site"), "--figures", "none")
    assert r.returncode == 2 and "cannot write the site" in r.stderr and "Traceback" not in r.stderr


def test_each_figure_writes_png_and_svg(tmp_path):
    run = make_run(tmp_path, "fig")
    from harness.core.store import load_run

    meta, rs = load_run(run)
    for name, fn in figures.RUN_FIGURES:
        paths = fn(meta, rs, tmp_path / "f" / name)
        assert [p.suffix for p in paths] == [".png", ".svg"], name
        assert all(p.stat().st_size > 500 for p in paths), name
    assert len(figures.power_trace(run, tmp_path / "f" / "power")) == 2
    assert len(figures.projection_generations(tmp_path / "f" / "proj", samples=2000)) == 2
    assert figures.gemm_vs_size(meta, [], tmp_path / "f" / "none") == []  # nothing to draw


def test_readme_index_escapes_a_planted_device_name(tmp_path):
    res = tmp_path / "results"
    make_run(res, "run-x", name="<script>alert(1)</script>GPU")
    runs = publish.load_runs(res)
    text = publish.readme_md(runs, res)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;GPU" in text and "<script" not in text
