"""Transformer training step time, MFU and memory per GPU from a hardware profile.

An analytical model in the spirit of Calculon (Isaev et al., SC'23) and Megatron's performance
formulas (Narayanan et al., SC'21, "Efficient Large-Scale Language Model Training on GPU Clusters
Using Megatron-LM"), fed by measured or spec rates (profile.py). Per layer and micro-batch, on one GPU:

  GEMMs         forward at the profile's rate for each layer shape (TP-split); backward = dgrad
                + wgrad = 2x forward FLOP, at the rates of the transposed shapes; fp8 recipes run
                the layer GEMMs at the fp8 rate (attention stays bf16)
  attention     flash (FlashAttention-2/3, cuDNN): FlashAttention FLOP convention (Dao 2023,
                arXiv:2307.08691 s4.1): forward 4*b*s_q*s_kv*h*d (2*(d_qk + d_v) with MLA), halved
                when causal; backward 2.5x forward; at the generation's attention-kernel efficiency.
                unfused (Megatron/DeepSpeed before FlashAttention): QK^T and PV as batched GEMMs over
                the full s x s scores (no causal saving) plus the scale-mask-softmax and dropout
                passes over the scores through HBM
  memory-bound  norms, residual adds, RoPE, SwiGLU/GELU (and fp8 casts): bytes / achieved HBM
                bandwidth (forward bytes below; backward 2x: reads saved inputs and grads)
  TP            Megatron tensor parallel (Shoeybi et al. 2019; Narayanan et al. 2021 s2.3): 2
                all-reduces per layer forward and 2 backward of b*s*h activations (with sequence
                parallelism the same bytes as all-gather + reduce-scatter, Korthikanti et al. 2022);
                on the critical path unless the recipe overlaps them with the GEMMs (Transformer
                Engine's userbuffer overlap: then only the first of tp chunks and what exceeds the
                layer's GEMM time are exposed)
  CP            all-gather of K and V forward, reduce-scatter of their grads backward (Llama 3
                paper s3.3.2: all-gather based context parallelism), exposed
  PP            1F1B: bubble (p-1)/m of the busy time; interleaved with v virtual stages per GPU
                (p-1)/(v*m) (Narayanan et al. 2021 s2.2); point-to-point sends per virtual stage
  DP            gradient reduce-scatter (all-reduce without a sharded optimizer) in fp32 and the
                bf16 parameter all-gather; with overlap (Megatron-Core --overlap-grad-reduce /
                --overlap-param-gather, PyTorch DDP buckets) hidden behind the last micro-batch's
                backward and the first one's forward, the rest exposed; without it, exposed
  FSDP (zero 3) parameters gathered for every micro-batch's forward and backward, gradients
                reduce-scattered every micro-batch, overlapped with that micro-batch's compute
  optimizer     Adam on the local (sharded) fp32 state: bytes / HBM bandwidth
  recompute     full: the layer's forward again (GEMMs, attention, memory-bound ops, TP and CP
                collectives); selective (Korthikanti et al. 2022 s5, Megatron's definition): the
                core attention again (QK^T, softmax, dropout, PV), whose saved scores are dropped

MFU convention (stated in every output): model FLOP per token = 6*N + 6*L*s*h_q*d, i.e. PaLM's
6N + 12*L*H*Q*T (Chowdhery et al. 2022, app. B) with the attention term halved for the causal
mask (the FLOP a causal kernel does); N excludes the input embedding (a lookup, not a matmul)
and includes the output head; MoE counts active parameters; against the dense peak of the
training precision (fp8 recipes: the fp8 peak, as NVIDIA's tables do). HFU adds recomputation.
Memory per GPU follows Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models", arXiv:2205.05198, Table 2) per pipeline stage with the in-flight micro-batch
counts of Megatron's 1F1B and interleaved schedules (see `memory`). Memory is in GB = 1e9 B.

No torch here: pure arithmetic on a Profile.
"""

from __future__ import annotations

from functools import lru_cache
from dataclasses import asdict, dataclass
from typing import Any

from harness.core.errors import UsageError
from harness.core.models import Transformer, load_model, preset_names
from harness.analysis.perfmodel.profile import Profile

