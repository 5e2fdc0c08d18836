"""Back-tests: published training runs (harness/data/backtests.toml) predicted by the model.

    load()        the cases: model shape (HF config keys), hardware, layout, recipe settings, the
                  published figure and the source's FLOP formula; a bad file is a one-line error
    split()       the held-out split, deterministic: within each GPU generation the scored cases
                  sorted by id, the 1st, 3rd, 5th ... fit the model, the 2nd, 4th ... are held out
    calibrate()   per generation, the ONE fitted figure (layer-GEMM efficiency, perfmodel.toml
                  `gemm_eff`): the value minimising the squared log error of the fit half; and the
                  model's p5-p95 band (`band`): the prediction interval of a new case from the fit
                  half's residuals
    run()         every case predicted with the fitted set, error against the published figure,
                  whether the published figure lies inside the prediction's p5-p95, summaries

Settings a source does not state are settled by one rule (`settle`): micro-batch 1; no recompute
if the layout fits without it, else selective, else full; the fastest interleaving that fits.

Errors are on throughput (tokens/s per GPU), which is what every published figure converts to with
the source's own FLOP formula (`FORMULAS`); MFU is printed under gwbench's convention. No torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.analysis.perfmodel import inputs
from harness.analysis.perfmodel import profile as prof_mod
from harness.analysis.perfmodel import step as stepmod
from harness.core import specs
from harness.core.errors import UsageError
from harness.core.tomlfile import read_toml
from harness.core.models import Transformer, from_config

SCHEMA_VERSION = 1
TOLERANCE = 0.15  # the figure: every case within +-15%
STATUSES = ("scored", "flagged")
METRICS = ("tokens_per_s_per_gpu", "iteration_time_s", "tflops_per_gpu", "mfu")
UNSTATED = ("vpp", "micro_batch", "recompute")
EFF_BOUNDS = (0.2, 1.0)


# ---------------------------------------------------------------- the sources' FLOP formulas (per token)


def _megatron2021_hfu(m: Transformer, s: int) -> float:
    """Narayanan et al. 2021 eq. (3), per token: 96*l*h^2*(1 + s/6h + V/16lh) (counts one recompute
    forward; Megatron-DeepSpeed, BLOOM and MT-NLG use the same)."""
    h, l, v = m.d_model, m.layers, m.vocab
    return 96.0 * l * h * h * (1 + s / (6 * h) + v / (16 * l * h))


def _megatron_mfu(m: Transformer, s: int) -> float:
    """Korthikanti et al. 2022 model FLOPs per token: 72*l*h^2*(1 + s/6h + V/12lh)."""
    h, l, v = m.d_model, m.layers, m.vocab
    return 72.0 * l * h * h * (1 + s / (6 * h) + v / (12 * l * h))


def _megatron_core_2024(m: Transformer, s: int) -> float:
    """Megatron-LM training.py num_floating_point_operations (2024), per token:
    12*l*h^2*[(1 + g/a + s/h)*(q/h) + (f/h)*k*(3/2 if gated) + V/(2lh)], attention not halved."""
    h, l, v = m.d_model, m.layers, m.vocab
    q = m.heads * m.head_dim
    gl = 1.5 if m.gated_mlp else 1.0
    return 12.0 * l * h * h * ((1 + m.kv_heads / m.heads + s / h) * (q / h) + (m.ffn / h) * m.top_k * gl
                               + v / (2 * l * h))


FORMULAS: dict[str, Callable[[Transformer, int], float]] = {
    "megatron2021_hfu": _megatron2021_hfu,
    "megatron_mfu": _megatron_mfu,
    "megatron_core_2024": _megatron_core_2024,
    "gwbench": stepmod.model_flop_per_token,  # where the source states none (said in `inferred`)
}


# ---------------------------------------------------------------- the data


@dataclass(frozen=True)
class Case:
    id: str
    status: str
    flag: str
    source: str
    citation: str
    hardware: str
    model: Transformer
    layout: stepmod.Layout
    unstated: tuple[str, ...]
    published: dict[str, Any] = field(compare=False)
    inferred: tuple[str, ...] = ()
    conversion: str = ""

    @property
    def scored(self) -> bool:
        return self.status == "scored"

    def published_tokens(self) -> float:
        """The published figure as tokens/s per GPU, with the source's own FLOP formula."""
        p, lay = self.published, self.layout
        metric, value = p["metric"], float(p["value"])
        if metric == "tokens_per_s_per_gpu":
            return value
        if metric == "iteration_time_s":
            return lay.batch_tokens / (value * lay.gpus)
        flop = FORMULAS[p["formula"]](self.model, lay.seq)
        if metric == "tflops_per_gpu":
            return value * 1e12 / flop
        peak = float(p.get("peak_tflops", specs.lookup(self.hardware).peak("bf16").value))
        return value * peak * 1e12 / flop  # mfu

    def describe_published(self) -> str:
        p = self.published
        unit = {"tokens_per_s_per_gpu": " tok/s/GPU", "iteration_time_s": " s/step", "tflops_per_gpu": " TFLOP/s/GPU"}
        if p["metric"] == "mfu":
            return f"MFU {float(p['value']):.1%}"
        return f"{float(p['value']):g}{unit[p['metric']]}"


