"""The SEDS model as the authors' release builds it (longtaojiang/SEDS modules/modeling.py, CLIP4Clip).

    keypoints (B, F, K, C) + windows (B, W, L) --Pose encoder--> (B, W, 1536) --pose tower--> (B, W+1, D)
    rgb features (B, W, 1024) ------------------------------------rgb tower--> (B, W+1, D)
    CGAF(pose tokens, rgb tokens)                                           --> fused (B, W+1, D)
    token ids (B, L) --text tower--> (B, L, D)

W = `steps` windows (64), zero-padded; token 0 of each tower is its class token. Training loss
(CLIP4Clip.forward): contrastive(fused) + contrastive(pose) + contrastive(rgb) + 0.4 x matching(pose,
rgb), every term on FILIP similarities times exp(logit_scale) (pipeline/models/seds/losses.py), plus the
release's optional Pose-RGB token distillation (`rgb_pose_kl`, off by default as in train_h2s.sh);
`loss_terms: fused` keeps the first term only (module docstring of pipeline/train/params.py says why).
A pose-only model (`variant: pose_only`, the paper's Table 3 Pose rows) has no RGB tower or CGAF
and trains and retrieves on the pose stream. The logit scale is CLIP's: it starts at log(100) and is clamped to at
most log(100) after each step (main_task_retrieval.py train_epoch). Retrieval similarity:
dual_mix x I2T + (1 - dual_mix) x T2I.

Initialisation as the authors' (CLIP4Clip.__init__ then init_preweight): every Linear and Embedding
N(0, 0.02) with zero biases, CLIP's own scheme for the text positions, attention in-projections and
projections, PyTorch's defaults elsewhere; then CLIP's published weights where a file is named
(clip_weights.py) and the hand GCN from SignBERT where a file is named (signbert.py).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from pipeline.models.seds.cgaf import CGAF
from pipeline.models.seds.interaction import FeatureTower
from pipeline.models.seds.losses import PADDINGS, contrastive_loss, filip, matching, normalise, rgb_pose_kl
from pipeline.models.seds.pose_encoder import PoseEncoder
from pipeline.models.seds.text import TextTower

STREAMS = ("fused", "pose", "rgb")
LOSS_TERMS = ("all", "fused")
VARIANTS = ("seds", "pose_only")
SEDS_SPANS: dict[str, tuple[int, int]] = {"body": (0, 7), "left_hand": (7, 28), "right_hand": (28, 49)}


def default_keys(layers: int) -> list[int]:
    """Keys per CGAF layer when not given: the authors' [5, 3] for two layers; otherwise 5 for the first
    and 3 for every later layer (our extension for the paper's Table 5, which gives no key counts)."""
    return [5, 3][:layers] + [3] * max(0, layers - 2)


@dataclass(frozen=True)
class SEDSConfig:
    """Everything that decides the model's shape and objective (saved inside checkpoints). Defaults are
    the authors' How2Sign model (scripts/train_h2s.sh)."""

    spans: dict[str, list[int]] = field(default_factory=lambda: {k: list(v) for k, v in SEDS_SPANS.items()})
    parts: tuple[str, ...] = ("hand", "body")
    in_channels: int = 2
    gcn_joint_channels: tuple[int, ...] = (128, 128, 256)
    gcn_part_channels: int = 512
    rgb_dim: int = 1024
    steps: int = 64
    tower_width: int = 768
    tower_layers: int = 12
    tower_heads: int = 12
    embed_dim: int = 512
    text_width: int = 512
    text_layers: int = 12
    text_heads: int = 8
    max_words: int = 32
    cgaf_keys: tuple[int, ...] = (5, 3)
    cgaf_heads: int = 8
    cgaf_ff: int = 2048
    cgaf_dropout: float = 0.1
    tau: float = 0.07
    logit_scale_init: float = math.log(100.0)
    logit_scale_max: float = 100.0
    dual_mix: float = 0.5
    match_weight: float = 0.4
    filip_padding: str = "authors"
    loss_terms: str = "all"
    variant: str = "seds"
    rgb_pose_kl: bool = False
    kl_pose_weight: float = 0.5
    kl_rgb_weight: float = 0.5
    kl_temperature: float = 0.01

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant {self.variant!r}: choose from {VARIANTS}")
        if self.filip_padding not in PADDINGS:
            raise ValueError(f"filip_padding {self.filip_padding!r}: choose from {PADDINGS}")
        if self.loss_terms not in LOSS_TERMS:
            raise ValueError(f"loss_terms {self.loss_terms!r}: choose from {LOSS_TERMS}")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("parts", "gcn_joint_channels", "cgaf_keys"):
            out[key] = list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SEDSConfig":
        data = dict(data)
        for key in ("parts", "gcn_joint_channels", "cgaf_keys"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclass
class VideoTokens:
    """Token sequences per stream, (B, W + 1, D) each and not normalised; valid (B, W + 1) bool, token 0
    (the class token) always True. A pose-only model has only the pose stream."""

    streams: dict[str, torch.Tensor]
    valid: torch.Tensor

    def normalised(self) -> "VideoTokens":
        return VideoTokens({k: normalise(v) for k, v in self.streams.items()}, self.valid)

    def stream(self, name: str) -> torch.Tensor:
        return self.streams[name]

    def select(self, rows: slice) -> "VideoTokens":
        return VideoTokens({k: v[rows] for k, v in self.streams.items()}, self.valid[rows])

    @staticmethod
    def cat(parts: list["VideoTokens"]) -> "VideoTokens":
        return VideoTokens(
            {k: torch.cat([p.streams[k] for p in parts]) for k in parts[0].streams}, torch.cat([p.valid for p in parts])
        )


def token_valid(window_valid: torch.Tensor) -> torch.Tensor:
    """(B, W) valid windows -> (B, W + 1) valid tokens, the class token first."""
    return torch.cat([torch.ones_like(window_valid[:, :1]), window_valid], dim=1)


class SEDS(nn.Module):
    def __init__(self, config: SEDSConfig):
        super().__init__()
        self.config = c = config
        self.pose_encoder = PoseEncoder(
            {k: tuple(v) for k, v in c.spans.items()}, c.parts, c.in_channels, c.gcn_joint_channels, c.gcn_part_channels
        )
        tower = dict(
            steps=c.steps, width=c.tower_width, layers=c.tower_layers, heads=c.tower_heads, embed_dim=c.embed_dim
        )
        self.pose_tower = FeatureTower(self.pose_encoder.out_channels, **tower)
        if c.variant == "seds":
            self.rgb_tower = FeatureTower(c.rgb_dim, **tower)
            self.cgaf = CGAF(c.embed_dim, c.cgaf_keys, c.cgaf_heads, c.cgaf_ff, c.cgaf_dropout)
        self.streams = STREAMS if c.variant == "seds" else ("pose",)
        self.text = TextTower(c.text_width, c.text_layers, c.text_heads, c.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(c.logit_scale_init)))
        init_like_authors(self)

    # -- encoders ----------------------------------------------------------------------------
    def encode_video(self, keypoints: torch.Tensor, windows: torch.Tensor, rgb: torch.Tensor) -> VideoTokens:
        """keypoints (B, F, K, C) of every kept frame, windows (B, W, L) frame indices (-1: padding),
        rgb (B, W, rgb_dim) features (zeros where padded); W = steps."""
        valid = token_valid(windows[..., 0] >= 0)
        pose = self.pose_tower(self.pose_encoder(keypoints, windows), valid)
        if self.config.variant == "pose_only":
            return VideoTokens({"pose": pose}, valid)
        rgb_tokens = self.rgb_tower(rgb, valid)
        return VideoTokens({"fused": self.cgaf(pose, rgb_tokens, valid), "pose": pose, "rgb": rgb_tokens}, valid)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return self.text(ids)

    def clamp_logit_scale(self) -> None:
        with torch.no_grad():
            self.logit_scale.clamp_(max=math.log(self.config.logit_scale_max))

    # -- objectives --------------------------------------------------------------------------
    def loss(
        self,
        video: VideoTokens,
        text: torch.Tensor,
        text_valid: torch.Tensor,
        text_aug: torch.Tensor | None = None,
        text_aug_valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total training loss and its parts (the matching and distillation parts already weighted)."""
        c = self.config
        v, t = video.normalised(), normalise(text)
        t_aug = normalise(text_aug) if text_aug is not None else None
        scale = self.logit_scale.exp()
        parts: dict[str, torch.Tensor] = {}
        for name in self.streams:
            i2t, t2i = filip(v.stream(name), v.valid, t, text_valid, c.tau, c.filip_padding, t_aug, text_aug_valid)
            parts[name] = contrastive_loss(scale * i2t, scale * t2i, c.dual_mix)
        if c.match_weight > 0 and c.variant == "seds":
            p2r, r2p = matching(v.stream("pose"), v.stream("rgb"), v.valid, c.tau, c.filip_padding)
            parts["match"] = c.match_weight * contrastive_loss(scale * p2r, scale * r2p, c.dual_mix)
        if c.rgb_pose_kl and c.variant == "seds":
            aug, aug_valid = (t, text_valid) if t_aug is None else (t_aug, text_aug_valid)
            pose_kl, rgb_kl = rgb_pose_kl(
                v.stream("pose"),
                v.stream("rgb"),
                v.valid,
                t,
                text_valid,
                aug,
                aug_valid,
                c.tau,
                c.filip_padding,
                c.kl_temperature,
            )
            parts["kl"] = c.kl_pose_weight * pose_kl + c.kl_rgb_weight * rgb_kl
        total = parts[self.headline] if c.loss_terms == "fused" else sum(parts.values())
        return total, parts

    @property
    def headline(self) -> str:
        """The stream retrieval is reported on: fused, or pose for a pose-only model."""
        return self.streams[0]

    @torch.no_grad()
    def retrieval_similarity(
        self, video: VideoTokens, text: torch.Tensor, text_valid: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """[clip, sentence] similarity per stream: dual_mix x I2T + (1 - dual_mix) x T2I (cosine units)."""
        c = self.config
        v, t = video.normalised(), normalise(text)
        out = {}
        for name in self.streams:
            i2t, t2i = filip(v.stream(name), v.valid, t, text_valid, c.tau, c.filip_padding)
            out[name] = c.dual_mix * i2t + (1 - c.dual_mix) * t2i
        return out


def init_like_authors(model: SEDS) -> None:
    """The authors' initialisation without pretrained files (module docstring). CLIP.initialize_parameters
    sets the text positions N(0, 0.01), attention in-projections N(0, width^-0.5) and the text projection
    N(0, width^-0.5); CLIP4Clip.init_weights (`self.apply`) then sets every Linear (attention
    out-projections and MLPs included) and Embedding to N(0, 0.02) with zero biases."""
    text = model.text
    width = text.positional_embedding.shape[1]
    nn.init.normal_(text.positional_embedding, std=0.01)
    for block in text.transformer.resblocks:
        nn.init.normal_(block.attn.in_proj_weight, std=width**-0.5)
    nn.init.normal_(text.text_projection, std=width**-0.5)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
