"""The RGB and Pose interaction towers: CLIP ViT-B/32's visual transformer fed with feature vectors.

Authors: longtaojiang/SEDS modules/module_clip.py, FeatureTransformer (built by CLIP as `visual`
for the pose tower and by CLIP_vision for the RGB tower), and CLIP.encode_image(return_hidden=True).

    features (B, T, d_in), T = steps (64) windows, zero-padded
      input_proj: 1x1 conv d_in -> width (no bias)                 [their conv1]
      (token_merge: 1x1 conv over the token axis 2T -> T, only when 2T tokens arrive: CiCo's
       concatenated feature sets; [their conv2_trans])
      [class_embedding ; tokens] + positional_embedding (T + 1 learned positions) -> ln_pre
      `layers` CLIP blocks, padded windows masked as keys (the class token is always valid)
      ln_post, then @ proj (width -> embed_dim) on ALL T + 1 tokens       -> (B, T + 1, embed_dim)

Every token is returned (the FILIP objectives use them all, the class token included, as the
authors' do). Shapes and names follow CLIP's visual tower, so CLIP's weights initialise everything
but input_proj and the positions, whose shapes differ (clip_weights.py), as in the authors' code.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.seds.clip_blocks import LayerNormFP32, Transformer


class FeatureTower(nn.Module):
    def __init__(
        self, in_dim: int, steps: int = 64, width: int = 768, layers: int = 12, heads: int = 12, embed_dim: int = 512
    ):
        super().__init__()
        self.steps = steps
        scale = width**-0.5
        self.input_proj = nn.Conv2d(in_dim, width, kernel_size=1, bias=False)
        self.token_merge = nn.Conv2d(2 * steps, steps, kernel_size=1, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn(steps + 1, width))
        self.ln_pre = LayerNormFP32(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNormFP32(width)
        self.proj = nn.Parameter(scale * torch.randn(width, embed_dim))

    def forward(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """features (B, T, d_in) with T = steps (or 2 x steps, merged), valid (B, steps + 1) bool
        (index 0 = the class token) -> tokens (B, steps + 1, embed_dim)."""
        b, t, _ = features.shape
        x = self.input_proj(features.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)  # (B, T, W)
        if t == 2 * self.steps:
            x = self.token_merge(x.unsqueeze(-1)).squeeze(-1)
        elif t != self.steps:
            raise ValueError(f"the interaction tower takes {self.steps} (or {2 * self.steps}) windows, got {t}")
        x = torch.cat([self.class_embedding.to(x.dtype).expand(b, 1, -1), x], dim=1)
        x = self.ln_pre(x + self.positional_embedding.to(x.dtype))
        x = self.transformer(x, padding=~valid)
        return self.ln_post(x) @ self.proj.to(x.dtype)
