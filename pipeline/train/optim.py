"""AdamW with one learning rate per part of SEDS, and the authors' warmup-cosine schedule.

Groups (each split into decayed and not decayed): `text` (the pretrained text encoder, and CLIP's
pretrained projection when used) at lr_text; `pose` (Pose encoder) at lr_pose; `interaction` (RGB and
Pose interaction) at lr_interaction; `fusion` (CGAF, the new text projection, the logit scale) at
lr_fusion. Weight decay applies to weights of two or more dimensions only: biases, norm scales and
the logit scale are not decayed (the authors exclude bias and LayerNorm params by name).
Frozen parameters (lr_text = 0) are left out of the optimiser.

Schedule (BertAdam's warmup_cosine, as CLIP4Clip/CiCo/SEDS use it), x = step / total_steps, steps from 1:
    factor = x / warmup            while x < warmup
           = 0.5 * (1 + cos(pi * x)) afterwards
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.models.seds.model import SEDS
from pipeline.train.params import TrainParams


def part_of(name: str, model: SEDS) -> str:
    if name.startswith("text.backbone.") or (name.startswith("text.") and model.text.proj_pretrained):
        return "text"
    if name.startswith("text.proj."):
        return "fusion"
    if name.startswith("pose_encoder."):
        return "pose"
    if name.startswith(("pose_interaction.", "rgb_interaction.")):
        return "interaction"
    return "fusion"


def build_optimizer(model: SEDS, p: TrainParams) -> torch.optim.AdamW:
    lrs = {"text": p.lr_text, "pose": p.lr_pose, "interaction": p.lr_interaction, "fusion": p.lr_fusion}
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        decay = param.dim() >= 2
        groups.setdefault((part_of(name, model), decay), []).append(param)
    param_groups = [{"params": params, "lr": lrs[part], "base_lr": lrs[part], "part": part,
                     "weight_decay": p.weight_decay if decay else 0.0}
                    for (part, decay), params in sorted(groups.items())]
    return torch.optim.AdamW(param_groups, betas=tuple(p.betas), eps=p.eps)


def schedule_factor(step: int, total_steps: int, warmup: float) -> float:
    x = step / max(1, total_steps)
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


def set_learning_rates(optimizer: torch.optim.Optimizer, step: int, total_steps: int, warmup: float) -> float:
    """Apply the schedule for optimiser step `step` (0-based; counted from 1 in the schedule, as BertAdam
    does, so the first step does not run at lr 0); returns the factor."""
    factor = schedule_factor(step + 1, total_steps, warmup)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return factor


def optimizer_step(model: SEDS, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   scaler: torch.amp.GradScaler | None, grad_clip: float) -> None:
    """One update as the authors' trainer does it: backward (scaled under fp16), gradient-norm clip,
    step, then the logit scale clamped. Shared by the trainer and the GPU benchmark so both time the
    same step."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    model.clamp_logit_scale()
