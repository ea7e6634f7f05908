"""Cross Gloss Attention Fusion (CGAF): deformable cross attention between the Pose and RGB tokens.

Authors: longtaojiang/SEDS modules/module_fusionencoder.py: Gloss_Fusion_Transformer (the fusion,
`--fusion_type gloss_atten`), DeformableTransformerEncoderLayer, DeformableMultiHeadedAttention,
PositionwiseFeedForward, PositionalEncoding, and MLP_feature_fusion (`--fusion_type mlp`, the paper's
"w/o CGAF"); wired in modules/modeling.py (CLIP4Clip.__init__ and flip_similarity_softmax).

    pose_in, rgb_in (B, N = steps + 1 tokens, D)
    p, r = pose_in + PE, rgb_in + PE                       sinusoidal positions (5000-row table)
    per layer l (both updated from the previous layer's values):
        p' = pose_layers[l](own = p, other = r),  r' = rgb_layers[l](own = r, other = p)
    fused = mix(pose_norm(p), rgb_norm(r)) + pose_in + rgb_in
    mix(p, r) = LN_1e-12(fc3(g(fc2(g(fc1([p ; r]))))) + p + r),  g = QuickGELU, 2D -> 4D -> 2D -> D

A layer (DeformableTransformerEncoderLayer.forward calls src_src_att(q_norm, vk, vk, mask) with the
signature (k, v, q, mask), so the roles are, exactly as their weights were trained):
    keys    = key_proj(LN(own))          values = value_proj(other)       queries = query_proj(other)
    at token i, n keys and values are read at positions (i + reference + offset) modulo (valid tokens
    - 1), where reference = [-3..1] for 5 keys and [-2..0] for 3 (`reference_points`) and
    offset = offsets(query_i) is learnt per head and key; reads interpolate linearly (`sample`);
    scores = query . key / sqrt(head size), softmax over the n keys (no mask), dropout,
    h = out_proj(sum of weights x values), then  h' = own + dropout(h),  out = h' + FFN(LN(h')).
Layers are `keys_per_layer` long: [5, 3] in the authors' two-layer CGAF. With no layers, the module is
the authors' MLP fusion alone: fused = mix(pose_in, rgb_in) (no positions, norms or added inputs).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.models.seds.clip_blocks import LayerNormFP32, QuickGELU

NORM_EPS = 1e-6  # the layers' nn.LayerNorm(size, eps=1e-6)
MIX_NORM_EPS = 1e-12  # until_module.LayerNorm, TF style, default eps
POSITIONS = 5000  # PositionalEncoding max_len


def sinusoid_table(rows: int, dim: int) -> torch.Tensor:
    """(1, rows, dim): sin on even channels, cos on odd, wavelengths 2 pi .. 10000 x 2 pi."""
    if dim % 2:
        raise ValueError(f"sinusoidal positions need an even width, got {dim}")
    position = torch.arange(rows, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    table = torch.zeros(rows, dim)
    table[:, 0::2] = torch.sin(position * rate)
    table[:, 1::2] = torch.cos(position * rate)
    return table[None]


def reference_points(keys: int) -> torch.Tensor:
    """Where a query's keys sit relative to it before the learnt offsets: arange(-keys // 2, keys - keys // 2)
    with Python's floor division of the negative number, e.g. [-3, -2, -1, 0, 1] for 5 keys."""
    left = -keys // 2
    return torch.arange(left, keys + left, dtype=torch.float32)


