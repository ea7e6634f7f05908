"""The SEDS model: Pose encoder + Pose interaction, RGB interaction (over cached I3D features), text
encoder, CGAF, and the objectives (pipeline/models/seds/losses.py).

    keypoints (B,T,K,C) --Pose encoder--> (B,T,1536) --Pose interaction--> pose tokens (B,T,D)
    rgb (B,T,1024) -----------------------------------RGB interaction----> rgb tokens  (B,T,D)
    CGAF(pose tokens, rgb tokens) --------------------------------------> fused tokens (B,T,D)
    sentence --text encoder--> word tokens (B,L,D)

Training loss = contrastive(fused) + contrastive(pose) + contrastive(rgb) + match_weight * matching(pose, rgb),
each contrastive term on FILIP similarities with logits scaled by exp(logit_scale) (learnt, clamped to
log(logit_scale_max) after every step). Retrieval similarity of a (clip, sentence) pair =
dual_mix * V2T + (1 - dual_mix) * T2V of the fused tokens (pose and rgb similarities are kept too).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from pipeline.models.seds.cgaf import CGAF
from pipeline.models.seds.interaction import Interaction
from pipeline.models.seds.losses import contrastive_loss, filip_similarities, matching_similarities, normalise
from pipeline.models.seds.pose_encoder import SEDS_SPANS, PoseEncoder
from pipeline.models.seds.text import TextEncoder

STREAMS = ("fused", "pose", "rgb")


@dataclass(frozen=True)
class SEDSConfig:
    """Everything that decides the model's shape and objective (saved inside checkpoints)."""

    spans: dict[str, list[int]] = field(default_factory=lambda: {k: list(v) for k, v in SEDS_SPANS.items()})
    in_channels: int = 2
    gcn_widths: tuple[int, ...] = (128, 128, 256, 512)
    gcn_temporal_kernel: int = 5
    gcn_dropout: float = 0.0
    fusion_hidden: int = 768
    fusion_kernel: int = 3
    rgb_dim: int = 1024
    steps: int = 64
    interaction_width: int = 768
    interaction_layers: int = 12
    interaction_heads: int = 12
    interaction_dropout: float = 0.1
    embed_dim: int = 512
    cgaf_layers: int = 2
    cgaf_heads: int = 8
    cgaf_ff: int = 2048
    cgaf_window: int | None = 2
    cgaf_dropout: float = 0.1
    text_encoder: str = "minilm"
    max_words: int = 32
    tau: float = 0.07
    logit_scale_init: float = math.log(1 / 0.07)
    logit_scale_max: float = 100.0
    dual_mix: float = 0.5
    match_weight: float = 0.4
    match_reduce: str = "sum"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gcn_widths"] = list(self.gcn_widths)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SEDSConfig":
        data = dict(data)
        data["gcn_widths"] = tuple(data["gcn_widths"])
        return cls(**data)


@dataclass
class VideoTokens:
    fused: torch.Tensor   # (B, T, D), not normalised
    pose: torch.Tensor
    rgb: torch.Tensor
    step_mask: torch.Tensor  # (B, T) bool

    def normalised(self) -> "VideoTokens":
        return VideoTokens(normalise(self.fused), normalise(self.pose), normalise(self.rgb), self.step_mask)

    def stream(self, name: str) -> torch.Tensor:
        return getattr(self, name)


class SEDS(nn.Module):
    def __init__(self, config: SEDSConfig):
        super().__init__()
        self.config = config
        c = config
        self.pose_encoder = PoseEncoder(c.in_channels, c.gcn_widths, c.gcn_temporal_kernel, c.fusion_hidden,
                                        c.fusion_kernel, c.gcn_dropout, {k: tuple(v) for k, v in c.spans.items()})
        interaction = dict(width=c.interaction_width, layers=c.interaction_layers, heads=c.interaction_heads,
                           embed_dim=c.embed_dim, steps=c.steps, dropout=c.interaction_dropout)
        self.pose_interaction = Interaction(self.pose_encoder.out_channels, **interaction)
        self.rgb_interaction = Interaction(c.rgb_dim, **interaction)
        self.cgaf = CGAF(c.embed_dim, c.cgaf_layers, c.cgaf_heads, c.cgaf_ff, c.cgaf_window, c.steps, c.cgaf_dropout)
        self.text = TextEncoder(c.text_encoder, c.max_words, c.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(c.logit_scale_init)))

    # -- encoders ----------------------------------------------------------------------------
    def encode_video(self, keypoints: torch.Tensor, joint_mask: torch.Tensor, rgb: torch.Tensor,
                     step_mask: torch.Tensor) -> VideoTokens:
        """keypoints (B,T,K,C), joint_mask (B,T,K) bool, rgb (B,T,rgb_dim), step_mask (B,T) bool."""
        joint_mask = joint_mask & step_mask[:, :, None]
        pose = self.pose_interaction(self.pose_encoder(keypoints, joint_mask), step_mask)
        rgb_tokens = self.rgb_interaction(rgb, step_mask)
        fused = self.cgaf(pose, rgb_tokens, step_mask)
        return VideoTokens(fused, pose, rgb_tokens, step_mask)

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text(ids, mask)

    def clamp_logit_scale(self) -> None:
        with torch.no_grad():
            self.logit_scale.clamp_(max=math.log(self.config.logit_scale_max))

    # -- objectives --------------------------------------------------------------------------
    def loss(self, video: VideoTokens, text: torch.Tensor, text_mask: torch.Tensor,
             text_aug: torch.Tensor | None = None, text_aug_mask: torch.Tensor | None = None
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total training loss and its parts (unweighted contrastive terms, weighted matching term)."""
        c = self.config
        v = video.normalised()
        t = normalise(text)
        t_aug = normalise(text_aug) if text_aug is not None else None
        scale = self.logit_scale.exp()
        parts: dict[str, torch.Tensor] = {}
        for name in STREAMS:
            v2t, t2v = filip_similarities(v.stream(name), v.step_mask, t, text_mask, c.tau, t_aug, text_aug_mask)
            parts[name] = contrastive_loss(scale * v2t, scale * t2v, c.dual_mix)
        if c.match_weight > 0:
            p2r, r2p = matching_similarities(v.pose, v.rgb, v.step_mask, c.tau, c.match_reduce)
            parts["match"] = c.match_weight * contrastive_loss(scale * p2r, scale * r2p, c.dual_mix)
        total = sum(parts.values())
        return total, parts

    @torch.no_grad()
    def retrieval_similarity(self, video: VideoTokens, text: torch.Tensor, text_mask: torch.Tensor
                             ) -> dict[str, torch.Tensor]:
        """[clip, sentence] similarity per stream: dual_mix * V2T + (1 - dual_mix) * T2V (no logit scale)."""
        v = video.normalised()
        t = normalise(text)
        out = {}
        for name in STREAMS:
            v2t, t2v = filip_similarities(v.stream(name), v.step_mask, t, text_mask, self.config.tau)
            out[name] = self.config.dual_mix * v2t + (1 - self.config.dual_mix) * t2v
        return out
