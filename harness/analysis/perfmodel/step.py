"""Transformer training step time, MFU and memory per GPU from a hardware profile.

An analytical model in the spirit of Calculon (Isaev et al., SC'23) and Megatron's performance
formulas (Narayanan et al., SC'21, "Efficient Large-Scale Language Model Training on GPU Clusters
Using Megatron-LM"), fed by measured rates (harness/perfmodel_profile.py). Per layer and
micro-batch, on one GPU:

  GEMMs         forward at the profile's rate for each layer shape (TP-split); backward = dgrad
                + wgrad = 2x forward FLOP, at the rates of the transposed shapes
  attention     FlashAttention FLOP convention (Dao 2023, "FlashAttention-2", arXiv:2307.08691
                s4.1): forward 4*b*s_q*s_kv*h*d, halved when causal; backward 2.5x forward; at
                the profile's attention efficiency
  memory-bound  norms, residual adds, RoPE, SwiGLU/GELU: bytes / achieved HBM bandwidth
                (forward bytes counted below; backward 2x: reads saved inputs and grads)
  TP            Megatron tensor parallel (Shoeybi et al. 2019; Narayanan et al. 2021 s2.3): 2
                all-reduces per layer forward and 2 backward of b*s*h activations (with sequence
                parallelism the same bytes as all-gather + reduce-scatter, Korthikanti et al. 2022);
                on the critical path (not overlapped), as in Megatron-LM 2021
  CP            all-gather of K and V forward, reduce-scatter of their grads backward (Llama 3
                paper s3.3.2: all-gather based context parallelism)
  PP            1F1B: bubble (p-1)/(m+p-1); interleaved with v virtual stages per GPU the bubble
                shrinks to (p-1)/(v*m+p-1) (Narayanan et al. 2021 s2.2); point-to-point sends
  DP            gradient reduce-scatter (all-reduce without a sharded optimizer) in fp32 and the
                parameter all-gather; overlapped with the last micro-batch's backward pass
                (bucketed, Megatron distributed optimizer), the rest exposed
  optimizer     Adam on the local (sharded) fp32 state: bytes / HBM bandwidth
  recompute     full: the layer's forward again (GEMMs, attention, memory-bound ops, TP and CP
                collectives); selective: the activation function again, its bytes / HBM bandwidth
                (see `_act_bytes_fwd`)

MFU convention (stated in every output): model FLOP per token = 6*N + 6*L*s*h_q*d, i.e. PaLM's
6N + 12*L*H*Q*T (Chowdhery et al. 2022, app. B) with the attention term halved for the causal
mask (the FLOP a causal kernel does); N excludes the input embedding (a lookup, not a matmul)
and includes the output head; MoE counts active parameters. HFU adds recomputation FLOP.
Memory per GPU follows Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large
Transformer Models", arXiv:2205.05198), adapted to GQA and gated MLPs (see
`activation_bytes_per_layer`). Memory is in GB = 1e9 B, capacity included (perfmodel_profile).

No torch here: pure arithmetic on a Profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from harness.core.errors import UsageError
from harness.core.models import MODELS, Transformer
from harness.analysis.perfmodel.profile import GPUS_PER_NODE, Profile

RECOMPUTE = ("none", "selective", "full")
PRECISIONS = ("bf16", "fp8")
PRESETS = {"8b": "llama3-8b", "70b": "llama3-70b", "405b": "llama3-405b", "175b": "gpt3-175b",
           "gpt3": "gpt3-175b", "moe": "moe-8x22b"}
MFU_CONVENTION = ("MFU = (6N + 6*L*s*h*d) x tokens/s / (GPUs x dense peak): PaLM's 6N + 12LHQT "
                  "(app. B) with causal attention halved; N without the input embedding; MoE: active N")


def preset(name: str) -> Transformer:
    key = PRESETS.get(name.lower(), name.lower())
    if key not in MODELS:
        raise UsageError(f"unknown model {name!r}; presets: {', '.join(PRESETS)} or {', '.join(MODELS)}")
    return MODELS[key]


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
    zero: int = 1  # 0 none, 1 optimizer sharded, 2 + gradients, 3 + parameters (FSDP)
    recompute: str = "none"
    precision: str = "bf16"

    @property
    def dp(self) -> int:
        return self.gpus // (self.tp * self.pp * self.cp)

    @property
    def micro_batches(self) -> int:
        return self.batch_tokens // self.seq // (self.dp * self.micro_batch)

    def describe(self) -> str:
        v = f" v{self.vpp}" if self.vpp > 1 else ""
        return (f"TP{self.tp} CP{self.cp} PP{self.pp}{v} DP{self.dp} mb{self.micro_batch} "
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
    if lay.zero not in (0, 1, 2, 3):
        raise UsageError(f"--zero must be 0, 1, 2 or 3, got {lay.zero}")
    cell = lay.tp * lay.pp * lay.cp
    if lay.gpus % cell:
        raise UsageError(f"TP{lay.tp} x PP{lay.pp} x CP{lay.cp} = {cell} does not divide {lay.gpus} GPUs")
    if model.heads % lay.tp:
        raise UsageError(f"TP{lay.tp} does not divide {model.name}'s {model.heads} attention heads")
    if model.kv_heads % lay.tp and lay.tp % model.kv_heads:
        raise UsageError(f"TP{lay.tp} and {model.kv_heads} KV heads: neither divides the other")
    if stage_layers(model, lay.pp) is None:
        raise UsageError(f"PP{lay.pp} does not divide {model.name}'s {model.layers} layers "
                         f"(nor {model.layers} + 2, Llama 3's one-fewer-layer first and last stages)")
    if stage_layers(model, lay.pp) % lay.vpp:
        raise UsageError(f"{lay.vpp} virtual stages do not divide {stage_layers(model, lay.pp)} layers per stage")
    if lay.vpp > 1 and lay.pp == 1:
        raise UsageError("--vpp needs --pp > 1")
    if lay.seq % lay.cp:
        raise UsageError(f"CP{lay.cp} does not divide the sequence length {lay.seq}")
    if lay.batch_tokens % lay.seq:
        raise UsageError(f"global batch {lay.batch_tokens} tokens is not a whole number of {lay.seq}-token sequences")
    seqs = lay.batch_tokens // lay.seq
    if seqs % (lay.dp * lay.micro_batch):
        raise UsageError(f"{seqs} sequences per step do not split over DP{lay.dp} x micro-batch {lay.micro_batch}")


def stage_layers(model: Transformer, pp: int) -> int | None:
    """Layers on the fullest pipeline stage; None when the layers cannot be laid out. Layers
    divisible by pp: even stages. Else layers + 2 divisible by pp: Llama 3 (s3.3.2) puts one
    fewer layer on the first and last stages, which also hold the embedding and the output head."""
    if model.layers % pp == 0:
        return model.layers // pp
    if pp > 2 and (model.layers + 2) % pp == 0:
        return (model.layers + 2) // pp
    return None


# ---------------------------------------------------------------- FLOP and bytes


def model_flop_per_token(model: Transformer, seq: int) -> float:
    """6N + 6*L*s*h_q*d (MFU_CONVENTION)."""
    n = model.params(active=True) - model.vocab * model.d_model  # input embedding is a lookup
    return 6.0 * n + 6.0 * model.layers * seq * model.heads * model.head_dim


def activation_bytes_per_layer(model: Transformer, tokens: float, tp: int, recompute: str,
                               act_bytes: float = 2.0) -> float:
    """Bytes one layer keeps for its backward pass, per GPU (Korthikanti et al. 2022, eq. 1-2
    and s4, re-derived for RMSNorm, GQA, gated MLP, no dropout, FlashAttention: no s^2 term).
    In units of tokens x 16-bit values, with sequence parallelism everything is split over tp:
      norms     2 inputs                              2h
      attention QKV input h, Q/K/V h + 2*kv*d, attention output h (also the out-proj input)
      MLP       up input h, up outputs (gate, up) 2f (f if not gated), down input f
    selective: the activation-function output (down input) is recomputed from the saved up
    outputs; full: only the layer input (h) is kept and the whole layer re-run in backward."""
    h, f = model.d_model, model.ffn
    kv = 2 * model.kv_heads * model.head_dim
    mlp_k = model.top_k  # a token's activations pass through top_k experts
    if recompute == "full":
        per_token = h
    else:
        attn = h + (h + kv) + h
        up = (2 if model.gated_mlp else 1) * f
        mlp = h + mlp_k * (up + (0 if recompute == "selective" else f))
        per_token = 2 * h + attn + mlp
    return per_token * tokens * act_bytes / tp


def _layer_fwd_gemm_time(p: Profile, model: Transformer, tokens: int, tp: int) -> tuple[float, float, float]:
    """(forward time, backward time, forward FLOP) of one layer's GEMMs per GPU."""
    t_f = t_b = flop = 0.0
    kv_local = max(model.kv_heads // tp, 1) * model.head_dim  # KV heads replicated when tp > kv
    q_local = model.heads // tp * model.head_dim
    up = (2 if model.gated_mlp else 1) * model.ffn // tp
    shapes = [(tokens, q_local + 2 * kv_local, model.d_model, 1),
              (tokens, model.d_model, q_local, 1)]
    if model.experts > 1:  # each expert sees tokens*top_k/experts rows; all experts local (no EP)
        rows = max(tokens * model.top_k // model.experts, 1)
        shapes += [(rows, up, model.d_model, model.experts), (rows, model.d_model, model.ffn // tp, model.experts)]
    else:
        shapes += [(tokens, up, model.d_model, 1), (tokens, model.d_model, model.ffn // tp, 1)]
    for m, n, k, count in shapes:
        t_f += count * p.gemm_time(m, n, k)
        t_b += count * (p.gemm_time(m, k, n) + p.gemm_time(k, n, m))  # dgrad, wgrad
        flop += count * 2.0 * m * n * k
    return t_f, t_b, flop


def _layer_param_local(model: Transformer, tp: int) -> float:
    return model.layer_params() / tp


def _act_bytes_fwd(model: Transformer, tokens: int, tp: int) -> float:
    """HBM bytes of the MLP activation function per layer per GPU (bf16, read + write): SwiGLU
    reads gate and up and writes f values per token, 3f; GELU reads and writes f, 2f; a token
    passes through top_k experts; the f columns are split over TP."""
    return 2.0 * tokens * (3 if model.gated_mlp else 2) * model.ffn * model.top_k / tp


def _mem_bytes_fwd(model: Transformer, tokens: int, tp: int) -> float:
    """Forward bytes of the memory-bound ops per layer per GPU (bf16, read + write):
    2 RMSNorms (r+w of h) 4h; 2 residual adds (2 reads + 1 write) 6h; RoPE on Q and K (r+w)
    2*(h_q + kv*d); the activation function (`_act_bytes_fwd`)."""
    h = model.d_model
    rope = 2 * (model.heads + model.kv_heads) * model.head_dim
    return 2.0 * tokens * (4 * h + 6 * h + rope) / tp + _act_bytes_fwd(model, tokens, tp)


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
    memory_gb: dict[str, float]
    fits: bool
    hbm_gb: float
    bubble: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["layout"] = asdict(self.layout) | {"dp": self.layout.dp, "micro_batches": self.layout.micro_batches}
        d["convention"] = MFU_CONVENTION
        return d


def memory(model: Transformer, lay: Layout, p: Profile) -> dict[str, float]:
    """Bytes per GPU on the fullest stage (the first: it holds the most micro-batches in flight)."""
    layers = stage_layers(model, lay.pp) or model.layers
    local = layers * model.layer_params() / lay.tp + model.vocab * model.d_model / lay.tp
    dp = lay.dp
    w_bytes = 3.0 if lay.precision == "fp8" else 2.0  # fp8: bf16 weights + an fp8 copy (Transformer Engine)
    weights = local * w_bytes / (dp if lay.zero >= 3 else 1)
    if lay.zero >= 3:  # FSDP gathers one layer at a time (two in flight: prefetch)
        weights += 2 * model.layer_params() / lay.tp * w_bytes
    grads = local * 4.0 / (dp if lay.zero >= 2 else 1)  # fp32 accumulation (Megatron; Llama 3 s3.3.4)
    optim = local * 12.0 / (dp if lay.zero >= 1 else 1)  # fp32 master + Adam m, v (ZeRO's K = 12)
    tokens = lay.micro_batch * lay.seq // lay.cp
    per_layer = activation_bytes_per_layer(model, tokens, lay.tp, lay.recompute)
    in_flight = min(lay.pp, lay.micro_batches)  # 1F1B: stage 0 holds p micro-batches
    interleave = 1 + (lay.pp - 1) / (lay.pp * lay.vpp) if lay.vpp > 1 else 1.0  # Korthikanti s4.2.3
    acts = layers * in_flight * per_layer * interleave
    if lay.recompute == "full":  # the layer being recomputed holds its whole working set
        acts += activation_bytes_per_layer(model, tokens, lay.tp, "none")
    logits = tokens * model.vocab / lay.tp * 4.0  # fp32 logits for the loss (last stage)
    gb = {"weights": weights, "gradients": grads, "optimizer": optim, "activations": acts + logits}
    return {k: v / 1e9 for k, v in gb.items()}


def step(model: Transformer, lay: Layout, p: Profile, *, require_fit: bool = True) -> Result:
    check(model, lay)
    mem = memory(model, lay, p)
    total = sum(mem.values())
    hbm = p.hbm_bytes / 1e9
    if require_fit and total > hbm:
        parts = ", ".join(f"{k} {v:.1f}" for k, v in mem.items())
        raise UsageError(f"{lay.describe()} needs {total:.1f} GB per GPU ({parts}) > {hbm:.1f} GB usable "
                         f"on {p.name} (GB = 1e9 B); try more TP/PP, --zero 3, --recompute, or --search")
    tp, cp, pp, v, m = lay.tp, lay.cp, lay.pp, lay.vpp, lay.micro_batches
    tokens = lay.micro_batch * lay.seq // cp
    layers = stage_layers(model, pp) or model.layers
    node_cell = tp * cp  # TP innermost, then CP (Llama 3's order [TP, CP, PP, DP])

    g_f, g_b, _ = _layer_fwd_gemm_time(p, model, tokens, tp)
    # Attention: local queries (s/cp) over all keys, causal halves it (FlashAttention convention)
    a_flop = 4.0 * lay.micro_batch * tokens * lay.seq * (model.heads // tp) * model.head_dim / 2
    e_f, e_b = p.attention_eff(lay.seq, model.head_dim)
    peak = p.peak_tflops * 1e12
    a_f, a_b = a_flop / (peak * e_f), 2.5 * a_flop / (peak * e_b)
    mem_f = _mem_bytes_fwd(model, tokens, tp) / (p.hbm_gbps * 1e9)
    # Backward also accumulates each weight gradient into its fp32 main_grad (Megatron's
    # gradient-accumulation fusion does it in the wgrad GEMM's epilogue): read + write 4 B/param.
    mem_b = 2 * mem_f + 8.0 * _layer_param_local(model, tp) / (p.hbm_gbps * 1e9)
    act_b = 2.0 * tokens * model.d_model  # bf16 activations of one micro-batch (b*s*h*2)
    tp_one = p.collective_time(act_b, 2 * (tp - 1) / tp, inter=tp > GPUS_PER_NODE) if tp > 1 else 0.0
    kv_b = 2.0 * lay.micro_batch * lay.seq * 2 * max(model.kv_heads // tp, 1) * model.head_dim
    cp_one = p.collective_time(kv_b, (cp - 1) / cp, inter=node_cell > GPUS_PER_NODE) if cp > 1 else 0.0

    recompute_f = 1.0 if lay.recompute == "full" else 0.0
    # Selective recomputation (Korthikanti et al. 2022, arXiv:2205.05198 s5: recompute what holds
    # much memory for little work). Their pick, the attention core, stores nothing here: a
    # FlashAttention kernel already recomputes it inside its backward (counted in its 2.5x).
    # What this model drops instead (`activation_bytes_per_layer`) is the activation-function
    # output, as Megatron-Core's output-discarding checkpoint of the MLP activation does
    # (recompute_modules "moe_act"): backward re-runs SwiGLU/GELU from the saved up-projection,
    # a memory-bound op with no GEMM, costing its forward bytes again over HBM bandwidth.
    sel_f = _act_bytes_fwd(model, tokens, tp) / (p.hbm_gbps * 1e9) if lay.recompute == "selective" else 0.0
    per_layer = {
        "GEMM": g_f + g_b + recompute_f * g_f,
        "attention": a_f + a_b + recompute_f * a_f,
        "memory-bound ops": mem_f + mem_b + recompute_f * mem_f + sel_f,
        "TP collectives": (4 + 2 * recompute_f) * tp_one,
        "CP collectives": (2 + recompute_f) * cp_one,
    }
    # Output head on the last stage (logits GEMM + fp32 cross-entropy bytes); balanced against
    # layers at layer granularity (Llama 3 s3.3.2), so it costs only what exceeds one layer's share.
    h_f = p.gemm_time(tokens, model.vocab // tp, model.d_model)
    head = h_f + p.gemm_time(tokens, model.d_model, model.vocab // tp) + \
        p.gemm_time(model.d_model, model.vocab // tp, tokens) + 3 * tokens * model.vocab / tp * 4 / (p.hbm_gbps * 1e9)
    t_layer = sum(per_layer.values())
    last = layers if model.layers % pp == 0 else layers - 1  # Llama 3 layout: one fewer
    t_stage = max(layers * t_layer, last * t_layer + head) if pp > 1 else layers * t_layer + head
    p2p = 0.0
    if pp > 1:  # one send forward and one backward per micro-batch per virtual stage
        p2p = 2 * v * p.collective_time(act_b / tp, 1.0, inter=node_cell >= GPUS_PER_NODE)
    t_mb = t_stage + p2p
    busy = m * t_mb
    bubble_t = (pp - 1) * t_mb / v  # Narayanan et al. 2021: bubble (p-1)/(v*m) of the busy time

    # DP: fp32 gradient reduce-scatter (all-reduce without a sharded optimizer) + bf16 param
    # all-gather; overlapped with the backward of the last micro-batch (grads become ready as it runs)
    local = layers * model.layer_params() / tp + (model.vocab * model.d_model / tp)
    dp = lay.dp
    dp_t = 0.0
    if dp > 1:
        inter = node_cell * pp > GPUS_PER_NODE or dp * node_cell > GPUS_PER_NODE
        if lay.zero >= 1:
            dp_t = p.collective_time(local * 4, (dp - 1) / dp, inter) + \
                p.collective_time(local * 2, (dp - 1) / dp, inter)
        else:
            dp_t = p.collective_time(local * 4, 2 * (dp - 1) / dp, inter)
        if lay.zero >= 3:  # FSDP: parameters gathered again for every micro-batch's fwd and bwd
            dp_t += 2 * m * p.collective_time(local * 2, (dp - 1) / dp, inter)
    window = layers * (per_layer["GEMM"] + per_layer["attention"]) * 2 / 3 * (m if lay.zero >= 3 else 1)
    dp_exposed = max(0.0, dp_t - window)
    # Adam on the local shard: read fp32 master, m, v, grad; write master, m, v and bf16 weights
    shard = local / (dp if lay.zero >= 1 else 1)
    opt_t = shard * (16 + 12 + 2) / (p.hbm_gbps * 1e9)

    step_s = busy + bubble_t + dp_exposed + opt_t
    scale = m * layers
    breakdown = {k: v_ * scale for k, v_ in per_layer.items()}
    breakdown["output head (last stage)"] = t_stage - layers * t_layer if pp > 1 else head * m
    if pp > 1:
        breakdown["output head (last stage)"] *= m
    breakdown["PP send/recv"] = p2p * m
    breakdown["pipeline bubble"] = bubble_t
    breakdown["DP gradient sync (exposed)"] = dp_exposed
    breakdown["optimizer step"] = opt_t

    tok_gpu = lay.batch_tokens / step_s / lay.gpus
    mfu = model_flop_per_token(model, lay.seq) * tok_gpu / peak
    hw_per_tok = model_flop_per_token(model, lay.seq)
    if lay.recompute == "full":  # an extra forward: 2N + attention forward
        hw_per_tok *= 4 / 3
    hfu = hw_per_tok * tok_gpu / peak
    bubble = bubble_t / step_s
    return Result(model.name, lay, p.name, step_s, breakdown, tok_gpu, mfu, hfu, mem, total <= hbm, hbm, bubble)
