"""Named transformer shapes used to derive LLM-shaped benchmark cases.

Dense Llama 3.1 configurations from the published model configs (Llama 3 paper, Table 3:
8B: 32 layers, d_model 4096, FFN 14336, 32 heads, 8 KV heads; 70B: 80, 8192, 28672, 64,
8; 405B: 126, 16384, 53248, 128, 8; vocabulary 128,256; head dim 128).
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
    )
}
