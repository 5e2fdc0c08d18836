"""compare: marks on crafted runs, Mann-Whitney U, and the one-line errors."""

from __future__ import annotations

import random

import pytest

from harness.analysis import compare
from harness.core.errors import UsageError
from harness.present.compare import render_html, render_md
from harness.present.escape import md
from harness.core.store import SCHEMA_VERSION, RunStore
from tests.conftest import gwbench


def row(cid, median, status="ok", flop=2e9, jitter=0.01, seed=0, dtype="bf16", power=None, short=False):
    rng = random.Random(seed)
    samples = [median * (1 + rng.uniform(-jitter, jitter)) for _ in range(30)] if status == "ok" else None
    t = sorted(samples)[15] if samples else None
    tf = flop / t / 1e12 if t else None
    return {"schema_version": SCHEMA_VERSION, "case_id": cid, "family": "gemm", "op": "matmul",
            "dtype": dtype, "backend": "torch", "params": {"m": 1, "n": 1, "k": 1}, "status": status,
            "samples_s": samples, "time_s": t, "flop": flop, "bytes": 1e6, "tflops": tf,
            "power_w": power, "tflops_per_w": tf / power if tf and power else None,
            "power_source": "nvml:energy_counter" if power else "unavailable: test",
            "telemetry_short_window": short, "error": "boom" if status == "failed" else None}


def meta(name="NVIDIA H100 80GB HBM3", rid="a"):
    return {"schema_version": SCHEMA_VERSION, "run_id": rid,
            "device": {"name": name, "backend": "cuda", "count": 1, "software": {"torch": "2.11"}}}


def marks(result):
    return {c["case_id"]: c["mark"] for c in result["cases"]}


def test_mann_whitney_matches_known_values():
    # Fully separated samples of 5 and 5: U = 0; the normal approximation with continuity
    # correction gives z = (12.5 - 0.5) / sqrt(22.9167) = 2.5067, two-sided p = 0.0122.
    u, p = compare.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert u == 0 and p == pytest.approx(0.01219, abs=2e-4)
    u, p = compare.mann_whitney_u([1, 2, 3], [1, 2, 3])
    assert u == 4.5 and p == 1.0


def test_marks_on_crafted_runs():
    a = [row("fast", 1.0, seed=1), row("noise", 1.0, jitter=0.2, seed=2), row("breaks", 1.0, seed=3),
         row("fixed", 1.0, status="failed"), row("skip", 1.0, status="skipped"),
         row("redefined", 1.0, seed=4), row("gone", 1.0), row("slower", 1.0, seed=5)]
    b = [row("fast", 0.5, seed=6), row("noise", 1.02, jitter=0.2, seed=7), row("breaks", 1.0, status="failed"),
         row("fixed", 1.0, seed=8), row("skip", 1.0, seed=9), row("redefined", 1.0, flop=4e9, seed=10),
         row("new", 1.0), row("slower", 1.3, seed=11)]
    res = compare.compare_runs((meta(), a), (meta(rid="b"), b))
    assert marks(res) == {"fast": "better", "noise": "same", "breaks": "newly failing", "fixed": "fixed",
                          "skip": "not comparable", "redefined": "not comparable", "gone": "only in A",
                          "new": "only in B", "slower": "worse"}
    fast = next(c for c in res["cases"] if c["case_id"] == "fast")
    assert fast["ratio"] == pytest.approx(2.0, rel=0.03)
    assert res["same_hardware"] and res["families"]["gemm"]["marks"]["better"] == 1


def test_different_hardware_shows_spec_ratio_and_per_watt():
    a = [row("g", 1.0, seed=1, power=700)]
    b = [row("g", 0.5, seed=2, power=1000)]
    res = compare.compare_runs((meta(), a), (meta("NVIDIA B200", "b"), b))
    fam = res["families"]["gemm"]
    assert not res["same_hardware"]
    assert fam["vs_spec"]["bf16"]["spec"] == pytest.approx(2250 / 989)
    assert fam["vs_spec"]["bf16"]["measured"] == pytest.approx(2.0, rel=0.03)
    assert fam["perf_per_w_ratio"] == pytest.approx(2.0 * 700 / 1000, rel=0.03)
    assert "spec ratio" in render_md(res)


def test_per_watt_ratio_never_from_a_short_window():
    """A row written before the per-watt rule may hold tflops_per_w from a 0.1 s window (an H200 read
    1371 W there against its 700 W cap): compare must not use it."""
    a = [row("g", 1.0, seed=1, power=700, short=True)]
    b = [row("g", 0.5, seed=2, power=1000)]
    res = compare.compare_runs((meta(), a), (meta("NVIDIA B200", "b"), b))
    assert a[0]["tflops_per_w"] and res["families"]["gemm"]["perf_per_w_ratio"] is None


def test_unstable_run_gets_no_verdict():
    a = [row("fast", 1.0, seed=1)]
    b = [row("fast", 0.5, seed=2)]
    shaky = meta(rid="b") | {"unstable": True, "stability": {"ratio": 170.0}}
    res = compare.compare_runs((meta(), a), (shaky, b))
    (case,) = res["cases"]
    assert case["mark"] == "not comparable" and case["ratio"] == pytest.approx(2.0, rel=0.03)
    assert "run B unstable (reference kernel 170x apart" in case["how"]
    assert "UNSTABLE" in render_md(res)
    assert marks(compare.compare_runs((meta(), a), (meta(rid="b"), b))) == {"fast": "better"}