RECOMPUTE = ("none", "selective", "full")
PRECISIONS = ("bf16", "fp8")
ATTENTION = ("flash", "fa2", "unfused")
MFU_CONVENTION = ("MFU = (6N + 6*L*s*h*d) x tokens/s / (GPUs x dense peak of the training precision): "
                  "PaLM's 6N + 12LHQT (app. B) with causal attention halved; N without the input "
                  "embedding; MoE: active N")


def preset(name: str) -> Transformer:
    """A preset name or alias, or a config.json / TOML path (harness.core.models.load_model)."""
    return load_model(name)


PRESETS = preset_names()


@dataclass(frozen=True)
class Layout:
    """Parallel layout and training settings. dp = gpus / (tp*pp*cp)."""

    gpus: int
    tp: int = 1
    pp: int = 1
    cp: int = 1
    vpp: int = 1  # interleaved virtual stages per GPU
    micro_batch: int = 1  # sequences per micro-batch
    seq: int = 8192
    batch_tokens: int = 16 * 2**20  # global batch in tokens (Llama 3: 16M)
    zero: int = 1  # 0 none, 1 optimizer sharded (distributed optimizer), 2 + gradients, 3 + parameters (FSDP)
    recompute: str = "none"
    precision: str = "bf16"
    sequence_parallel: bool = True  # Korthikanti et al. 2022 (only with tp > 1)
    first_last_layers: int = 0  # layers on the first and on the last stage (0: even, or Llama 3's rule)
    attention: str = "flash"  # flash (the generation's kernel) | fa2 (FlashAttention-2) | unfused
    tp_overlap: bool = False  # TP collectives overlapped with GEMMs (Transformer Engine userbuffers)
    dp_overlap: bool = True  # gradient reduce / parameter gather overlapped with compute
    grad_fp32: bool = True  # fp32 gradient buffers (Megatron's default); False: bf16 (NVIDIA's perf recipes)

    @property
    def dp(self) -> int:
        return self.gpus // (self.tp * self.pp * self.cp)

    @property
    def micro_batches(self) -> int:
        return self.batch_tokens // self.seq // (self.dp * self.micro_batch)

    @property
    def sp(self) -> bool:
        return self.sequence_parallel and self.tp > 1

    def describe(self) -> str:
        v = f" v{self.vpp}" if self.vpp > 1 else ""
        fl = f" first/last {self.first_last_layers}" if self.first_last_layers else ""
        return (f"TP{self.tp} CP{self.cp} PP{self.pp}{v} DP{self.dp} mb{self.micro_batch}{fl} "
                f"zero{self.zero} recompute={self.recompute}")


def check_positive(lay: Layout) -> None:
    """One-line UsageError for a degree or size below 1 (before anything divides by it)."""
    for name in ("gpus", "tp", "pp", "cp", "vpp", "micro_batch", "seq", "batch_tokens"):
        if getattr(lay, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(lay, name)}")


def check(model: Transformer, lay: Layout) -> None:
    """One-line UsageError for a layout that cannot be built."""
    check_positive(lay)
    if lay.recompute not in RECOMPUTE:
        raise UsageError(f"--recompute must be one of {', '.join(RECOMPUTE)}")
    if lay.precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}")
    if lay.attention not in ATTENTION:
        raise UsageError(f"--attention must be one of {', '.join(ATTENTION)}")
    if lay.first_last_layers < 0:
        raise UsageError(f"--first-last-layers must be >= 0, got {lay.first_last_layers}")
    if lay.zero not in (0, 1, 2, 3):
        raise UsageError(f"--zero must be 0, 1, 2 or 3, got {lay.zero}")
    cell = lay.tp * lay.pp * lay.cp
    if lay.gpus % cell:
        raise UsageError(f"TP{lay.tp} x PP{lay.pp} x CP{lay.cp} = {cell} does not divide {lay.gpus} GPUs")
    if model.heads % lay.tp:
        raise UsageError(f"TP{lay.tp} does not divide {model.name}'s {model.heads} attention heads")
    if model.kv_heads % lay.tp and lay.tp % model.kv_heads:
        raise UsageError(f"TP{lay.tp} and {model.kv_heads} KV heads: neither divides the other")
    plan = stage_plan(model, lay.pp, lay.first_last_layers)
    if plan is None:
        if lay.first_last_layers:
            raise UsageError(f"--first-last-layers {lay.first_last_layers}: the other {lay.pp - 2} stages "
                             f"cannot share {model.name}'s remaining layers evenly "
                             f"({model.layers} layers, PP{lay.pp}; needs PP >= 3 and at least one layer each)")
        raise UsageError(f"PP{lay.pp} does not divide {model.name}'s {model.layers} layers "
                         f"(nor {model.layers} + 2, Llama 3's one-fewer-layer first and last stages; "
                         "or give --first-last-layers)")
    bad = [n for n in (max(plan),) if n % lay.vpp]
    if bad:
        raise UsageError(f"{lay.vpp} virtual stages do not divide {bad[0]} layers per stage")
    if lay.vpp > 1 and lay.pp == 1:
        raise UsageError("--vpp needs --pp > 1")
    if lay.seq % lay.cp:
        raise UsageError(f"CP{lay.cp} does not divide the sequence length {lay.seq}")
    if lay.batch_tokens % lay.seq:
        raise UsageError(f"global batch {lay.batch_tokens} tokens is not a whole number of {lay.seq}-token sequences")
    seqs = lay.batch_tokens // lay.seq
    if seqs % (lay.dp * lay.micro_batch):
        raise UsageError(f"{seqs} sequences per step do not split over DP{lay.dp} x micro-batch {lay.micro_batch}")


