"""The RTMCC head: from the stride-32 feature map to per-keypoint 1-D SimCC logits along x and y.

Per keypoint: a 7x7 conv makes one map per keypoint, flattened to a token; ScaleNorm + linear give a
256-d token; one gated attention unit (GAU) mixes the 133 tokens; two linear layers give logits over
`input width * split ratio` x bins and `input height * split ratio` y bins. Parameter names follow
mmpose 1.3's `RTMCCHead`/`RTMCCBlock` (self-attention, no relative bias, no rotary encoding, as
every RTMPose-WholeBody config sets them), so official state dicts load by key.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ScaleNorm(nn.Module):
    """x / (||x|| / sqrt(dim)) * g: one learned scalar, no centring."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    """Learned per-channel multiplier of the residual path."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class GatedAttentionUnit(nn.Module):
    """Self-attention GAU over keypoint tokens: u * (relu(q k^T / sqrt(s))^2 v), plus a scaled residual."""

    def __init__(self, dims: int, s: int = 128, expansion_factor: int = 2, eps: float = 1e-5):
        super().__init__()
        self.s = s
        self.e = int(dims * expansion_factor)
        self.ln = ScaleNorm(dims, eps=eps)
        self.uv = nn.Linear(dims, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand((2, s)))
        self.beta = nn.Parameter(torch.rand((2, s)))
        self.o = nn.Linear(self.e, dims, bias=False)
        self.res_scale = Scale(dims)
        self.act_fn = nn.SiLU(inplace=True)
        self.sqrt_s = math.sqrt(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = self.act_fn(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=2)
        base = base.unsqueeze(2) * self.gamma[None, None, :] + self.beta  # (B, K, 2, s)
        q, k = torch.unbind(base, dim=2)
        kernel = torch.square(F.relu(torch.bmm(q, k.permute(0, 2, 1)) / self.sqrt_s))
        return self.res_scale(x) + self.o(u * torch.bmm(kernel, v))


class RTMCCHead(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_keypoints: int,
        input_size: tuple[int, int],
        feature_size: tuple[int, int],
        split_ratio: float,
        kernel_size: int,
        hidden_dims: int,
        s: int,
        expansion_factor: int,
    ):
        super().__init__()
        tokens = feature_size[0] * feature_size[1]
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size, padding=kernel_size // 2)
        self.mlp = nn.Sequential(ScaleNorm(tokens), nn.Linear(tokens, hidden_dims, bias=False))
        self.gau = GatedAttentionUnit(hidden_dims, s, expansion_factor)
        self.cls_x = nn.Linear(hidden_dims, int(input_size[0] * split_ratio), bias=False)
        self.cls_y = nn.Linear(hidden_dims, int(input_size[1] * split_ratio), bias=False)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, h, w) -> SimCC logits x (B, K, W * ratio) and y (B, K, H * ratio)."""
        tokens = self.gau(self.mlp(torch.flatten(self.final_layer(features), 2)))
        return self.cls_x(tokens), self.cls_y(tokens)
