"""Cross Gloss Attention Fusion (CGAF): fuse the Pose and RGB step sequences (2 x T tokens of D).

Each of the `layers` layers updates both streams in parallel from the previous layer's values:

    pose' = pose + Attn(LN(pose), keys = LN([pose ; rgb]))  then  pose' + FFN(LN(pose'))
    rgb'  = rgb  + Attn(LN(rgb),  keys = LN([rgb ; pose]))  then  rgb'  + FFN(LN(rgb'))

A query at step i sees the keys of BOTH modalities at steps within `window` of i (|i - j| <= window;
null = every step), so a local segment attends to the nearby segments of similar meaning within its
own modality and across to the other one. Padded steps are never keys. Before the first layer both
streams get the sinusoidal step encoding and a learnt modality embedding (so keys say which stream
they come from). After the layers, as in the authors' Gloss_Fusion_Transformer:

    fused = LN(MLP([pose ; rgb]) + pose + rgb) + pose_in + rgb_in,   MLP: 2D -> 4D -> 2D -> D

With layers = 0 only that MLP fusion of the inputs remains (the paper's "w/o CGAF" ablation).

The authors' layers use deformable attention over 5 and then 3 sampled positions per query; a fixed
local window of the same reach (window 2 = 5 steps) is used here, and it is a param.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.models.seds.interaction import MLP, Attention


def sinusoidal(steps: int, dim: int) -> torch.Tensor:
    position = torch.arange(steps, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(steps, dim)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table


def local_permission(step_mask: torch.Tensor, window: int | None) -> torch.Tensor:
    """(B, T) valid steps -> (B, 1, T, 2T) bool: query step i may attend key j of either stream when j is
    valid and |i - j| <= window. A query always sees its own step in its own stream, so a padded query
    (ignored downstream) still has one key and the attention stays finite."""
    b, t = step_mask.shape
    steps = torch.arange(t, device=step_mask.device)
    near = torch.ones(t, t, dtype=torch.bool, device=step_mask.device) if window is None else \
        (steps[:, None] - steps[None, :]).abs() <= window
    keys_valid = torch.cat([step_mask, step_mask], dim=1)[:, None, :]           # B, 1, 2T
    allowed = torch.cat([near, near], dim=1)[None] & keys_valid                 # B, T, 2T
    own = torch.cat([torch.eye(t, dtype=torch.bool, device=step_mask.device),
                     torch.zeros(t, t, dtype=torch.bool, device=step_mask.device)], dim=1)
    return (allowed | own[None])[:, None]


class CrossLayer(nn.Module):
    """One stream's update: attention over [own ; other] keys, then a feed-forward block."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.ln_q = nn.LayerNorm(dim)
        self.ln_kv = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.ln_ff = nn.LayerNorm(dim)
        self.ff = MLP(dim, ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, own: torch.Tensor, other: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        keys = self.ln_kv(torch.cat([own, other], dim=1))
        x = own + self.drop(self.attn(self.ln_q(own), keys, allowed))
        return x + self.drop(self.ff(self.ln_ff(x)))


class MLPFusion(nn.Module):
    """LN(MLP([pose ; rgb]) + pose + rgb): the authors' MLP_feature_fusion."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, 2 * dim), nn.GELU(),
                                 nn.Linear(2 * dim, dim))
        self.ln = nn.LayerNorm(dim)

    def forward(self, pose: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return self.ln(self.mlp(torch.cat([pose, rgb], dim=-1)) + pose + rgb)


class CGAF(nn.Module):
    def __init__(self, dim: int = 512, layers: int = 2, heads: int = 8, ff: int = 2048, window: int | None = 2,
                 steps: int = 64, dropout: float = 0.1):
        super().__init__()
        self.window = window
        self.register_buffer("position", sinusoidal(steps, dim), persistent=False)
        self.modality = nn.Parameter(torch.zeros(2, dim))
        self.pose_layers = nn.ModuleList([CrossLayer(dim, heads, ff, dropout) for _ in range(layers)])
        self.rgb_layers = nn.ModuleList([CrossLayer(dim, heads, ff, dropout) for _ in range(layers)])
        self.ln_pose = nn.LayerNorm(dim) if layers else nn.Identity()
        self.ln_rgb = nn.LayerNorm(dim) if layers else nn.Identity()
        self.fusion = MLPFusion(dim)

    def forward(self, pose: torch.Tensor, rgb: torch.Tensor, step_mask: torch.Tensor) -> torch.Tensor:
        """pose, rgb (B, T, D) step tokens of one clip each, step_mask (B, T) bool -> fused (B, T, D)."""
        p, r = pose, rgb
        if self.pose_layers:
            t = pose.shape[1]
            p = p + self.position[:t] + self.modality[0]
            r = r + self.position[:t] + self.modality[1]
            allowed = local_permission(step_mask, self.window)
            for pose_layer, rgb_layer in zip(self.pose_layers, self.rgb_layers):
                p, r = pose_layer(p, r, allowed), rgb_layer(r, p, allowed)
        return self.fusion(self.ln_pose(p), self.ln_rgb(r)) + pose + rgb