def default_path() -> Path:
    return Path(str(resources.files("harness.data").joinpath("backtests.toml")))


def _req(d: dict, key: str, kind, where: str):
    if key not in d:
        raise UsageError(f"{where}: {key}: required")
    v = d[key]
    if kind is int and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
        raise UsageError(f"{where}: {key}: must be a whole number >= 1, got {v!r}")
    if kind is bool and not isinstance(v, bool):
        raise UsageError(f"{where}: {key}: must be true or false, got {v!r}")
    if kind is str and (not isinstance(v, str) or not v.strip()):
        raise UsageError(f"{where}: {key}: must be a non-empty string")
    return v


def _case(raw: dict[str, Any], where: str) -> Case:
    cid = _req(raw, "id", str, where)
    where = f"{where} {cid}"
    status = _req(raw, "status", str, where)
    if status not in STATUSES:
        raise UsageError(f"{where}: status: must be one of {', '.join(STATUSES)}, got {status!r}")
    flag = raw.get("flag", "")
    if status == "flagged" and not flag:
        raise UsageError(f"{where}: flag: a flagged case must say why")
    model = from_config(raw.get("model"), cid, f"{where} [case.model]")
    prec = _req(raw, "precision", str, where)
    if prec not in ("bf16", "fp16", "fp8"):
        raise UsageError(f"{where}: precision: must be bf16, fp16 or fp8, got {prec!r}")
    unstated = tuple(k for k in UNSTATED if k not in raw)
    seq = _req(raw, "seq", int, where)
    lay = stepmod.Layout(
        gpus=_req(raw, "gpus", int, where), tp=_req(raw, "tp", int, where), pp=_req(raw, "pp", int, where),
        cp=_req(raw, "cp", int, where), vpp=raw.get("vpp", 1), micro_batch=raw.get("micro_batch", 1), seq=seq,
        batch_tokens=_req(raw, "global_batch", int, where) * seq, zero=raw.get("zero", 1),
        recompute=raw.get("recompute", "none"), precision="fp8" if prec == "fp8" else "bf16",
        sequence_parallel=_req(raw, "sequence_parallel", bool, where), first_last_layers=raw.get("first_last_layers", 0),
        attention=raw.get("attention", "flash"), tp_overlap=_req(raw, "tp_overlap", bool, where),
        dp_overlap=_req(raw, "dp_overlap", bool, where), grad_fp32=_req(raw, "grad_fp32", bool, where))
    try:
        stepmod.check(model, lay)
    except UsageError as exc:
        raise UsageError(f"{where}: layout: {exc}") from None
    pub = raw.get("published")
    if not isinstance(pub, dict) or pub.get("metric") not in METRICS or not isinstance(pub.get("value"), (int, float)):
        raise UsageError(f"{where}: [case.published]: needs metric ({', '.join(METRICS)}) and a numeric value")
    if pub["metric"] in ("tflops_per_gpu", "mfu") and pub.get("formula") not in FORMULAS:
        raise UsageError(f"{where}: [case.published] formula: a FLOP figure needs the source's formula "
                         f"({', '.join(FORMULAS)})")
    specs.lookup(_req(raw, "hardware", str, where))
    return Case(cid, status, flag, _req(raw, "source", str, where), _req(raw, "citation", str, where),
                raw["hardware"], model, lay, unstated, pub, tuple(raw.get("inferred", ())), raw.get("conversion", ""))


@lru_cache(maxsize=4)
def load(path: str | None = None) -> tuple[tuple[Case, ...], tuple[dict[str, str], ...]]:
    """(cases, not_used) of the back-test file; a bad file is a one-line UsageError."""
    p = Path(path) if path else default_path()
    raw = read_toml(p, "back-test table")
    if raw.get("schema_version") != SCHEMA_VERSION:
        raise UsageError(f"{p}: schema_version: expected {SCHEMA_VERSION}, found {raw.get('schema_version')!r}")
    cases = tuple(_case(c, str(p)) for c in raw.get("case", []))
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        raise UsageError(f"{p}: case ids must be unique")
    return cases, tuple(raw.get("not_used", []))


