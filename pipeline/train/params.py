"""The `train:` and `evaluate:` sections of params.yaml.

Defaults are the authors' How2Sign run (longtaojiang/SEDS scripts/train_h2s.sh and the defaults of
main_task_retrieval.py); params.yaml's sample profile narrows the widths and layers of the same model
so the built-in sample trains on a CPU in minutes. Where the release is broken or leaves a choice
open, the choice is a param and its help says what the release does. docs/fidelity.md lists every
training and evaluation choice beside the authors'.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.config import ParamError, knob
from pipeline.train.groups import GROUP_RULES

# Params that change neither the model nor the optimisation path: a checkpoint written under other
# values of these may be resumed (they are left out of the run identity, see checkpoint.py).
NON_IDENTITY = (
    "num_workers",
    "preload",
    "progress",
    "checkpoint_every",
    "resume",
    "out",
    "eval_batch_size",
    "max_steps",
    "threads",
)
PARTS = ("hand", "body", "face", "mouth")


@dataclass(frozen=True)
class TrainParams:
    # -- data ------------------------------------------------------------------------------------
    pose_view: str = knob(
        "select",
        help="view (manifests/<name>.parquet) holding the selected keypoints: arrays "
        "keypoints (T,K,2), scores, mask, frames; the name is also its stage name",
    )
    rgb_views: list[str] = knob(
        default_factory=lambda: ["rgb"],
        help="one or two rgb inputs: a view (name in runtime.manifests or a .parquet path) or "
        "set:NAME, an rgb.feature_sets entry computed by seds run rgb --set "
        "rgb.feature_set=NAME; with two, features = (1 - rgb_mix_alpha) * first + "
        "rgb_mix_alpha * second (CiCo's domain-aware / domain-agnostic I3D mix; the SEDS "
        "release reads one feature set)",
    )
    rgb_mix_alpha: float = knob(
        0.8, min=0.0, max=1.0, help="weight a of the second rgb view (CiCo's 0.8 for How2Sign); unused with one view"
    )
    split: str = knob("train", help="manifest split to train on")
    val_split: str | None = knob("val", help="split used when select is val (null: none)")
    sampling: str = knob(
        "sentence",
        choices=("sentence", "clip"),
        help="what an epoch visits: every sentence once, with one of its clips drawn at "
        "random (the authors'), or every clip once",
    )
    group_by: str = knob(
        "sentence_id",
        choices=GROUP_RULES,
        help="what one sentence is for sampling: sentence_id, the clips sharing the manifest's "
        "sentence_id (the release's split keys; clips without one by identical text), or "
        "text, the clips with identical text",
    )
    pose_windows: str = knob(
        "kept_frames",
        choices=("kept_frames", "rgb_aligned"),
        help="the 16 frames the Pose encoder fuses per window: kept_frames, windows slid over "
        "the pose view's kept frames as the release's loaders do (a clip with fewer pose "
        "windows than rgb windows is left out: the release asserts equal counts), or "
        "rgb_aligned, each rgb window's own frames, a dropped one read from the nearest "
        "kept frame; identical when no frame was dropped",
    )
    hand_without_box: str = knob(
        "drop",
        choices=("drop", "keep"),
        help="a clip where one hand has no box in any frame (seds normalisation): drop "
        "it (the release's loaders raise on it), or keep it with that hand all "
        "zeros; counted either way",
    )
    steps: int = knob(
        64,
        min=1,
        help="windows per clip the towers take (the authors' feature_len 64): clips with more "
        "RGB windows keep an evenly spaced (linspace) subset, fewer are padded",
    )
    pose_channels: str = knob(
        "xy",
        choices=("xy", "xy_score"),
        help="per-joint input: coordinates (the authors'), or coordinates plus the detector score",
    )
    preload: bool = knob(False, help="read every item into RAM once before training (small datasets)")
    num_workers: int = knob(0, min=0, help="DataLoader worker processes (each opens the HDF5 shards lazily)")
    threads: int | None = knob(None, min=1, help="torch CPU threads for training (null: runtime.threads_per_worker)")
    # -- model -----------------------------------------------------------------------------------
    variant: str = knob(
        "seds",
        choices=("seds", "pose_only"),
        help="seds: both streams and CGAF; pose_only: the Pose encoder and Pose tower alone "
        "(the paper's Pose-only rows of Table 3)",
    )
    parts: list[str] = knob(
        default_factory=lambda: ["hand", "body"],
        choices=PARTS,
        help="body parts the Pose encoder encodes (hand = both hands through one GCN; the paper's "
        "Table 4 adds face and mouth, our design: docs/model.md); select.parts must provide them",
    )
    gcn_joint_channels: list[int] = knob(
        default_factory=lambda: [128, 128, 256],
        min=1,
        help="widths of the three ST-GCN blocks on each part's joint graph",
    )
    gcn_part_channels: int = knob(512, min=1, help="width of the pooled-part blocks and of each part's output")
    tower_width: int = knob(768, min=8, help="width of the Pose and RGB interaction towers (CLIP ViT-B/32: 768)")
    tower_layers: int = knob(12, min=0, help="transformer blocks per interaction tower (12)")
    tower_heads: int = knob(12, min=1, help="attention heads per tower block (12)")
    embed_dim: int = knob(512, min=8, help="joint token width of video and text (CLIP's 512); also CGAF's width")
    text_width: int = knob(512, min=8, help="CLIP text transformer width (512)")
    text_layers: int = knob(12, min=0, help="CLIP text transformer blocks (12)")
    text_heads: int = knob(8, min=1, help="CLIP text attention heads (8)")
    max_words: int = knob(
        32,
        min=3,
        help="text tokens, start and end tokens included (32); longer sentences are "
        "thinned evenly, as the authors' loader does",
    )
    clip_checkpoint: str = knob(
        "openai",
        help="CLIP ViT-B/32 weights for the text tower and both interaction towers: "
        "'openai' (OpenAI's published file, downloaded once, sha256-checked), a "
        "path or URL (TorchScript, OpenAI-named or transformers safetensors), or "
        "'random' (explicit, needed for narrow towers)",
    )
    signbert_checkpoint: str | None = knob(
        None,
        help="initialise the hand GCN from this SignBERT file (path or URL; "
        "the authors' --init_sign_model); null: random",
    )
    cgaf_layers: int = knob(2, min=0, help="CGAF layers (2); 0 is the authors' MLP fusion alone (the paper's w/o CGAF)")
    cgaf_keys: list[int] | None = knob(
        None, min=1, help="sampled keys per CGAF layer (null: [5, 3] for two layers, else 5 then 3 per later layer)"
    )
    cgaf_heads: int = knob(8, min=1, help="attention heads per CGAF layer (8)")
    cgaf_ff: int = knob(2048, min=1, help="feed-forward width of the CGAF layers (2048)")
    cgaf_dropout: float = knob(0.1, min=0.0, max=1.0, help="dropout in the CGAF layers (0.1)")
    # -- objective -------------------------------------------------------------------------------
    tau: float = knob(0.07, min=1e-4, help="temperature of the FILIP token softmaxes (0.07)")
    logit_scale_init: float = knob(
        math.log(100.0), help="initial logit scale, log units, when no CLIP file sets it (CLIP's learnt log 100)"
    )
    logit_scale_max: float = knob(100.0, min=1.0, help="the logit scale is clamped to log(this) after every step (100)")
    dual_mix: float = knob(0.5, min=0.0, max=1.0, help="weight of I2T vs T2I in losses and retrieval (0.5)")
    match_weight: float = knob(0.4, min=0.0, help="weight of the Pose-RGB matching loss (0.4; 0 turns it off)")
    rgb_pose_kl: bool = knob(
        False,
        help="add the release's --rgb_pose_kl loss: each stream's token-word "
        "similarities distilled towards the other's top ones (off in "
        "train_h2s.sh)",
    )
    kl_pose_weight: float = knob(0.5, min=0.0, help="rgb_pose_kl: weight of the pose stream's term (--kl_pose_loss)")
    kl_rgb_weight: float = knob(0.5, min=0.0, help="rgb_pose_kl: weight of the rgb stream's term (--kl_rgb_loss)")
    kl_temperature: float = knob(0.01, min=1e-6, help="rgb_pose_kl: softmax temperature of both sides (--kl_logit)")
    filip_padding: str = knob(
        "authors",
        choices=("authors", "masked"),
        help="FILIP softmaxes over every token, padded ones included (the authors'), or over the valid tokens only",
    )
    loss_terms: str = knob(
        "all",
        choices=("all", "fused"),
        help="all: fused + pose + rgb contrastive terms + matching (the paper); fused: the fused "
        "term alone (what the release's undefined `freeze_exfusion` option would select)",
    )
    text_augment: str = knob(
        "random_swap",
        choices=("random_swap", "none"),
        help="EDA random swap of the sentence fed to T2I in training (the authors')",
    )
    augment_p: float = knob(0.5, min=0.0, max=1.0, help="probability a training sentence is augmented (0.5)")
    swaps: int = knob(1, min=1, help="word swaps per augmented sentence (1)")
    # -- optimisation ----------------------------------------------------------------------------
    optimizer: str = knob(
        "bertadam",
        choices=("bertadam", "adamw"),
        help="bertadam: the authors' (no bias correction, decoupled decay, per-parameter gradient "
        "clip, warmup-cosine inside); adamw: torch AdamW with the same groups and schedule",
    )
    epochs: int = knob(200, min=1, help="training epochs (200)")
    max_steps: int | None = knob(
        None,
        min=1,
        help="stop after this many optimiser steps (null: epochs decide); the schedule still spans all epochs",
    )
    batch_size: int = knob(128, min=2, help="clips per step (128); a last batch of one clip is skipped")
    lr_clip: float = knob(
        1e-5,
        min=0.0,
        help="learning rate of CLIP's parts: text tower, both interaction towers, logit scale (the authors' --lr)",
    )
    lr_pose: float = knob(1e-4, min=0.0, help="learning rate of the Pose encoder (the authors' --sign_lr)")
    lr_cgaf: float = knob(1e-4, min=0.0, help="learning rate of CGAF (the optimiser's default, --sign_lr)")
    weight_decay: float = knob(
        0.001, min=0.0, help="decoupled weight decay, none on tensors named *bias* in the release layout (0.001)"
    )
    betas: list[float] = knob(default_factory=lambda: [0.9, 0.98], min=0.0, max=1.0, help="Adam betas")
    eps: float = knob(1e-6, min=0.0, help="Adam epsilon")
    grad_clip: float = knob(1.0, min=0.0, help="clip the global gradient norm to this before each step (0: off)")
    param_clip: float = knob(1.0, min=0.0, help="bertadam: clip each parameter's gradient norm to this (0: off)")
    warmup: float = knob(0.1, min=0.0, max=1.0, help="fraction of all steps with linear warmup, then cosine")
    seed: int = knob(42, help="seed of initialisation, shuffling, clip choice and augmentation")
    amp: str = knob(
        "auto",
        choices=("auto", "off", "bf16", "fp16"),
        help="mixed precision on CUDA (auto: bf16 where supported, else fp16); CPU runs in fp32",
    )
    # -- model selection -------------------------------------------------------------------------
    select: str = knob(
        "val",
        choices=("val", "last", "best_test"),
        help="which checkpoint becomes model.pt: best fused T2V R@1 on val_split, the last, or best on "
        "evaluate.split (the authors' report: selection on the test set, labelled so)",
    )
    eval_every: int = knob(1, min=0, help="evaluate the selection split every this many epochs (0: never)")
    eval_batch_size: int = knob(64, min=1, help="clips per forward pass in evaluation")
    # -- output ----------------------------------------------------------------------------------
    out: str = knob("runs/train", help="output folder: model.pt, checkpoints/, plots/, metrics.json")
    resume: bool = knob(True, help="continue from out/checkpoints/last.pt when its run identity matches")
    checkpoint_every: int = knob(0, min=0, help="also checkpoint every this many steps (0: at epoch ends only)")
    progress: bool = knob(True, help="tqdm progress bar")

    def keys_per_layer(self) -> list[int]:
        from pipeline.models.seds.model import default_keys

        return list(self.cgaf_keys) if self.cgaf_keys is not None else default_keys(self.cgaf_layers)

    def validate(self, prefix: str) -> None:
        if not 1 <= len(self.rgb_views) <= 2:
            raise ParamError(f"{prefix}.rgb_views: give one or two views, got {self.rgb_views}")
        if len(self.gcn_joint_channels) < 1:
            raise ParamError(f"{prefix}.gcn_joint_channels: give at least one width")
        if not self.parts or len(set(self.parts)) != len(self.parts):
            raise ParamError(f"{prefix}.parts: give distinct parts from {PARTS}, got {self.parts}")
        for name, width, heads in (
            ("tower", self.tower_width, self.tower_heads),
            ("text", self.text_width, self.text_heads),
            ("cgaf", self.embed_dim, self.cgaf_heads),
        ):
            if width % heads:
                raise ParamError(f"{prefix}.{name}_heads: {heads} heads do not divide the width {width}")
        if self.embed_dim % 2:
            raise ParamError(f"{prefix}.embed_dim: {self.embed_dim} must be even (CGAF's sinusoidal positions)")
        if self.cgaf_keys is not None and len(self.cgaf_keys) != self.cgaf_layers:
            raise ParamError(f"{prefix}.cgaf_keys: {len(self.cgaf_keys)} entries for {self.cgaf_layers} layer(s)")
        if len(self.betas) != 2:
            raise ParamError(f"{prefix}.betas: give two numbers, got {self.betas}")
        if self.select == "val" and self.eval_every and not self.val_split:
            raise ParamError(f"{prefix}.select: val needs {prefix}.val_split")
        if self.val_split is not None and self.val_split == self.split:
            raise ParamError(f"{prefix}.val_split: {self.val_split!r} is the training split")
        if self.rgb_pose_kl and self.variant != "seds":
            raise ParamError(f"{prefix}.rgb_pose_kl: needs both streams (variant: seds, not {self.variant})")

    def identity(self) -> dict[str, Any]:
        """The params a resumed run must share with its checkpoint."""
        return {k: v for k, v in asdict(self).items() if k not in NON_IDENTITY}


@dataclass(frozen=True)
class EvaluateParams:
    checkpoint: str = knob(
        "runs/train/model.pt",
        help="the trained model (a train checkpoint; its params say which views and model it needs)",
    )
    split: str = knob("test", help="split to retrieve within")
    protocol: str = knob(
        "authors",
        choices=("authors", "per_clip"),
        help="authors: clips grouped by sentence (group_by); T2V ranks the sentence groups by "
        "their best clip, V2T ranks each clip against the groups' sentences; per_clip: every "
        "clip is a query and a candidate with its own sentence (repeated sentences tie)",
    )
    group_by: str = knob(
        "sentence_id",
        choices=GROUP_RULES,
        help="the authors' protocol's sentences: sentence_id, the clips sharing the manifest's "
        "sentence_id (the release's split keys; clips without one by identical text), or "
        "text, the clips with identical text; the top-3 figure groups the same way",
    )
    out: str = knob(
        "runs/evaluate",
        help="output folder: metrics.json (dvc metrics), similarity.npz, token_similarity.npz, figures/ and report.md",
    )
    tie_rule: str = knob(
        "pessimistic",
        choices=("pessimistic", "optimistic"),
        help="rank of the true item among equal scores: pessimistic counts every tied "
        "candidate ahead of it, optimistic none",
    )
    batch_size: int = knob(64, min=1, help="clips per forward pass")
    num_workers: int = knob(0, min=0, help="DataLoader worker processes")
    figure_queries: int = knob(
        3,
        min=0,
        help="query sentences shown in the figures (top-3 retrieval, token "
        "similarity), evenly spaced over the split's sorted sample ids; "
        "0: no figures",
    )
    figure_samples: list[str] | None = knob(
        None,
        help="sample ids of the split whose sentences the figures show "
        "(instead of evenly spaced ones; null: figure_queries decides)",
    )
    figure_frames: int = knob(
        4, min=1, help="frames per retrieved clip in the top-3 figure, evenly spaced over the clip"
    )