def sample(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Read tokens (B, H, N, C) at fractional positions (B, H, Q, K) -> (B, H, Q, K, C).

    The authors read with F.grid_sample(bilinear, zeros padding, align_corners=False) on an input of
    height 1 and width N, x = position / (N - 1) * 2 - 1 and y = 1. In pixel terms that is the column
    u = position * N / (N - 1) - 0.5 and the row 0.5: half way between the one real row and the zero
    padding below it, so every read value is halved; columns outside [0, N - 1] read zero. This
    function computes exactly that (tested against F.grid_sample)."""
    n = tokens.shape[2]
    u = positions * (n / (n - 1)) - 0.5
    left = torch.floor(u)
    frac = (u - left).unsqueeze(-1)
    left = left.long()

    def column(index: torch.Tensor) -> torch.Tensor:
        inside = ((index >= 0) & (index < n)).unsqueeze(-1).to(tokens.dtype)
        b, h, q, k = index.shape
        flat = index.clamp(0, n - 1).reshape(b, h, q * k, 1).expand(-1, -1, -1, tokens.shape[-1])
        return torch.gather(tokens, 2, flat).view(b, h, q, k, -1) * inside

    return 0.5 * ((1 - frac) * column(left) + frac * column(left + 1))


class DeformableCrossAttention(nn.Module):
    def __init__(self, width: int, heads: int, keys: int, dropout: float):
        super().__init__()
        if width % heads:
            raise ValueError(f"CGAF width {width} is not divisible by {heads} heads")
        self.heads, self.keys, self.head_size = heads, keys, width // heads
        self.key_proj = nn.Linear(width, width)
        self.value_proj = nn.Linear(width, width)
        self.query_proj = nn.Linear(width, width)
        self.offsets = nn.Linear(width, heads * keys)
        self.out_proj = nn.Linear(width, width)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("reference", reference_points(keys), persistent=False)

    def forward(self, key_source: torch.Tensor, other: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """key_source (B, N, D) the normed own stream, other (B, N, D), valid (B, N) bool -> (B, N, D)."""
        b, n, d = other.shape
        h, k, c = self.heads, self.keys, self.head_size
        split = lambda x: x.view(b, n, h, c).transpose(1, 2)  # noqa: E731  (B, H, N, C)
        keys, values = split(self.key_proj(key_source)), split(self.value_proj(other))
        queries = self.query_proj(other)
        offsets = self.offsets(queries).view(b, n, h, k).transpose(1, 2)  # (B, H, N, K)
        span = (valid.sum(-1).to(offsets.dtype) - 1).view(b, 1, 1, 1)  # valid tokens - 1
        where = torch.arange(n, device=other.device, dtype=offsets.dtype).view(1, 1, n, 1)
        positions = torch.remainder(self.reference.to(offsets.dtype) + offsets + where, span)
        sampled_keys, sampled_values = sample(keys, positions), sample(values, positions)  # (B, H, N, K, C)
        scores = (split(queries).unsqueeze(3) / math.sqrt(c) * sampled_keys).sum(-1)  # (B, H, N, K)
        weights = self.dropout(scores.softmax(dim=-1))
        context = (weights.unsqueeze(-1) * sampled_values).sum(-2)  # (B, H, N, C)
        return self.out_proj(context.transpose(1, 2).reshape(b, n, d))


class FeedForward(nn.Module):
    """x + dropout(fc2(dropout(ReLU(fc1(LN(x))))))  (PositionwiseFeedForward)."""

    def __init__(self, width: int, hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=NORM_EPS)
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.fc2(self.dropout(self.relu(self.fc1(self.norm(x))))))


class CGAFLayer(nn.Module):
    def __init__(self, width: int, heads: int, keys: int, ff: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=NORM_EPS)
        self.attn = DeformableCrossAttention(width, heads, keys, dropout)
        self.ff = FeedForward(width, ff, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, own: torch.Tensor, other: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.ff(own + self.dropout(self.attn(self.norm(own), other, valid)))


class MixFusion(nn.Module):
    """LN(MLP([pose ; rgb]) + pose + rgb): the authors' MLP_feature_fusion."""

    def __init__(self, width: int):
        super().__init__()
        self.fc1 = nn.Linear(2 * width, 4 * width)
        self.fc2 = nn.Linear(4 * width, 2 * width)
        self.fc3 = nn.Linear(2 * width, width)
        self.gelu = QuickGELU()
        self.norm = LayerNormFP32(width, eps=MIX_NORM_EPS)

    def forward(self, pose: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        mixed = self.fc3(self.gelu(self.fc2(self.gelu(self.fc1(torch.cat([pose, rgb], dim=-1))))))
        return self.norm(mixed + pose + rgb)


class CGAF(nn.Module):
    def __init__(
        self,
        width: int = 512,
        keys_per_layer: tuple[int, ...] | list[int] = (5, 3),
        heads: int = 8,
        ff: int = 2048,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.keys_per_layer = tuple(keys_per_layer)
        self.mix = MixFusion(width)
        if self.keys_per_layer:
            self.register_buffer("positions", sinusoid_table(POSITIONS, width))
            self.pose_layers = nn.ModuleList(CGAFLayer(width, heads, k, ff, dropout) for k in self.keys_per_layer)
            self.rgb_layers = nn.ModuleList(CGAFLayer(width, heads, k, ff, dropout) for k in self.keys_per_layer)
            self.pose_norm = nn.LayerNorm(width, eps=NORM_EPS)
            self.rgb_norm = nn.LayerNorm(width, eps=NORM_EPS)

    def forward(self, pose: torch.Tensor, rgb: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """pose, rgb (B, N, D) tokens, valid (B, N) bool -> fused (B, N, D)."""
        if not self.keys_per_layer:
            return self.mix(pose, rgb)
        table = self.positions[:, : pose.shape[1]].to(pose.dtype)
        p, r = pose + table, rgb + table
        for pose_layer, rgb_layer in zip(self.pose_layers, self.rgb_layers):
            p, r = pose_layer(p, r, valid), rgb_layer(r, p, valid)
        return self.mix(self.pose_norm(p), self.rgb_norm(r)) + pose + rgb