def generation(case: Case) -> str:
    return inputs.for_accelerator(specs.lookup(case.hardware).key)[0].key


def split(cases: Sequence[Case]) -> tuple[list[Case], list[Case]]:
    """(fit, held out): within each generation the scored cases sorted by id, alternately."""
    fit, held = [], []
    by_gen: dict[str, list[Case]] = {}
    for c in cases:
        if c.scored:
            by_gen.setdefault(generation(c), []).append(c)
    for _, group in sorted(by_gen.items()):
        for i, c in enumerate(sorted(group, key=lambda c: c.id)):
            (fit if i % 2 == 0 else held).append(c)
    return fit, held


# ---------------------------------------------------------------- predicting a case


def profile_for(case: Case, gemm_eff: float | None = None) -> prof_mod.Profile:
    """The spec profile of the case's hardware in its precision; `gemm_eff` replaces the
    generation's fitted bf16 layer-GEMM efficiency (fp8 scaled as perfmodel.toml says)."""
    table = specs.load()
    acc = table.lookup(case.hardware)
    p = prof_mod.from_spec(acc, table, case.layout.precision)
    if gemm_eff is None:
        return p
    k, _ = prof_mod.gemm_dtype_scale(acc, case.layout.precision)
    return replace(p, gemm_eff=min(gemm_eff * k, 1.0))


def settle(model: Transformer, lay: stepmod.Layout, p: prof_mod.Profile, unstated: Sequence[str]
           ) -> stepmod.Result:
    """The prediction, settling what the source leaves unstated by one rule: micro-batch 1 (the
    Layout default); no recompute if the layout fits without it, else selective, else full; the
    fastest interleaving that fits. Nothing fits: the stated layout, predicted and marked not fitting."""
    if not unstated:
        return stepmod.step(model, lay, p, require_fit=False)
    plan = stepmod.stage_plan(model, lay.pp, lay.first_last_layers) or [model.layers]
    vs = ([v for v in range(1, max(plan) + 1) if max(plan) % v == 0 and (v == 1 or lay.pp > 1)]
          if "vpp" in unstated else [lay.vpp])
    rcs = stepmod.RECOMPUTE if "recompute" in unstated else (lay.recompute,)
    for rc in rcs:
        best = None
        for v in vs:
            cand = replace(lay, vpp=v, recompute=rc)
            try:
                stepmod.check(model, cand)
            except UsageError:
                continue
            if not stepmod.fits(model, cand, p):
                continue
            r = stepmod.step(model, cand, p, require_fit=False)
            if best is None or r.step_s < best.step_s:
                best = r
        if best is not None:
            return best
    return stepmod.step(model, lay, p, require_fit=False)


def predict(case: Case, gemm_eff: float | None = None) -> stepmod.Result:
    return settle(case.model, case.layout, profile_for(case, gemm_eff), case.unstated)


def _log_err(case: Case, eff: float) -> float:
    return math.log(predict(case, eff).tokens_per_s_per_gpu / case.published_tokens())


def _golden(f: Callable[[float], float], lo: float, hi: float, iters: int = 40) -> float:
    g = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


# One-sided 95% quantiles of Student's t by degrees of freedom (any statistics table); past 30: 1.645.
T95 = {1: 6.314, 2: 2.920, 3: 2.353, 4: 2.132, 5: 2.015, 6: 1.943, 7: 1.895, 8: 1.860, 9: 1.833, 10: 1.812,
       11: 1.796, 12: 1.782, 13: 1.771, 14: 1.761, 15: 1.753, 16: 1.746, 17: 1.740, 18: 1.734, 19: 1.729,
       20: 1.725, 21: 1.721, 22: 1.717, 23: 1.714, 24: 1.711, 25: 1.708, 26: 1.706, 27: 1.703, 28: 1.701,
       29: 1.699, 30: 1.697}


@dataclass(frozen=True)
class Fit:
    generation: str
    gemm_eff: float
    band: float  # p5-p95 half-width of a new case's log error (prediction interval)
    cases: tuple[str, ...]
    residuals: tuple[float, ...]  # log(predicted / published) of the fit cases at gemm_eff

    def to_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "gemm_eff": self.gemm_eff, "band": self.band,
                "cases": list(self.cases), "residuals": list(self.residuals)}


