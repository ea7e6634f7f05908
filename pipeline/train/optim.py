"""The authors' optimiser: BertAdam with three learning rates and their warmup-cosine schedule.

Authors: longtaojiang/SEDS main_task_retrieval.py, prep_optimizer and train_epoch; BertAdam is
CLIP4Clip's modules/optimization.py (the Hugging Face BERT optimiser): per parameter and step,

    g <- g clipped to norm param_clip (each parameter on its own)
    m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2          (no bias correction)
    update = m / (sqrt(v) + eps) + weight_decay * p                  (decoupled decay)
    p <- p - lr * schedule(k / total_steps) * update,   k = the parameter's steps so far (0 first)
    schedule(x) = x / warmup while x < warmup, else (1 + cos(pi x)) / 2

so the very first update has learning rate 0, as theirs. Before each step the trainer clips the global
gradient norm (grad_clip) and after it clamps the logit scale.

Groups (decided on the release's parameter names, pipeline/models/seds/authors_layout.py): names under
`clip.` or `clip_rgb.` (text tower, both interaction towers, logit scale) at lr_clip; `signbert.` (Pose
encoder) at lr_pose; the rest (CGAF) at lr_cgaf; weight decay on every tensor whose name does not
contain "bias" (their no_decay list; LayerNorm weights are decayed since none of their modules is
named LayerNorm). `optimizer: adamw` keeps the groups and schedule with torch's AdamW.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import torch
from torch import nn

from pipeline.models.seds.authors_layout import to_authors_name
from pipeline.train.params import TrainParams


def warmup_cosine(x: float, warmup: float) -> float:
    if x < warmup:
        return x / warmup
    return 0.5 * (1.0 + math.cos(math.pi * x))


class BertAdam(torch.optim.Optimizer):
    """See the module docstring. Each group carries lr, weight_decay, b1, b2, eps, param_clip, warmup
    and total_steps."""

    def __init__(
        self,
        groups: Iterable[dict[str, Any]],
        *,
        betas: tuple[float, float],
        eps: float,
        param_clip: float,
        warmup: float,
        total_steps: int,
    ):
        super().__init__(
            groups,
            dict(betas=betas, eps=eps, param_clip=param_clip, warmup=warmup, total_steps=total_steps, weight_decay=0.0),
        )

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(p)
                    state["next_v"] = torch.zeros_like(p)
                if group["param_clip"] > 0:
                    torch.nn.utils.clip_grad_norm_(p, group["param_clip"])
                grad = p.grad
                state["next_m"].mul_(b1).add_(grad, alpha=1 - b1)
                state["next_v"].mul_(b2).addcmul_(grad, grad, value=1 - b2)
                update = state["next_m"] / (state["next_v"].sqrt() + group["eps"])
                if group["weight_decay"] > 0:
                    update = update + group["weight_decay"] * p
                rate = group["lr"] * warmup_cosine(state["step"] / group["total_steps"], group["warmup"])
                p.add_(update, alpha=-rate)
                state["step"] += 1


def part_of(authors_name: str) -> str:
    if "clip." in authors_name or "clip_rgb." in authors_name:
        return "clip"
    if "signbert." in authors_name:
        return "pose"
    return "cgaf"


def parameter_groups(model: nn.Module, p: TrainParams) -> list[dict[str, Any]]:
    """One group per (part, decayed or not), each with its learning rate (module docstring)."""
    lrs = {"clip": p.lr_clip, "pose": p.lr_pose, "cgaf": p.lr_cgaf}
    with_layers = bool(getattr(model, "cgaf", None) is None or model.cgaf.keys_per_layer)
    groups: dict[tuple[str, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        theirs = to_authors_name(name, with_layers)
        groups.setdefault((part_of(theirs), "bias" not in theirs), []).append(param)
    return [
        {
            "params": params,
            "lr": lrs[part],
            "base_lr": lrs[part],
            "part": part,
            "weight_decay": p.weight_decay if decay else 0.0,
        }
        for (part, decay), params in sorted(groups.items())
    ]


def build_optimizer(model: nn.Module, p: TrainParams, total_steps: int) -> torch.optim.Optimizer:
    groups = parameter_groups(model, p)
    if p.optimizer == "bertadam":
        return BertAdam(
            groups,
            betas=(p.betas[0], p.betas[1]),
            eps=p.eps,
            param_clip=p.param_clip,
            warmup=p.warmup,
            total_steps=total_steps,
        )
    return torch.optim.AdamW(groups, betas=(p.betas[0], p.betas[1]), eps=p.eps)


def set_learning_rates(optimizer: torch.optim.Optimizer, step: int, total_steps: int, warmup: float) -> float:
    """AdamW only (BertAdam schedules inside): the authors' schedule at optimiser step `step` (0-based,
    as BertAdam counts); returns the factor."""
    factor = warmup_cosine(step / max(1, total_steps), warmup)
    if not isinstance(optimizer, BertAdam):
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * factor
    return factor


def optimizer_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    scaler: torch.amp.GradScaler | None,
    grad_clip: float,
) -> None:
    """One update as the authors' trainer does it: backward (scaled under fp16), global gradient-norm
    clip, step, then the logit scale clamped. Shared by the trainer and the GPU benchmark."""
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
