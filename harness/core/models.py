"""Named transformer shapes used to derive LLM-shaped benchmark cases.

Dense Llama 3.1 configurations from the published model configs (Llama 3 paper, Table 3:
8B: 32 layers, d_model 4096, FFN 14336, 32 heads, 8 KV heads; 70B: 80, 8192, 28672, 64,
8; 405B: 126, 16384, 53248, 128, 8; vocabulary 128,256; head dim 128).

GPT-3 175B (Brown et al. 2020, Table 2.1): 96 layers, d_model 12288, 96 heads of 128, FFN 4 x
d_model (GELU, not gated), vocabulary 50,257. MoE preset in the Mixtral 8x22B shape (Mistral AI
model config: 56 layers, d_model 6144, FFN 16384, 48 heads, 8 KV heads, 8 experts, top-2,
vocabulary 32,768): ~141B total, ~39B active parameters per token.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Transformer:
    name: str
    layers: int
    d_model: int
    ffn: int
    heads: int
    kv_heads: int
    vocab: int
    head_dim: int = 128
    gated_mlp: bool = True  # SwiGLU: the up projection produces gate and up (2 × ffn)
    experts: int = 1  # MoE: experts per layer (1 = dense)
    top_k: int = 1  # MoE: experts each token is routed to

    def layer_params(self, active: bool = False) -> int:
        """Weights of one layer (norm weights ignored): attention + MLP (+ router). `active`:
        the experts a token passes through (top_k) instead of all of them."""
        attn = self.d_model * (self.heads + 2 * self.kv_heads) * self.head_dim
        attn += self.heads * self.head_dim * self.d_model
        mlp = ((3 if self.gated_mlp else 2) * self.d_model * self.ffn)
        n_exp = self.top_k if active else self.experts
        router = self.d_model * self.experts if self.experts > 1 else 0
        return attn + mlp * n_exp + router

    def params(self, active: bool = False) -> int:
        """All weights: layers + input embedding + output head (untied, as in Llama 3)."""
        return self.layers * self.layer_params(active) + 2 * self.vocab * self.d_model

    def gemms(self, tokens: int) -> list[tuple[str, int, int, int]]:
        """(name, m, n, k) of the forward GEMMs of one layer plus the logits, y = x @ W."""
        qkv = (self.heads + 2 * self.kv_heads) * self.head_dim
        up = (2 if self.gated_mlp else 1) * self.ffn
        return [
            ("qkv", tokens, qkv, self.d_model),
            ("attn_out", tokens, self.d_model, self.heads * self.head_dim),
            ("mlp_up", tokens, up, self.d_model),
            ("mlp_down", tokens, self.d_model, self.ffn),
            ("logits", tokens, self.vocab, self.d_model),
        ]


MODELS = {
    m.name: m
    for m in (
        Transformer("llama3-8b", 32, 4096, 14336, 32, 8, 128256),
        Transformer("llama3-70b", 80, 8192, 28672, 64, 8, 128256),
        Transformer("llama3-405b", 126, 16384, 53248, 128, 8, 128256),
        Transformer("gpt3-175b", 96, 12288, 49152, 96, 96, 50257, gated_mlp=False),
        Transformer("moe-8x22b", 56, 6144, 16384, 48, 8, 32768, experts=8, top_k=2),
    )
}