def prediction_band(residuals: Sequence[float]) -> float:
    """Half-width, in log throughput, of the p5-p95 prediction interval of a new case from the fit
    cases' log errors: t(0.95, n-1) x s x sqrt(1 + 1/n), s the RMS error with n-1 degrees of freedom
    (the textbook interval for a new observation; Student's t widens it for few cases)."""
    n = len(residuals)
    if n < 2:
        raise UsageError(f"a generation needs at least 2 fit cases for its prediction band, has {n}")
    s = math.sqrt(sum(r * r for r in residuals) / (n - 1))
    return T95.get(n - 1, 1.645) * s * math.sqrt(1 + 1 / n)


def calibrate(fit_cases: Sequence[Case]) -> dict[str, Fit]:
    """Per generation: the layer-GEMM efficiency minimising the fit half's squared log error,
    and the prediction band of its residuals."""
    by_gen: dict[str, list[Case]] = {}
    for c in fit_cases:
        by_gen.setdefault(generation(c), []).append(c)
    out = {}
    for gen, group in sorted(by_gen.items()):
        eff = round(_golden(lambda e: sum(_log_err(c, e) ** 2 for c in group), *EFF_BOUNDS), 3)
        res = tuple(_log_err(c, eff) for c in group)
        out[gen] = Fit(gen, eff, round(prediction_band(res), 3), tuple(c.id for c in group), res)
    return out


# ---------------------------------------------------------------- the table


def run(path: str | None = None) -> dict[str, Any]:
    cases, not_used = load(path)
    fit_cases, held = split(cases)
    fits = calibrate(fit_cases)
    half = {c.id: "fit" for c in fit_cases} | {c.id: "held-out" for c in held}
    shipped = inputs.load()
    rows = []
    for c in cases:
        gen = generation(c)
        f = fits.get(gen)
        eff = f.gemm_eff if f else shipped[gen].gemm_eff.mode
        band = f.band if f else shipped[gen].band.mode
        r = predict(c, eff)
        lo, hi = r.tokens_per_s_per_gpu * math.exp(-band), r.tokens_per_s_per_gpu * math.exp(band)
        pub = c.published_tokens()
        err = r.tokens_per_s_per_gpu / pub - 1
        rows.append({
            "id": c.id, "status": c.status, "flag": c.flag, "source": c.source, "citation": c.citation,
            "hardware": c.hardware, "generation": gen, "gpus": c.layout.gpus, "half": half.get(c.id, ""),
            "published": c.describe_published(), "published_tokens_per_s_per_gpu": pub,
            "published_mfu": pub * r.mfu / r.tokens_per_s_per_gpu,  # gwbench's convention
            "predicted_tokens_per_s_per_gpu": r.tokens_per_s_per_gpu, "predicted_mfu": r.mfu,
            "low_tokens_per_s_per_gpu": lo, "high_tokens_per_s_per_gpu": hi,
            "error": err, "inside": lo <= pub <= hi,
            "fits": r.fits, "memory_gb": sum(r.memory_gb.values()), "hbm_gb": r.hbm_gb,
            "layout": r.layout.describe(), "settled": list(c.unstated), "inferred": len(c.inferred)})
    return {"kind": "gwbench.backtest", "schema_version": 1, "rows": rows,
            "fits": {g: f.to_dict() for g, f in fits.items()},
            "shipped": {g: {"gemm_eff": s.gemm_eff.mode, "band": s.band.mode} for g, s in shipped.items()},
            "summary": {k: summarise([r for r in rows if r["status"] == "scored" and (k == "all" or r["half"] == k)])
                        for k in ("all", "fit", "held-out")},
            "flagged": summarise([r for r in rows if r["status"] == "flagged"]),
            "not_used": [dict(n) for n in not_used],
            "split_rule": "within each GPU generation the scored cases sorted by id: 1st, 3rd, ... fit; "
                          "2nd, 4th, ... held out",
            "settle_rule": "unstated settings: micro-batch 1; no recompute if the layout fits without it, else "
                           "selective, else full; the fastest interleaving that fits",
            "convention": stepmod.MFU_CONVENTION}


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    if not rows:
        return {"cases": 0}
    errs = [abs(r["error"]) for r in rows]
    return {"cases": len(rows), "median_abs_error": statistics.median(errs), "max_abs_error": max(errs),
            "within_tolerance": sum(e <= TOLERANCE for e in errs), "inside_range": sum(r["inside"] for r in rows),
            "refused_for_memory": sum(not r["fits"] for r in rows), "sources": len({r["source"] for r in rows}),
            "generations": sorted({r["generation"] for r in rows})}