def stage_plan(model: Transformer, pp: int, first_last_layers: int = 0) -> list[int] | None:
    """Layers per pipeline stage, first to last; None when they cannot be laid out.
    `first_last_layers` > 0: that many layers on the first and on the last stage (which also hold the
    embedding and the output head), the rest split evenly over the middle stages. Else layers
    divisible by pp: even stages; else layers + 2 divisible by pp: Llama 3 (s3.3.2) puts one
    fewer layer on the first and last stages."""
    n, fl = model.layers, first_last_layers
    if fl:
        if pp < 3 or n - 2 * fl < pp - 2 or (n - 2 * fl) % (pp - 2):
            return None
        mid = (n - 2 * fl) // (pp - 2)
        return [fl] + [mid] * (pp - 2) + [fl]
    if n % pp == 0:
        return [n // pp] * pp
    if pp > 2 and (n + 2) % pp == 0:
        k = (n + 2) // pp
        return [k - 1] + [k] * (pp - 2) + [k - 1]
    return None


def stage_layers(model: Transformer, pp: int, first_last_layers: int = 0) -> int | None:
    """Layers on the fullest pipeline stage (None when the layers cannot be laid out)."""
    plan = stage_plan(model, pp, first_last_layers)
    return max(plan) if plan else None


def _stage_mix(model: Transformer, plan: list[int]) -> tuple[tuple[int, int], ...]:
    """(dense layers, MoE layers) per stage: an MoE model's dense layers come first."""
    return _stage_mix_cached(model, tuple(plan))


@lru_cache(maxsize=4096)  # layout searches ask for the same (model, plan) thousands of times
def _stage_mix_cached(model: Transformer, plan: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    out, start = [], 0
    dense_n = model.layers - model.moe_layers
    for n in plan:
        d = max(0, min(start + n, dense_n) - start)
        out.append((d, n - d))
        start += n
    return tuple(out)


# ---------------------------------------------------------------- FLOP and bytes


def model_flop_per_token(model: Transformer, seq: int) -> float:
    """6N + 3*L*s*h*(d_qk + d_v) (MFU_CONVENTION; = 6*L*s*h*d when d_qk = d_v)."""
    n = model.body_params(active=True) + model.vocab * model.d_model  # + output head; input embedding is a lookup
    return 6.0 * n + 3.0 * model.layers * seq * model.heads * (model.head_dim + model.v_dim)


@lru_cache(maxsize=65536)  # layout searches ask for the same (model, layout) many times
def activation_bytes_per_layer(model: Transformer, tokens: float, lay: Layout, moe: bool | None = None,
                               recompute: str | None = None) -> float:
    """Bytes one layer keeps for its backward pass, per GPU, for `tokens` tokens of a micro-batch.
    Korthikanti et al. 2022 (Table 2: 34*s*b*h + 5*a*s^2*b without parallelism; TP without SP
    keeps 10*s*b*h of it whole on every rank), re-derived term by term so that it holds for
    RMSNorm, GQA/MLA, gated MLPs and FlashAttention; per token, in bytes:
      whole on each TP rank unless sequence parallel (R):
        norm inputs 2 x 2h; QKV and MLP-up inputs (norm outputs) 2 x 2h (1 B each in fp8 recipes:
        Transformer Engine keeps the fp8 copy); unfused era: hidden dropout masks 2 x h
      split over TP (S):
        Q, K, V 2*(h_q + 2*kv*d); attention output (the out-projection input) 2*h_q;
        MLP up outputs 2*g*f and activation output 2*f (1 B in fp8: the down-projection input),
        x (top_k + shared) experts for MoE
        unfused attention: softmax output 2, dropout mask 1, dropout output 2 per score: 5*a*s
    selective (Megatron: core attention recomputed) drops the score terms; with FlashAttention
    there are none (the kernel recomputes them itself). full: only the layer input (R: 2h) stays."""
    rc = recompute or lay.recompute
    moe = model.moe if moe is None else moe
    tp, h = lay.tp, model.d_model
    r_split = tp if lay.sp else 1
    gemm_in = 1.0 if lay.precision == "fp8" else 2.0
    if rc == "full":
        return tokens * 2.0 * h / r_split
    unfused = lay.attention == "unfused"
    r_part = 2 * 2 * h + 2 * gemm_in * h + (2 * h if unfused else 0)
    h_q = model.heads * model.head_dim
    kv = 0 if model.mla else 2 * model.kv_heads * model.head_dim
    o = model.heads * model.v_dim
    if model.mla:  # MLA keeps the up-projected K and V per head
        kv = model.heads * (model.head_dim + model.v_dim)
    g = 2 if model.gated_mlp else 1
    width = model.expert_ffn * (model.top_k + model.shared_experts) if moe else model.ffn
    s_part = 2 * (h_q + kv) + 2 * o + width * (2 * g + gemm_in)
    if unfused and rc != "selective":
        s_part += 5 * model.heads * lay.seq  # scores over the full (CP-gathered) key length
    return tokens * (r_part / r_split + s_part / tp)


def _act_bytes_fwd(model: Transformer, tokens: int, tp: int, moe: bool) -> float:
    """HBM bytes of the MLP activation function per layer per GPU (bf16, read + write): SwiGLU
    reads gate and up and writes f values per token, 3f; GELU reads and writes f, 2f; a token
    passes through top_k (+ shared) experts; the f columns are split over TP."""
    width = model.expert_ffn * (model.top_k + model.shared_experts) if moe else model.ffn
    return 2.0 * tokens * (3 if model.gated_mlp else 2) * width / tp


def _mem_bytes_fwd(model: Transformer, tokens: int, lay: Layout, moe: bool) -> float:
    """Forward bytes of the memory-bound ops per layer per GPU (bf16, read + write):
    2 RMSNorms (r+w of h) 4h; 2 residual adds (2 reads + 1 write) 6h (whole on every TP rank
    unless sequence parallel); RoPE on Q and K (r+w) 2*(h_q + kv*d); the activation function
    (`_act_bytes_fwd`); fp8 recipes: each GEMM input cast to fp8 (read 2 B, write 1 B)."""
    h, tp = model.d_model, lay.tp
    r_split = tp if lay.sp else 1
    rope = 2 * (model.heads + model.kv_heads) * model.head_dim
    b = 2.0 * tokens * (10 * h / r_split + rope / tp) + _act_bytes_fwd(model, tokens, tp, moe)
    if lay.precision == "fp8":
        width = model.expert_ffn * (model.top_k + model.shared_experts) if moe else model.ffn
        b += 3.0 * tokens * (2 * h / r_split + (model.heads * model.v_dim + width) / tp)
    return b


def _gemm_fb(p: Profile, shapes) -> tuple[float, float]:
    """(forward, backward) time of a list of (name, m, n, k, count) GEMMs: backward = dgrad
    (m x k x n) + wgrad (k x n x m)."""
    t_f = t_b = 0.0
    for _, m, n, k, count in shapes:
        t_f += count * p.gemm_time(m, n, k)
        t_b += count * (p.gemm_time(m, k, n) + p.gemm_time(k, n, m))
    return t_f, t_b


# ---------------------------------------------------------------- the step


@dataclass(frozen=True)
class Result:
    model: str
    layout: Layout
    profile: str
    step_s: float
    breakdown: dict[str, float]  # seconds per step on the critical path
    tokens_per_s_per_gpu: float
    mfu: float
    hfu: float
    memory_gb: dict[str, float]  # the fullest stage's memory per GPU
    fits: bool
    hbm_gb: float
    bubble: float
    fullest_stage: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layout"] = asdict(self.layout) | {"dp": self.layout.dp, "micro_batches": self.layout.micro_batches}
        d["convention"] = MFU_CONVENTION
        return d


def in_flight(lay: Layout, stage: int) -> float:
    """Micro-batches whose activations stage `stage` holds at its peak (in units of the stage's
    whole layer set). 1F1B (PipeDream-Flush, Narayanan et al. 2021 s2.2): stage i runs p - i
    warm-up forwards, so holds min(m, p - i). Interleaved (Megatron-LM schedules.py): stage i
    runs (p - i - 1)*2 + (v - 1)*p warm-up model chunks plus the one in flight, each 1/v of the
    stage's layers, at most all m*v chunks. No pipeline: one micro-batch at a time."""
    p, v, m = lay.pp, lay.vpp, lay.micro_batches
    if p == 1:
        return 1.0
    if v == 1:
        return float(min(m, p - stage))
    return min((p - stage - 1) * 2 + (v - 1) * p + 1, m * v) / v


def _local_params(model: Transformer, lay: Layout, mix: tuple[int, int], first: bool, last: bool) -> float:
    d, e = mix
    n = (d * model.layer_params(moe=False) + e * model.layer_params(moe=True)) / lay.tp
    emb = model.vocab * model.d_model / lay.tp
    if first:
        n += emb
    if last and (not model.tied_embeddings or lay.pp > 1):  # tied: the last stage keeps a copy (Megatron)
        n += emb
    return n


def memory_by_stage(model: Transformer, lay: Layout, only: set[int] | None = None) -> list[dict[str, float]]:
    """GB per GPU on each pipeline stage: weights, gradients, optimizer state, activations.
    Bytes per parameter (Megatron-Core docs/api-guide/dist_optimizer.md, bf16 params with fp32
    main gradients): 2 weight + 4 gradient + 12 fp32 master and Adam moments = 18 (bf16
    gradient buffers, `grad_fp32` False: 2 + 2 + 16 with the fp32 gradient copy sharded); the
    distributed optimizer (zero 1) shards the 12 over the data-parallel group, which in
    Megatron-Core includes the context-parallel ranks (DP x CP: megatron/core/optimizer builds it
    on intra_dp_cp_group); zero 2 also shards the gradients, zero 3 (FSDP FULL_SHARD) the
    weights as well, holding two gathered layers (one prefetched). fp8 recipes keep an fp8 copy of
    the weights beside the bf16 ones (Transformer Engine), 3 B."""
    plan = stage_plan(model, lay.pp, lay.first_last_layers) or [model.layers]
    shard = lay.dp * lay.cp
    w_bytes = 3.0 if lay.precision == "fp8" else 2.0
    g_bytes = 4.0 if lay.grad_fp32 else 2.0
    tokens = lay.micro_batch * lay.seq // lay.cp
    recompute_extra = (activation_bytes_per_layer(model, tokens, lay, recompute="none")
                       if lay.recompute == "full" else 0.0)  # the layer being recomputed, whole
    # Stages with the same layer mix and position hold the same weights, gradients, optimizer
    # state and per-layer activations: computed once per kind (a 128-stage pipeline has ~3 kinds).
    static: dict[tuple, tuple[float, float, float, float]] = {}
    out = []
    for i, mix in enumerate(_stage_mix(model, plan)):
        if only is not None and i not in only:
            continue
        first, last = i == 0, i == len(plan) - 1
        key = (mix, first, last)
        if key not in static:
            local = _local_params(model, lay, mix, first, last)
            weights = local * w_bytes / (shard if lay.zero >= 3 else 1)
            if lay.zero >= 3:
                weights += 2 * model.layer_params() / lay.tp * w_bytes
            grads = local * g_bytes / (shard if lay.zero >= 2 else 1)
            # bf16 gradient buffers: the optimizer keeps an fp32 copy of its gradient shard (4 + 16/d)
            optim = local * (12.0 if lay.grad_fp32 else 16.0) / (shard if lay.zero >= 1 else 1)
            d, e = mix
            per_layer = (d * activation_bytes_per_layer(model, tokens, lay, moe=False)
                         + e * activation_bytes_per_layer(model, tokens, lay, moe=True))
            static[key] = (weights, grads, optim, per_layer)
        weights, grads, optim, per_layer = static[key]
        acts = in_flight(lay, i) * per_layer + recompute_extra
        if last:  # fp32 logits of the loss (vocab split over TP), last stage
            acts += tokens * model.vocab / lay.tp * 4.0
        out.append({"weights": weights / 1e9, "gradients": grads / 1e9, "optimizer": optim / 1e9,
                    "activations": acts / 1e9})
    return out


def fullest_stage(model: Transformer, lay: Layout) -> tuple[int, dict[str, float]]:
    """(index, GB per GPU) of the fullest pipeline stage (the first of them on a tie). Stages with
    the same layer mix and position differ only in the micro-batches in flight, which never grow
    with the stage index (in_flight), so only the first stage of each kind can be the fullest:
    the layout searches evaluate those few instead of every stage."""
    plan = stage_plan(model, lay.pp, lay.first_last_layers) or [model.layers]
    firsts: dict[tuple, int] = {}
    for i, mix in enumerate(_stage_mix(model, plan)):
        firsts.setdefault((mix, i == 0, i == len(plan) - 1), i)
    idx = sorted(firsts.values())
    stages = memory_by_stage(model, lay, only=set(idx))
    k = max(range(len(stages)), key=lambda j: sum(stages[j].values()))
    return idx[k], stages[k]


def memory(model: Transformer, lay: Layout, p: Profile | None = None) -> dict[str, float]:
    """GB per GPU on the fullest pipeline stage (see `memory_by_stage`)."""
    return fullest_stage(model, lay)[1]


def _fit_error(lay: Layout, p: Profile, mem: dict[str, float], stage: int) -> UsageError:
    total = sum(mem.values())
    parts = ", ".join(f"{k} {v:.1f}" for k, v in mem.items())
    return UsageError(f"{lay.describe()} needs {total:.1f} GB per GPU on pipeline stage {stage} ({parts}) > "
                      f"{p.hbm_bytes / 1e9:.1f} GB usable on {p.name} (GB = 1e9 B); try more TP/PP, --zero 3, "
                      "--recompute, --search, or --no-fit-check to predict anyway")


def step(model: Transformer, lay: Layout, p: Profile, *, require_fit: bool = True,
         fullest: tuple[int, dict[str, float]] | None = None) -> Result:
    """The step of `lay`. `fullest`: fullest_stage(model, lay), when the caller has it already
    (a layout search checks the fit first and times only the layouts that fit)."""
    check(model, lay)
    worst, mem = fullest if fullest is not None else fullest_stage(model, lay)
    total = sum(mem.values())
    hbm = p.hbm_bytes / 1e9
    if require_fit and total > hbm:
        raise _fit_error(lay, p, mem, worst)
    tp, cp, pp, v, m = lay.tp, lay.cp, lay.pp, lay.vpp, lay.micro_batches
    tokens = lay.micro_batch * lay.seq // cp
    plan = stage_plan(model, pp, lay.first_last_layers) or [model.layers]
    mixes = _stage_mix(model, plan)
    node = p.node_gpus
    node_cell = tp * cp  # TP innermost, then CP (Llama 3's order [TP, CP, PP, DP])
    hbm_bps = p.hbm_gbps * 1e9
    full = lay.recompute == "full"

    # Attention (per layer, per micro-batch): local queries (s/cp) over all keys.
    heads_local = model.heads // tp
    a_flop_full = 2.0 * tokens * lay.seq * heads_local * (model.head_dim + model.v_dim)  # no causal saving
    if lay.attention in ("flash", "fa2"):
        e_f, e_b = p.attention_eff(lay.seq, model.head_dim)
        if lay.attention == "fa2" and p.attn_fa2_eff and not p.attn_points:
            e_f = e_b = p.attn_fa2_eff
        apeak = p.attn_peak * 1e12
        a_f, a_b = a_flop_full / 2 / (apeak * e_f), 2.5 * a_flop_full / 2 / (apeak * e_b)
        a_sel = a_f  # Megatron's selective recompute re-runs the kernel's forward
    else:
        # Batched GEMMs QK^T (s_q x s_kv x d) and PV (s_q x d x s_kv) per head and sequence: many
        # small GEMMs fill the GPU together, so the large-GEMM efficiency or HBM traffic bounds
        # them (roofline), not the single-GEMM shape law; scores through HBM: scale-mask-softmax
        # (r+w 2 B each) and dropout (r 2, w 2 + 1 B mask) forward, 9 B per score; backward 11 B.
        batch = lay.micro_batch * heads_local
        sq = tokens // lay.micro_batch
        qk_flop = 2.0 * batch * sq * lay.seq * (model.head_dim + model.v_dim)
        qk_bytes = 2.0 * batch * (sq * (model.head_dim + model.v_dim) + lay.seq * (model.head_dim + model.v_dim)
                                  + 2 * sq * lay.seq)
        qk_f = max(qk_flop / (p.peak_tflops * 1e12 * p.gemm_eff), qk_bytes / hbm_bps)
        scores = batch * sq * lay.seq
        a_f = qk_f + 9.0 * scores / hbm_bps
        a_b = 2 * qk_f + 11.0 * scores / hbm_bps
        a_sel = a_f
    # TP collectives: b*s*h bf16 activations, all-reduce factor 2(t-1)/t (or AG + RS, same bytes)
    act_b = 2.0 * tokens * model.d_model
    tp_inter = tp > node
    tp_one = p.collective_time(act_b, 2 * (tp - 1) / tp, inter=tp_inter) if tp > 1 else 0.0
    kv_heads_local = max(model.kv_heads // tp, 1) if not model.mla else heads_local
    kv_b = 2.0 * lay.micro_batch * lay.seq * kv_heads_local * (model.head_dim + model.v_dim)
    cp_one = p.collective_time(kv_b, (cp - 1) / cp, inter=node_cell > node) if cp > 1 else 0.0

    def layer_time(moe: bool) -> dict[str, float]:
        g_f, g_b = _gemm_fb(p, model.layer_gemms(tokens, tp, moe))
        mem_f = _mem_bytes_fwd(model, tokens, lay, moe) / hbm_bps
        # Backward also accumulates each weight gradient into its fp32 main_grad (Megatron's
        # gradient-accumulation fusion does it in the wgrad GEMM's epilogue): read + write 4 B/param.
        mem_b = 2 * mem_f + 8.0 * model.layer_params(moe=moe) / tp / hbm_bps
        n_tp = 4 + (2 if full else 0)
        tp_t = n_tp * tp_one
        if lay.tp_overlap and tp > 1:
            # Split into tp chunks, each exchange hidden behind a GEMM chunk: the first chunk and
            # whatever exceeds the GEMM time stay on the critical path.
            gemm_t = g_f + g_b + (g_f if full else 0.0)
            tp_t = tp_t / tp + max(0.0, tp_t * (tp - 1) / tp - gemm_t)
        return {
            "GEMM": g_f + g_b + (g_f if full else 0.0),
            "attention": a_f + a_b + (a_f if full else a_sel if lay.recompute == "selective" else 0.0),
            "memory-bound ops": mem_f + mem_b + (mem_f if full else 0.0),
            "TP collectives": tp_t,
            "CP collectives": (2 + (1 if full else 0)) * cp_one,
        }

    dense_t = layer_time(False)
    moe_t = layer_time(True) if model.moe else dense_t
    # Output head on the last stage (logits GEMM + fp32 cross-entropy bytes, vocab split over TP).
    h_f, h_b = _gemm_fb(p, [model.head_gemm(tokens, tp)])
    head = h_f + h_b + 3 * tokens * model.vocab / tp * 4 / hbm_bps
    per_stage = []
    for i, (d, e) in enumerate(mixes):
        t = d * sum(dense_t.values()) + e * sum(moe_t.values())
        per_stage.append(t + (head if i == len(mixes) - 1 else 0.0))
    slowest = max(range(len(per_stage)), key=lambda i: per_stage[i])
    t_stage = per_stage[slowest]
    p2p = 0.0
    if pp > 1:  # one send forward and one backward per micro-batch per virtual stage
        p2p = 2 * v * p.collective_time(act_b / (tp if lay.sp else 1), 1.0, inter=node_cell >= node)
    t_mb = t_stage + p2p
    busy = m * t_mb
    bubble_t = (pp - 1) * t_mb / v  # Narayanan et al. 2021: bubble (p-1)/(v*m) of the busy time

    # Data parallelism over the slowest stage's parameters, with the DP group's links.
    d, e = mixes[slowest]
    local = _local_params(model, lay, (d, e), slowest == 0, slowest == len(mixes) - 1)
    shard = lay.dp * cp
    g_b = 4.0 if lay.grad_fp32 else 2.0  # gradient bytes reduced per parameter
    dp_t = 0.0
    compute_f = d * (dense_t["GEMM"] + dense_t["attention"]) + e * (moe_t["GEMM"] + moe_t["attention"])
    fwd_share = 1 / (3 + (1 if full else 0))  # forward GEMM share of a micro-batch's compute
    exposed = 0.0
    if shard > 1:
        # Ranks are ordered [TP, CP, PP, DP] (Llama 3 s3.3.2; Megatron's default): a DP group
        # spans nodes once TP x CP x PP x DP exceeds a node, with node / (TP x CP x PP) members per node.
        inter = shard * tp * pp > node
        per_node = max(1, node // (tp * pp * cp)) if inter else 1
        f = (shard - 1) / shard
        if lay.zero >= 3:  # FSDP: gather fwd + bwd, reduce-scatter grads, every micro-batch
            per_mb = 2 * p.collective_time(local * 2, f, inter, per_node) + p.collective_time(local * g_b, f, inter, per_node)
            dp_t = m * per_mb
            exposed = m * max(0.0, per_mb - compute_f) if lay.dp_overlap else dp_t
        else:
            if lay.zero >= 1:
                rs = p.collective_time(local * g_b, f, inter, per_node)
                ag = p.collective_time(local * 2, f, inter, per_node)
            else:
                rs, ag = p.collective_time(local * g_b, 2 * f, inter, per_node), 0.0
            dp_t = rs + ag
            if lay.dp_overlap:
                exposed = max(0.0, rs - compute_f * (1 - fwd_share)) + max(0.0, ag - compute_f * fwd_share)
            else:
                exposed = dp_t
    # Adam on the local shard: read fp32 master, m, v, grad; write master, m, v and bf16 weights
    opt_shard = local / (shard if lay.zero >= 1 else 1)
    opt_t = opt_shard * (16 + 12 + 2) / hbm_bps

    step_s = busy + bubble_t + exposed + opt_t
    breakdown = {k: m * (d * dense_t[k] + e * moe_t[k]) for k in dense_t}
    breakdown["output head (last stage)"] = m * head if slowest == len(mixes) - 1 else 0.0
    breakdown["PP send/recv"] = p2p * m
    breakdown["pipeline bubble"] = bubble_t
    breakdown["DP gradient sync (exposed)"] = exposed
    breakdown["optimizer step"] = opt_t

    tok_gpu = lay.batch_tokens / step_s / lay.gpus
    peak = p.peak_tflops * 1e12
    mf = model_flop_per_token(model, lay.seq)
    mfu = mf * tok_gpu / peak
    hw = mf
    if full:  # an extra forward: 2N + attention forward
        hw *= 4 / 3
    elif lay.recompute == "selective":  # the attention forward again
        hw += model.layers * lay.seq * model.heads * (model.head_dim + model.v_dim)
    hfu = hw * tok_gpu / peak
    return Result(model.name, lay, p.name, step_s, breakdown, tok_gpu, mfu, hfu, mem, total <= hbm, hbm,
                  bubble_t / step_s, worst)


def fits(model: Transformer, lay: Layout, p: Profile) -> bool:
    return sum(fullest_stage(model, lay)[1].values()) * 1e9 <= p.hbm_bytes


def describe_fit(model: Transformer, lay: Layout, p: Profile) -> str:
    worst, mem = fullest_stage(model, lay)
    return str(_fit_error(lay, p, mem, worst))


__all__ = ["Layout", "Result", "check", "memory", "memory_by_stage", "step", "stage_plan", "stage_layers",
           "model_flop_per_token", "activation_bytes_per_layer", "in_flight"]
