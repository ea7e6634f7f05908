"""The transformer blocks of CLIP (Radford et al. 2021), as the SEDS towers use them.

Authors: longtaojiang/SEDS modules/module_clip.py (LayerNorm, QuickGELU, ResidualAttentionBlock and
Transformer for text; VResidualAttentionBlock and VTransformer, the same block with a key padding
mask, for the feature towers). Parameter names are OpenAI CLIP's own (`ln_1`, `attn.in_proj_weight`,
`mlp.c_fc`, ...), so CLIP's published weights load by name (pipeline/models/seds/clip_weights.py).

A block is pre-LN: x + Attn(LN(x)), then x + MLP(LN(x)), MLP = Linear(w, 4w), QuickGELU, Linear(4w, w).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


class LayerNormFP32(nn.LayerNorm):
    """LayerNorm computed in float32 and returned in the input's dtype (CLIP's fp16-safe LayerNorm)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.float()).to(x.dtype)


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x): the activation CLIP was trained with."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"transformer width {width} is not divisible by {heads} heads")
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_1 = LayerNormFP32(width)
        self.mlp = nn.Sequential(
            OrderedDict(
                [("c_fc", nn.Linear(width, 4 * width)), ("gelu", QuickGELU()), ("c_proj", nn.Linear(4 * width, width))]
            )
        )
        self.ln_2 = LayerNormFP32(width)

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, padding: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, L, W); attn_mask (L, L) additive; padding (B, L) bool, True = a key to ignore."""
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=attn_mask, key_padding_mask=padding)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.ModuleList(ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, padding: torch.Tensor | None = None
    ) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x, attn_mask, padding)
        return x
