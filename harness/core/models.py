"""Transformer shapes: the presets (data files) and any model given as a config file.

A shape is read from a Hugging Face `config.json` (the keys of LlamaConfig, MistralConfig,
MixtralConfig, Qwen2Config, DeepseekV3Config, GPT2Config, GPTNeoXConfig: transformers'
`configuration_*.py`, listed in docs/sources.md "Model shapes") or from a small TOML file with the
same keys. The presets are such TOML files in harness/data/models/ (each names its source);
`load_model(name_or_path)` takes a preset name or alias, or a path. Unknown keys are ignored;
a missing or impossible field is a one-line UsageError naming the field and the rule.

Gated MLP (SwiGLU: gate, up and down matmuls) is not a config key: it follows `model_type`
(llama, mistral, mixtral, qwen2, deepseek_v3, ...), else `hidden_act` (silu -> gated, gelu ->
not), and a `gated_mlp` key overrides both. MoE: `num_local_experts` / `n_routed_experts`
experts of `moe_intermediate_size` (else `intermediate_size`) columns, `num_experts_per_tok` per
token, `n_shared_experts` always active, the first `first_k_dense_replace` layers dense.
DeepSeek's multi-head latent attention (MLA) is kept as its projection shapes
(`q_lora_rank`, `kv_lora_rank`, `qk_nope_head_dim`, `qk_rope_head_dim`, `v_head_dim`).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from harness.core.errors import UsageError


@dataclass(frozen=True)
class Transformer:
    name: str
    layers: int
    d_model: int
    ffn: int  # MLP columns of a dense layer
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int = 128  # query/key head dim (MLA: nope + rope)
    gated_mlp: bool = True  # SwiGLU: the up projection produces gate and up (2 × ffn)
    experts: int = 1  # MoE: routed experts per MoE layer (1 = dense)
    top_k: int = 1  # MoE: routed experts each token goes to
    tied_embeddings: bool = False  # output head shares the input embedding's weights
    shared_experts: int = 0  # MoE: experts every token goes through (DeepSeek)
    dense_layers: int = 0  # MoE: the first layers that are dense (DeepSeek first_k_dense_replace)
    moe_ffn: int = 0  # MoE: columns of one expert (0 = ffn)
    v_head_dim: int = 0  # 0 = head_dim
    q_lora_rank: int = 0  # MLA (0 = plain multi-/grouped-query attention)
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    source: str = ""

    @property
    def moe(self) -> bool:
        return self.experts > 1

    @property
    def mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def v_dim(self) -> int:
        return self.v_head_dim or self.head_dim

    @property
    def expert_ffn(self) -> int:
        return self.moe_ffn or self.ffn

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.moe else 0

    def attn_params(self) -> int:
        return sum(n * k for _, _, n, k, c in self._attn_shapes(1, 1) for _ in range(c))

    def _attn_shapes(self, tokens: int, tp: int) -> list[tuple[str, int, int, int, int]]:
        """(name, m, n, k, count) of the attention projections per GPU, y = x @ W, heads split over
        tp (KV heads replicated where tp exceeds them, as Megatron does)."""
        h, q_local = self.d_model, self.heads // tp
        if self.mla:  # DeepSeek-V2/V3 MLA: low-rank Q and KV paths (down-projections replicated)
            q = [("q_down", tokens, self.q_lora_rank, h, 1),
                 ("q_up", tokens, q_local * self.head_dim, self.q_lora_rank, 1)] if self.q_lora_rank \
                else [("q", tokens, q_local * self.head_dim, h, 1)]
            nope = self.head_dim - self.qk_rope_head_dim
            return q + [("kv_down", tokens, self.kv_lora_rank + self.qk_rope_head_dim, h, 1),
                        ("kv_up", tokens, q_local * (nope + self.v_dim), self.kv_lora_rank, 1),
                        ("attn_out", tokens, h, q_local * self.v_dim, 1)]
        kv_local = max(self.kv_heads // tp, 1) * self.head_dim
        return [("qkv", tokens, q_local * self.head_dim + 2 * kv_local, h, 1),
                ("attn_out", tokens, h, q_local * self.v_dim, 1)]

    def _mlp_shapes(self, tokens: int, tp: int, moe: bool) -> list[tuple[str, int, int, int, int]]:
        g = 2 if self.gated_mlp else 1
        h = self.d_model
        if not moe:
            f = self.ffn // tp
            return [("mlp_up", tokens, g * f, h, 1), ("mlp_down", tokens, h, f, 1)]
        f = self.expert_ffn // tp
        # Each routed expert sees tokens x top_k / experts rows (balanced routing); all experts local.
        rows = max(tokens * self.top_k // self.experts, 1)
        out = [("expert_up", rows, g * f, h, self.experts), ("expert_down", rows, h, f, self.experts),
               ("router", tokens, self.experts, h, 1)]
        if self.shared_experts:
            out += [("shared_up", tokens, g * f * self.shared_experts, h, 1),
                    ("shared_down", tokens, h, f * self.shared_experts, 1)]
        return out

    def layer_gemms(self, tokens: int, tp: int = 1, moe: bool | None = None) -> list[tuple[str, int, int, int, int]]:
        """(name, m, n, k, count) of one layer's forward GEMMs per GPU at tensor parallelism tp
        (columns or rows split over tp). `moe`: an MoE layer (default: the model's typical layer)."""
        moe = self.moe if moe is None else moe
        return self._attn_shapes(tokens, tp) + self._mlp_shapes(tokens, tp, moe)

    def head_gemm(self, tokens: int, tp: int = 1) -> tuple[str, int, int, int, int]:
        return ("logits", tokens, self.vocab // tp, self.d_model, 1)

    def layer_params(self, active: bool = False, moe: bool | None = None) -> int:
        """Weights of one layer (norm weights ignored). `active`: the experts a token passes
        through (top_k + shared) instead of all of them. `moe`: an MoE layer (default: the model's
        typical layer)."""
        return _layer_params(self, active, self.moe if moe is None else moe)

    def _count_layer_params(self, active: bool, moe: bool) -> int:
        total = 0
        for _, _, n, k, count in self.layer_gemms(1, 1, moe):
            if active and moe and count == self.experts:
                count = self.top_k
            total += n * k * count
        return total

    def body_params(self, active: bool = False) -> int:
        """All transformer layers (dense and MoE)."""
        dense = self.layers - self.moe_layers
        return dense * self.layer_params(active, moe=False) + self.moe_layers * self.layer_params(active, moe=True)

    def params(self, active: bool = False) -> int:
        """All weights: layers + input embedding + output head (unless tied)."""
        head = 0 if self.tied_embeddings else self.vocab * self.d_model
        return self.body_params(active) + self.vocab * self.d_model + head

    def gemms(self, tokens: int) -> list[tuple[str, int, int, int]]:
        """(name, m, n, k) of the forward GEMMs of one layer plus the logits, y = x @ W (the
        GEMM family's LLM-shaped cases; no TP split, dense MLP)."""
        qkv = (self.heads + 2 * self.kv_heads) * self.head_dim
        up = (2 if self.gated_mlp else 1) * self.ffn
        return [
            ("qkv", tokens, qkv, self.d_model),
            ("attn_out", tokens, self.d_model, self.heads * self.head_dim),
            ("mlp_up", tokens, up, self.d_model),
            ("mlp_down", tokens, self.d_model, self.ffn),
            ("logits", tokens, self.vocab, self.d_model),
        ]


# ---------------------------------------------------------------- reading a config

# Each field: the keys that may hold it, first match wins (HF names first, then GPT-2's, then
# gwbench's short names).
KEYS: dict[str, tuple[str, ...]] = {
    "d_model": ("hidden_size", "n_embd", "d_model"),
    "layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "heads": ("num_attention_heads", "n_head", "num_heads"),
    "kv_heads": ("num_key_value_heads", "num_kv_heads", "multi_query_group_num"),
    "ffn": ("intermediate_size", "n_inner", "ffn_hidden_size", "ffn"),
    "vocab": ("vocab_size", "padded_vocab_size", "vocab"),
    "head_dim": ("head_dim", "kv_channels"),
    "experts": ("num_local_experts", "n_routed_experts", "num_experts"),
    "top_k": ("num_experts_per_tok", "moe_router_topk", "experts_per_token"),
    "shared_experts": ("n_shared_experts", "shared_experts"),
    "dense_layers": ("first_k_dense_replace", "dense_layers"),
    "moe_ffn": ("moe_intermediate_size", "moe_ffn_hidden_size"),
    "q_lora_rank": ("q_lora_rank",),
    "kv_lora_rank": ("kv_lora_rank",),
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "v_head_dim": ("v_head_dim",),
}
REQUIRED = ("d_model", "layers", "heads", "vocab")
GATED_TYPES = {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "deepseek_v2",
               "deepseek_v3", "gemma", "gemma2", "phi3", "olmo", "olmo2", "nemotron_h", "granite"}
GELU_TYPES = {"gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "gpt_bigcode", "nemotron", "starcoder2"}
TIED_BY_DEFAULT = {"gpt2", "gpt_bigcode"}  # GPT2Config leaves PretrainedConfig's default (True)


def _fail(where: str, field: str, rule: str) -> UsageError:
    return UsageError(f"{where}: {field}: {rule}")


def _first(raw: dict[str, Any], field: str) -> tuple[str, Any] | None:
    for key in KEYS[field]:
        if raw.get(key) is not None:
            return key, raw[key]
    return None


def _int(raw: dict[str, Any], field: str, where: str, default: int | None = None, minimum: int = 1) -> int:
    hit = _first(raw, field)
    if hit is None:
        if default is None:
            raise _fail(where, KEYS[field][0], "required")
        return default
    key, v = hit
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v):
        raise _fail(where, key, f"must be a whole number, got {v!r}")
    if int(v) < minimum:
        raise _fail(where, key, f"must be >= {minimum}, got {v!r}")
    return int(v)


def _bool(raw: dict[str, Any], key: str, where: str, default: bool) -> bool:
    v = raw.get(key, default)
    if not isinstance(v, bool):
        raise _fail(where, key, f"must be true or false, got {v!r}")
    return v


def _gated(raw: dict[str, Any], where: str) -> bool:
    if "gated_mlp" in raw:
        return _bool(raw, "gated_mlp", where, True)
    mtype = str(raw.get("model_type", "")).lower()
    if mtype in GATED_TYPES:
        return True
    if mtype in GELU_TYPES:
        return False
    act = str(raw.get("hidden_act") or raw.get("activation_function") or "").lower()
    if act in ("silu", "swiglu", "swish", "geglu"):
        return True
    if act.startswith("gelu") or act == "relu":
        return False
    raise _fail(where, "gated_mlp", "cannot tell whether the MLP is gated (no known model_type or "
                "hidden_act): give gated_mlp = true (SwiGLU) or false (GELU)")


def from_config(raw: Any, name: str, where: str) -> Transformer:
    """A Transformer from a config mapping (HF config.json keys or gwbench's TOML keys)."""
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: expected a JSON object / TOML table of model fields")
    missing = [KEYS[f][0] for f in REQUIRED if _first(raw, f) is None]
    if _first(raw, "ffn") is None and str(raw.get("model_type", "")).lower() != "gpt2":
        missing.append(KEYS["ffn"][0])
    if missing:
        raise _fail(where, ", ".join(missing), "required (missing)")
    h = _int(raw, "d_model", where)
    layers = _int(raw, "layers", where)
    heads = _int(raw, "heads", where)
    if h % heads:
        raise _fail(where, _first(raw, "heads")[0], f"{heads} heads do not divide the hidden size {h}")
    kv = _int(raw, "kv_heads", where, default=heads)
    if heads % kv:
        raise _fail(where, _first(raw, "kv_heads")[0], f"{kv} KV heads do not divide the {heads} attention heads")
    ffn = _int(raw, "ffn", where, default=4 * h)  # GPT-2: n_inner None -> 4 x n_embd
    vocab = _int(raw, "vocab", where)
    experts = _int(raw, "experts", where, default=1)
    top_k = _int(raw, "top_k", where, default=1)
    if top_k > experts:
        raise _fail(where, _first(raw, "top_k")[0], f"{top_k} experts per token exceed the {experts} experts")
    dense = _int(raw, "dense_layers", where, default=0, minimum=0)
    if dense > layers:
        raise _fail(where, _first(raw, "dense_layers")[0], f"{dense} dense layers exceed the {layers} layers")
    mtype = str(raw.get("model_type", "")).lower()
    kv_lora = _int(raw, "kv_lora_rank", where, default=0, minimum=0)
    head_dim = _int(raw, "head_dim", where, default=h // heads)
    rope = nope = v_dim = 0
    if kv_lora:  # MLA: HF sets head_dim to the rope part; the Q/K head is nope + rope
        rope = _int(raw, "qk_rope_head_dim", where)
        nope = _int(raw, "qk_nope_head_dim", where)
        v_dim = _int(raw, "v_head_dim", where)
        head_dim = nope + rope
    else:
        v_dim = _int(raw, "v_head_dim", where, default=0, minimum=0)
    return Transformer(
        name=str(raw.get("name") or name), layers=layers, d_model=h, ffn=ffn, heads=heads, kv_heads=kv,
        vocab=vocab, head_dim=head_dim, gated_mlp=_gated(raw, where), experts=experts,
        top_k=top_k if experts > 1 else 1,
        tied_embeddings=_bool(raw, "tie_word_embeddings", where, mtype in TIED_BY_DEFAULT),
        shared_experts=_int(raw, "shared_experts", where, default=0, minimum=0) if experts > 1 else 0,
        dense_layers=dense if experts > 1 else 0,
        moe_ffn=_int(raw, "moe_ffn", where, default=0, minimum=0) if experts > 1 else 0,
        v_head_dim=v_dim, q_lora_rank=_int(raw, "q_lora_rank", where, default=0, minimum=0),
        kv_lora_rank=kv_lora, qk_rope_head_dim=rope, source=str(raw.get("source", "")))


def read_config(path: Path) -> Transformer:
    """A Transformer from a config.json or TOML file (one-line UsageError when it is not one)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read model config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a text file (expected a config.json or TOML model file)") from None
    raw: Any = None
    errors = []
    parsers = (("JSON", json.loads), ("TOML", tomllib.loads))
    if path.suffix.lower() == ".toml":
        parsers = parsers[::-1]
    for kind, parse in parsers:
        try:
            raw = parse(text)
            break
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            errors.append(f"{kind}: {' '.join(str(exc).split())}")
    else:
        raise UsageError(f"{path}: neither JSON nor TOML ({'; '.join(errors)})")
    return from_config(raw, path.stem, str(path))


# ---------------------------------------------------------------- presets (harness/data/models)


@lru_cache(maxsize=1)
def _presets() -> tuple[dict[str, Transformer], dict[str, str]]:
    models: dict[str, Transformer] = {}
    aliases: dict[str, str] = {}
    folder = resources.files("harness.data").joinpath("models")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        raw = tomllib.loads(entry.read_text(encoding="utf-8"))
        m = from_config(raw, entry.name.removesuffix(".toml"), f"harness/data/models/{entry.name}")
        models[m.name] = m
        for a in raw.get("aliases", []):
            aliases[str(a).lower()] = m.name
    return models, aliases


def presets() -> dict[str, Transformer]:
    return dict(_presets()[0])


def preset_names() -> list[str]:
    """Short aliases first (8b, 70b, ...), then the full names."""
    models, aliases = _presets()
    return [*aliases, *models]


def load_model(spec: str | Path) -> Transformer:
    """A preset name or alias, or a config.json / TOML path."""
    models, aliases = _presets()
    key = str(spec).lower()
    if key in aliases or key in models:
        return models[aliases.get(key, key)]
    path = Path(spec)
    if path.is_file():
        return read_config(path)
    raise UsageError(f"unknown model {str(spec)!r}: a preset ({', '.join(preset_names())}) or the path "
                     "of a Hugging Face config.json or a TOML model file")


MODELS = presets()


@lru_cache(maxsize=4096)
def _layer_params(model: Transformer, active: bool, moe: bool) -> int:
    """Memoised: the layout searches ask for the same model's layer size millions of times (the
    model is a frozen dataclass, so it keys the cache)."""
    return model._count_layer_params(active, moe)
