"""RGB interaction and Pose interaction: transformer encoders over the 64 clip steps of one modality.

    features (B, T, d_in) -> Linear(d_in -> width) + learnt position embedding -> LayerNorm
      -> `layers` pre-LN blocks (self-attention over the valid steps, MLP x4) -> LayerNorm
      -> Linear(width -> embed_dim, no bias)                                   -> (B, T, embed_dim)

This is the shape of the authors' FeatureTransformer (CLIP ViT-B/32's visual transformer fed with
feature vectors instead of patches: width 768, 12 layers, 12 heads), without the class token: the
objectives use every step token, and the CGAF fuses the steps position by position. Padded steps
(clips with fewer than T windows) are masked out of attention as keys. The authors initialise these
blocks from CLIP's visual tower; here they start random (no CLIP image weights are used).

The attention is written with F.scaled_dot_product_attention (fused kernels on GPU, counted by
torch's FLOP counter), shared with the CGAF module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention of queries over a separate key/value sequence (self-attention when equal)."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, query: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        """query (B, Lq, D), keys (B, Lk, D), allowed: bool broadcastable to (B, 1, Lq, Lk), True = may attend."""
        b, lq, d = query.shape
        lk = keys.shape[1]
        split = lambda x, n: x.view(b, n, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q(query), lq), split(self.k(keys), lk), split(self.v(keys), lk)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out(out.transpose(1, 2).reshape(b, lq, d))


class MLP(nn.Sequential):
    def __init__(self, width: int, hidden: int, dropout: float):
        super().__init__(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width))


class Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads, dropout)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = MLP(width, int(width * mlp_ratio), dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.drop(self.attn(h, h, allowed))
        return x + self.drop(self.mlp(self.ln_2(x)))


def key_padding(step_mask: torch.Tensor) -> torch.Tensor:
    """(B, L) bool valid steps -> (B, 1, 1, L) attention permission for every query."""
    return step_mask[:, None, None, :]


class Interaction(nn.Module):
    def __init__(self, in_dim: int, width: int = 768, layers: int = 12, heads: int = 12, embed_dim: int = 512,
                 steps: int = 64, mlp_ratio: float = 4.0, dropout: float = 0.1):
        super().__init__()
        self.proj_in = nn.Linear(in_dim, width, bias=False)
        self.position = nn.Parameter(torch.randn(steps, width) * width ** -0.5)
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio, dropout) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj_out = nn.Linear(width, embed_dim, bias=False)

    def forward(self, x: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
        """x (B, T, in_dim), step_mask (B, T) bool -> (B, T, embed_dim)."""
        t = x.shape[1]
        if t > self.position.shape[0]:
            raise ValueError(f"{t} steps, but the interaction module was built for at most {self.position.shape[0]}")
        h = self.ln_pre(self.proj_in(x) + self.position[:t])
        allowed = key_padding(step_mask)
        for block in self.blocks:
            h = block(h, allowed)
        return self.proj_out(self.ln_post(h))
