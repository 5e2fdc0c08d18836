"""What `gwbench run` prints: the summary and the projection fit 80, 100 and 160 columns, name
their statistic, show busbw for collectives, group skipped cases by reason, and say why power
is missing; the progress label and its ETA weights."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from harness.analysis.projection import REFERENCE_GENERATIONS, generations
from harness.core.cases import Case
from harness.present.progress import (Progress, case_label, print_next_steps, print_summary,
                                      skipped_lines)
from harness.present.projection import print_run_projection
from tests.conftest import built_row, gemm_row


def _rows():
    rows = [gemm_row(742.0, n=4096, power_w=690.0), gemm_row(500.0, n=8192, noisy=True, power_w=700.0)]
    rows.append(built_row("attention", "fwd", "bf16", {"batch": 2, "seq": 8192, "heads": 32, "kv_heads": 8,
                                                      "head_dim": 128, "causal": True},
                          backend="sdpa-cudnn", flop=1e12, time_s=2e-3))
    rows.append(built_row("attention", "fwd", "bf16", {"batch": 2, "seq": 8192, "heads": 32, "kv_heads": 8,
                                                      "head_dim": 128, "causal": True},
                          backend="sdpa-flash", flop=1e12, time_s=3e-3))
    rows.append(built_row("collectives", "all_reduce", "bf16", {"size_bytes": 1 << 30, "placement": "in_place"},
                          backend="nccl", world_size=8, nbytes=1 << 30, time_s=5e-3,
                          extra={"size_bytes": 1 << 30, "algbw_gbps": 214.7, "busbw_gbps": 375.8}))
    for dt in ("tf32", "fp8"):
        rows += [built_row("gemm", "matmul", dt, {"m": s, "n": s, "k": s, "data": "randn"}, status="skipped",
                           error=f"{dt} needs a CUDA GPU") for s in (256, 512)]
    rows.append(built_row("gemm", "matmul", "bf16", {"m": 64, "n": 64, "k": 64, "data": "randn"},
                          status="failed", error="wrong result: max relative error 0.5 > tolerance 0.02"))
    return rows


def _render(fn, width: int) -> str:
    buf = io.StringIO()
    fn(Console(file=buf, width=width, force_terminal=False, color_system=None))
    return buf.getvalue()


@pytest.mark.parametrize("width", [80, 100, 160])
def test_summary_fits_the_terminal(width, tmp_path):
    text = _render(lambda c: print_summary(_rows(), tmp_path / "run", c), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "result (median)" in text  # the statistic is named
    assert "busbw 375.8 GB/s" in text  # collectives show busbw, the figure nccl-tests users read
    assert "500 TFLOP/s~" in text  # noisy rows are marked
    assert "failed" in text and "wrong result" in text
    # Skipped cases: one line per reason, not one row per case.
    assert text.count("skipped: gemm tf32 (2 cases): tf32 needs a CUDA GPU") == 1
    assert "skipped: gemm fp8 (2 cases)" in text
    # Two attention backends: the case names each, at every width (rows must not read alike).
    assert "attention fwd sdpa-cudnn" in text and "attention fwd sdpa-flash" in text
    assert "~ noisy: IQR > 10% of the median" in text  # the mark, explained once
    if width >= 100:
        assert " W " in text.splitlines()[2]  # the power column joins


def _one_rank_sweep(op: str, sizes) -> list[dict]:
    return [built_row("collectives", op, "fp32", {"size_bytes": n, "placement": "in_place"}, backend="gloo",
                      world_size=1, nbytes=n, time_s=1e-4,
                      extra={"size_bytes": n, "algbw_gbps": n / 1e-4 / 1e9, "busbw_gbps": 0.0})
            for n in sizes]


def test_one_rank_collectives_show_algbw_at_their_largest_message(tmp_path):
    """busbw is 0 by definition on one rank: the summary shows algbw, says so, and keeps one
    row per sweep (its largest message); the report has the rest."""
    rows = _one_rank_sweep("all_reduce", [1024, 4096, 1 << 20]) + _one_rank_sweep("reduce", [1024, 1 << 20])
    text = _render(lambda c: print_summary(rows, tmp_path, c), 80)
    assert "all_reduce in-place 1 MiB" in text and "algbw 10.49 GB/s (1 rank)" in text
    assert "1 KiB" not in text and "busbw 0" not in text
    assert "collectives: the largest message of each sweep" in text


def test_past_the_limit_each_family_keeps_its_best_rows(tmp_path):
    """Ranking in one unit per family: a family in GB/s is not crowded out by TFLOP/s figures
    that happen to be larger numbers, nor by many collectives."""
    from harness.present.progress import summary_table

    gemms = [gemm_row(float(t), n=256 * (i + 1)) for i, t in enumerate(range(100, 120))]
    mem = [built_row("memory", "triad", "fp32", {"size_bytes": 1 << 27}, backend="torch", nbytes=3 << 27,
                     time_s=t) for t in (0.01, 0.02, 0.04)]
    table = summary_table(gemms + mem, width=160, limit=6)
    cases = [str(c) for c in table.columns[0]._cells]
    assert sum(c.startswith("memory") for c in cases) == 3 and len(cases) == 6
    tflops = [str(c) for c in table.columns[2]._cells][:3]
    assert tflops == ["119 TFLOP/s", "118 TFLOP/s", "117 TFLOP/s"]  # the family's best, best first


def test_long_skip_reasons_wrap_to_two_lines_at_a_word(tmp_path):
    why = "sdpa-cudnn refused this case: " + "no viable backend was found for these inputs " * 6
    rows = [built_row("attention", "fwd", "fp32", {"seq": 128}, backend="sdpa-cudnn", status="skipped", error=why)]
    lines = [ln for ln in _render(lambda c: print_summary(rows, tmp_path, c), 80).splitlines()
             if "skipped:" in ln or ln.startswith("    ")]
    assert len(lines) == 2 and lines[1].endswith("…") and lines[1].startswith("    ")
    assert all(len(ln) <= 80 for ln in lines)


def test_cpu_run_says_why_there_is_no_power(tmp_path):
    rows = [gemm_row(0.2, n=256, dtype="fp32")]
    text = _render(lambda c: print_summary(rows, tmp_path, c), 100)
    assert "no power readings: unavailable: no NVML in this test" in text


@pytest.mark.parametrize("width", [80, 100, 160])
def test_projection_at_the_end_fits_and_uses_the_table_style(width):
    result = generations(keys=REFERENCE_GENERATIONS) | {"fallback_reason": "a CPU run"}
    text = _render(lambda c: print_run_projection(result, c), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "No measured projection (a CPU run)" in text and "H100 SXM" in text
    assert "┃" in text  # rich's box, as the summary


def test_next_steps_name_the_run(tmp_path):
    text = _render(lambda c: print_next_steps(tmp_path / "r1", c), 160)
    assert f"gwbench report {tmp_path / 'r1'}" in text and "gwbench publish" in text


def test_skipped_lines_group_by_family_and_reason():
    rows = _rows()
    assert skipped_lines(rows) == ["gemm tf32 (2 cases): tf32 needs a CUDA GPU",
                                   "gemm fp8 (2 cases): fp8 needs a CUDA GPU"]


def test_progress_label_and_weighted_eta():
    case = Case.make("attention", "fwd", "bf16", backend="sdpa-flash", batch=2, seq=8192, heads=32,
                     kv_heads=8, head_dim=128, causal=True)
    label = case_label(case, width=200)
    assert label.startswith("attention fwd s=8192 d=128 h=32/8 causal") and "sdpa-flash" in label
    assert case_label(case, width=20).startswith("attention fwd") and len(case_label(case, width=20)) == 20
    cheap, dear = Case.make("gemm", "matmul", "bf16", m=8, n=8, k=8), Case.make("gemm", "matmul", "bf16", m=9, n=9, k=9)
    bar = Progress([cheap, dear], Console(file=io.StringIO()), cost_s=lambda c: 5.0 if c is dear else 0.1)
    assert bar._weights == {cheap.id: 0.1, dear.id: 5.0}


def test_run_end_and_project_print_the_same_figures(capsys):
    """One question, one answer: the spec-based table at the end of a CPU run shows H100's point
    and Monte Carlo p50 exactly as `gwbench project --hardware H100` computes them."""
    from harness.analysis import projection
    from harness.present.tables import fmt_value

    gen = projection.generations(keys=("h100",))
    one = projection.project(projection.from_spec("h100"), projection.Assumptions())
    site, out = gen["rows"][0]["sites"][0], one["sites"][0]["outputs"]
    assert site["accelerators"] == pytest.approx(out["accelerators"]["point"])
    assert site["accelerators_mc"]["p50"] == pytest.approx(out["accelerators"]["p50"])
    assert site["flop_per_year_mc"]["p5"] == pytest.approx(out["flop_per_year"]["p5"])
    text = _render(lambda c: print_run_projection(gen | {"fallback_reason": "a CPU run"}, c), 100)
    assert f"{fmt_value(out['accelerators']['point'], 'count')} / {fmt_value(out['accelerators']['p50'], 'count')}" in text


@pytest.mark.parametrize("width", [80, 100])
def test_project_text_fits_a_terminal_and_keeps_every_figure(width):
    """`gwbench project` in a terminal: prose wraps at words, a table too wide is printed one
    site at a time with its labels wrapped; every figure of the unwrapped output is still there."""
    from harness.analysis import projection
    from harness.present.projection import render_projection

    result = projection.project(projection.from_spec("h100"), projection.Assumptions(samples=2000))
    flat, fitted = render_projection(result, "text"), render_projection(result, "text", width=width)
    assert max(len(ln) for ln in flat.splitlines()) > width  # the case this is for
    assert max(len(ln) for ln in fitted.splitlines()) <= width
    assert "1 GW:" in fitted and "10 GW:" in fitted
    figures = {w for ln in flat.splitlines() for w in ln.split() if w[0].isdigit() and ("e" in w or "," in w)}
    assert figures and all(f in fitted for f in figures)


@pytest.mark.parametrize("width", [80, 100, 200])
def test_project_generations_in_a_terminal_fit_and_say_only_what_is_shown(width):
    from harness.present.projection import render_generations

    result = generations(keys=REFERENCE_GENERATIONS)
    text = render_generations(result, "text", width=width)
    assert max(len(ln) for ln in text.splitlines()) <= width and "┃" in text
    # The note on cost columns only where the terminal had room for them.
    assert ("cost columns" in text) == ("$ per EFLOP" in text) == (width >= 200)


@pytest.mark.parametrize("width", [80, 100])
def test_specs_fit_a_terminal_and_keep_every_cell(width):
    """`gwbench specs` in a terminal: text columns wrap at words; a table still too wide is
    printed in parts that each repeat the accelerator; files and pipes keep one line a row."""
    from harness.core import specs
    from harness.present.specs import describe, overview

    table = specs.load()
    for flat, fitted in ((overview(table), overview(table, width=width)),
                         (describe(table.find("H200")), describe(table.find("H200"), width=width))):
        assert max(len(ln) for ln in flat.splitlines()) > width
        assert max(len(ln) for ln in fitted.splitlines()) <= width
        words = lambda text: {w for w in text.split() if w.strip("-") and w != "—"}  # noqa: E731 - rules, fillers
        assert words(flat) == words(fitted)
    assert overview(table, width=width).count("GB300 (per") >= 2  # the name leads each part