def test_errors(tmp_path):
    with pytest.raises(UsageError, match="no case in common"):
        compare.compare_runs((meta(), [row("x", 1)]), (meta(rid="b"), [row("y", 1)]))
    other = meta(rid="b") | {"schema_version": 99}
    with pytest.raises(UsageError, match="schema versions"):
        compare.compare_runs((meta(), [row("x", 1)]), (other, [row("x", 1)]))
    r = gwbench("compare", str(tmp_path / "nope"), str(tmp_path / "nope2"))
    assert r.returncode == 2 and "no such run folder" in r.stderr and "Traceback" not in r.stderr


def test_cli_compare(tmp_path):
    dirs = []
    for rid, rows in (("a", [row("x", 1.0, seed=1)]), ("b", [row("x", 0.5, seed=2)])):
        s = RunStore.create(tmp_path, rid, {"device": meta()["device"]})
        for r in rows:
            s.append(r)
        dirs.append(str(s.dir))
    r = gwbench("compare", *dirs)
    assert r.returncode == 0 and "+ better" in r.stdout, r.stderr
    assert gwbench("compare", *dirs, "--format", "json").stdout.lstrip().startswith("[")
    alone = gwbench("compare", dirs[0])
    assert alone.returncode == 2 and "two or more" in alone.stderr


def test_pairings_only_put_runs_with_enough_in_common_side_by_side():
    from harness.analysis.compare import pairings, worth_comparing
    from tests.conftest import built_row, gemm_row

    gemm = [gemm_row(700.0 + i, n=1024 * (i + 1)) for i in range(8)]
    h200_mem = [built_row("memory", op, "fp32", {"n": 1 << 28}, nbytes=3 << 30, time_s=1e-3) for op in
                ("copy", "scale", "add", "triad", "dot")]
    cpu_mem = [built_row("memory", op, "fp32", {"n": 1 << 25}, nbytes=3 << 27, time_s=1e-3) for op in
               ("copy", "scale", "add", "triad", "dot")]
    standard = gemm + h200_mem  # a standard suite holds the GEMM run's cases and more
    assert worth_comparing(gemm, standard) and not worth_comparing(h200_mem, cpu_mem)
    assert not worth_comparing(gemm[:3], gemm[:3])  # 3 cases in common say nothing
    runs = [("a", "H200", gemm), ("b", "H200", h200_mem), ("c", "H200", standard), ("d", "CPU", cpu_mem)]
    p = pairings(runs)
    assert p["same"] == [(1, 2)]  # c against the latest earlier run it shares enough with: b
    assert p["across"] == []  # the CPU memory run shares no case with the H200 runs
    assert any(line.startswith("b: no earlier H200 run") for line in p["left_out"])
    assert any(line.startswith("d (CPU) vs c (H200): too few cases") for line in p["left_out"])


def test_p_values_print_as_a_statistician_writes_them():
    assert [compare.p_text(p) for p in (0.0, 3e-300, 9.9e-7, 4.14e-6, 0.00018, 0.0028, 0.5, 1.0)] == [
        "p < 1e-6", "p < 1e-6", "p < 1e-6", "p = 4.1e-6", "p = 0.00018", "p = 0.0028", "p = 0.5", "p = 1"]
    # 2000 fully separated samples a side: z ~ 55, where erfc underflows to 0.0
    a, b = row("g", 1.0, seed=1), row("g", 0.5, seed=2)
    a["samples_s"], b["samples_s"] = [1.0 + i * 1e-6 for i in range(2000)], [0.5 + i * 1e-6 for i in range(2000)]
    assert compare.mann_whitney_u(a["samples_s"], b["samples_s"])[1] == 0.0
    res = compare.compare_runs((meta(), [a]), (meta(rid="b"), [b]))
    assert res["cases"][0]["how"] == "Mann-Whitney p < 1e-6"
    text, page = render_md(res), render_html(res)
    assert "| Mann-Whitney p < 1e-6 |" in text and "<td>Mann-Whitney p &lt; 1e-6</td>" in page
    assert "p=0" not in text + page


def test_markdown_for_people_has_no_entities_from_our_own_text():
    """compare's Markdown is read in a terminal: "skipped → skipped", not "skipped -&gt; skipped";
    untrusted text is still kept from opening HTML or a link."""
    res = compare.compare_runs((meta(), [row("s", 1.0, status="skipped"), row("x", 1.0, seed=1)]),
                               (meta(rid="b"), [row("s", 1.0, status="skipped"), row("x", 1.0, seed=2)]))
    text = render_md(res)
    assert "status skipped → skipped" in text and "&gt;" not in text and "&lt;" not in text
    assert md("p < 1e-6") == "p < 1e-6" and md("x <") == "x <"
    for evil in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "<javascript:alert(1)>",
                 "<a@evil.example>", "</p>", "<!-- x -->", "[x](javascript:alert(1))"):
        assert "<" not in md(evil) and "](" not in md(evil), evil
