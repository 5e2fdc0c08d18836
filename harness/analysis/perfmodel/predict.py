"""Layout search, uncertainty ranges and site goodput for the performance model; the MFU and
goodput `gwbench project --model` takes from it. Rendering is present/model.py."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from harness.analysis import projection
from harness.analysis.perfmodel import goodput as gpmod
from harness.analysis.perfmodel import inputs
from harness.analysis.perfmodel import profile as prof_mod
from harness.analysis.perfmodel import step as stepmod
from harness.core import specs
from harness.core.errors import UsageError

def mfu_range(model, lay: stepmod.Layout, p: prof_mod.Profile) -> projection.Range:
    """MFU at the point and the model's p5-p95: the calibration's prediction band of the profile's
    generation (harness/data/perfmodel.toml `band`, fitted with `gemm_eff` on the back-tests' fit
    half: the interval a new published run's throughput fell in), applied to the throughput."""
    mid = stepmod.step(model, lay, p, require_fit=False).mfu
    gen = inputs.load().get(p.generation) or inputs.for_accelerator("")[0]
    band = gen.band.mode
    return projection.Range(mid * math.exp(-band), mid, min(mid * math.exp(band), 1.0),
                            f"gwbench model {model.name} {lay.describe()} on {p.name} ({p.source}); p5-p95 = "
                            f"x exp(+-{band:.3f}), {gen.name}'s back-test prediction band")


def _divisors(n: int, cap: int) -> list[int]:
    return [d for d in range(1, min(n, cap) + 1) if n % d == 0]


def search(model, base: stepmod.Layout, p: prof_mod.Profile) -> tuple[stepmod.Result, int, int]:
    """The fastest layout that fits: (result, layouts tried, layouts that fit). TP stays inside
    an NVLink domain (<= 8, dividing the heads); CP, PP, virtual stages, micro-batch, ZeRO stage and
    recomputation are searched; DP is what remains; the recipe settings (sequence parallelism,
    attention kernel, overlaps, gradient dtype) are `base`'s."""
    stepmod.check_positive(base)
    best, tried, fit = None, 0, 0
    seqs = base.batch_tokens // base.seq
    tp_cap = min(prof_mod.GPUS_PER_NODE, p.node_gpus)
    for tp in _divisors(tp_cap, tp_cap):
        for cp in [c for c in (1, 2, 4, 8, 16, 32) if base.seq % c == 0 and base.seq // c >= 1024]:
            if base.gpus % (tp * cp):
                continue  # no data-parallel degree fits: DP would be 0 or fractional
            for pp in _divisors(base.gpus // (tp * cp), 128):
                layers = stepmod.stage_layers(model, pp, base.first_last_layers)
                if layers is None:
                    continue
                dp = base.gpus // (tp * cp * pp)
                for mb in (1, 2, 4):
                    if seqs % (dp * mb):
                        continue
                    for v in [x for x in (1, 2, 4, 8) if layers % x == 0 and (x == 1 or pp > 1)]:
                        for zero in (1, 2, 3):
                            for rc in stepmod.RECOMPUTE:
                                lay = replace(base, tp=tp, cp=cp, pp=pp, vpp=v, micro_batch=mb,
                                              zero=zero, recompute=rc)
                                tried += 1
                                try:
                                    stepmod.check(model, lay)
                                except UsageError:
                                    continue
                                fullest = stepmod.fullest_stage(model, lay)  # once: the fit, then the step
                                if sum(fullest[1].values()) * 1e9 > p.hbm_bytes:
                                    continue
                                fit += 1
                                r = stepmod.step(model, lay, p, require_fit=False, fullest=fullest)
                                if best is None or r.step_s < best.step_s:
                                    best = r
    if best is None:
        raise UsageError(f"no layout of {model.name} on {base.gpus} GPUs fits in "
                         f"{p.hbm_bytes / 1e9:.1f} GB (1e9 B) per GPU ({tried} tried)")
    return best, tried, fit


def site_goodput(hardware: str | None, table: specs.HardwareTable, params: float,
                 sites_w=projection.DEFAULT_SITES_W) -> list[dict[str, Any]]:
    """Goodput of one synchronous job of a `params`-parameter model on the whole cluster a 1 GW /
    10 GW site implies (accelerator count from harness.analysis.projection's chain at its default
    assumptions; `gwbench project` finds the job size that trains the most instead)."""
    basis = projection.from_spec(hardware or "h100", table)
    out = []
    for w in sites_w:
        n = projection.project(basis, projection.Assumptions(samples=1), sites_w=[w])["sites"][0]
        gpus = n["outputs"]["accelerators"]["point"]
        lo, mid, hi = gpmod.goodput_range(gpus, params)
        out.append({"site": projection.format_power(w), "accelerators": gpus, "point": mid.to_dict(),
                    "low": lo.goodput, "high": hi.goodput})
    return out


def layout_shapes(model, lay: stepmod.Layout) -> list[tuple[int, int, int]]:
    """The (m, n, k) GEMMs one training layer and the output head run per GPU in this layout
    (forward, dgrad, wgrad): what `gwbench run --only gemm --model ... --tp --micro-batch --seq`
    measures."""
    tokens = lay.micro_batch * lay.seq // lay.cp
    gemms = model.layer_gemms(tokens, lay.tp, moe=False)
    if model.moe:
        gemms += model.layer_gemms(tokens, lay.tp, moe=True)
    gemms.append(model.head_gemm(tokens, lay.tp))
    shapes = []
    for _, m, n, k, _c in gemms:
        for shape in ((m, n, k), (m, k, n), (k, n, m)):
            if shape not in shapes:
                shapes.append(shape)
    return shapes


def measured_shapes(model, lay: stepmod.Layout, p: prof_mod.Profile) -> dict[str, int]:
    """How many of the layout's GEMM shapes the profile measured exactly (the rest interpolated)."""
    shapes = layout_shapes(model, lay)
    have = {(m, n, k) for m, n, k, _ in p.gemm_points}
    return {"exact": sum(s in have for s in shapes), "of": len(shapes)}


def result_dict(model, r: stepmod.Result, p: prof_mod.Profile, mfu: projection.Range, gp: gpmod.Goodput,
                sites: list[dict[str, Any]], search_info: dict[str, int] | None) -> dict[str, Any]:
    return {"kind": "gwbench.perfmodel", "schema_version": 1, "model": model.name,
            "params": model.params(), "active_params": model.params(active=True),
            "result": r.to_dict(), "mfu_range": mfu.to_dict(), "profile": p.to_dict(),
            "layer_shapes": measured_shapes(model, r.layout, p) if p.gemm_points else None,
            "goodput": gp.to_dict(), "sites": sites, "search": search_info}


def predicted_assumptions(preset: str, basis: projection.Basis, a: projection.Assumptions,
                          table: specs.HardwareTable, run_dir, job_gpus: int, dtype: str = "bf16"):
    """`gwbench project --model`: MFU and goodput from the performance model replace the
    defaults (basis, assumptions, note). MFU: the fastest fitting layout of `preset` on
    `job_gpus` GPUs, p5-p95 from the back-tests' prediction band; goodput: Young/Daly at the job
    size (a site runs many such jobs), range from the failure-rate, storage and restart ranges (harness/data/onerun.toml).
    The measured-efficiency scaling of the basis is dropped: the model already used the run's rates."""
    model = stepmod.preset(preset)
    if job_gpus < 1:
        raise UsageError(f"--job-gpus must be >= 1, got {job_gpus}")
    # A projection needs every rate: what the run did not measure (a one-GPU run has no
    # collectives) comes from the run's own spec entry and the note lists it as assumed.
    prof = (prof_mod.from_run(run_dir, table, dtype, fill=basis.accelerator.name) if run_dir
            else prof_mod.from_spec(basis.accelerator, table, dtype))
    best, _, _ = search(model, stepmod.Layout(job_gpus, seq=8192, batch_tokens=16 * 2**20), prof)
    mfu = mfu_range(model, best.layout, prof)
    lo, mid, hi = gpmod.goodput_range(job_gpus, model.params())
    gp = projection.Range(max(lo.goodput, 0.01), max(mid.goodput, 0.01), max(hi.goodput, 0.01),
                          f"gwbench model: Young/Daly at {job_gpus:,} GPUs per job ({gpmod.RATE.source})")
    a = replace(a, mfu=mfu, goodput=gp)
    basis = replace(basis, mfu_scale=1.0, mfu_rule=f"MFU predicted by gwbench model ({mfu.source}), not the default")
    measured = "; ".join(prof.measured) or "nothing (spec profile)"
    assumed = "; ".join(prof.assumed) or "nothing"
    note = (f"MFU and goodput predicted by gwbench model for {model.name}, {best.layout.describe()} "
            f"on {job_gpus:,} GPUs ({prof.source} profile; calibrated on published runs, p5-p95 band "
            f"from the back-tests) — they replace the defaults; measured: {measured}; assumed: {assumed}")
    return basis, a, note
