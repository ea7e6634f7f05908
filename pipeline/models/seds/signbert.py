"""The hand GCN initialised from SignBERT pre-training, as the authors do (`--init_sign_model`).

Authors: longtaojiang/SEDS modules/modeling_signbert.py, init_sign_model and Sign_Bert.from_pretrained:
the file's `state_dict` (or its `state_dict['GCN_Transform']`) is loaded into the Pose encoder by name,
non-strictly; the keys that matter are `embed.st_gcn_hand.*`, the hand GCN (ST_GCN_Model, 'stb').

Here: the hand GCN's every tensor must come from the file with its shape (after the same name map
as the release layout, pipeline/models/seds/authors_layout.py), or loading fails naming what is
missing; file tensors outside the hand GCN are listed as not used. The file's adjacency buffers (A, A_pool) must
equal the graphs built here: a check that our graphs are the ones the weights were trained on. A leading `module.`
(saved from DataParallel) is ignored. Files load with torch.load(weights_only=True) or safetensors only.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.models.checkpoints import Checkpoint, CheckpointError, load_checkpoint
from pipeline.models.seds.authors_layout import from_authors_name, to_authors_name

HAND_PREFIX = "pose_encoder.gcns.hand."


def _state(path: Path) -> dict[str, torch.Tensor]:
    obj = load_checkpoint(path)
    state = obj.get("state_dict", obj)
    if isinstance(state, dict) and isinstance(state.get("GCN_Transform"), dict):
        state = state["GCN_Transform"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"{path}: no state dict of tensors (looked at the top level, 'state_dict' and 'state_dict.GCN_Transform')"
        )
    return {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}


def init_hand_from_signbert(hand_gcn: nn.Module, checkpoint: Checkpoint) -> str:
    """Fill `hand_gcn` (the Pose encoder's hand PartGCN) from a SignBERT file; returns a one-line note."""
    state = _state(checkpoint.path)
    mapped, unused = {}, []
    for key, value in state.items():
        try:
            ours = from_authors_name("signbert." + key)
        except ValueError:
            ours = None
        if ours is not None and ours.startswith(HAND_PREFIX):
            mapped[ours[len(HAND_PREFIX) :]] = value
        else:
            unused.append(key)
    target = hand_gcn.state_dict()
    missing = sorted(set(target) - set(mapped))
    wrong = [
        f"{_file_key(k)}: file {tuple(mapped[k].shape)}, model {tuple(target[k].shape)}"
        for k in sorted(set(target) & set(mapped))
        if mapped[k].shape != target[k].shape
    ]
    wrong += [
        f"{_file_key(k)}: the file's graph differs from the hand graph built here (pipeline/models/seds/graphs.py)"
        for k in ("adjacency", "pooled_adjacency")
        if k in mapped
        and mapped[k].shape == target[k].shape
        and not torch.allclose(mapped[k].float(), target[k], atol=1e-6)
    ]
    if missing or wrong:
        raise CheckpointError(
            f"{checkpoint.path}: does not fill the hand GCN (train.gcn_joint_channels / gcn_part_channels must "
            f"match the file): "
            + "; ".join(([f"{len(missing)} missing, e.g. {_file_key(missing[0])}"] if missing else []) + wrong[:4])
        )
    hand_gcn.load_state_dict({k: mapped[k].to(target[k].dtype) for k in target}, strict=True)
    unused = sorted(unused)
    return (
        f"hand GCN from SignBERT {checkpoint.describe()} ({len(target)} tensors"
        + (
            f"; {len(unused)} file tensor(s) outside the hand GCN not used: {', '.join(unused[:4])}"
            + (" ..." if len(unused) > 4 else "")
            if unused
            else ""
        )
        + ")"
    )


def _file_key(ours: str) -> str:
    """A hand GCN tensor's name in the SignBERT file (the release layout without its `signbert.`)."""
    return to_authors_name(HAND_PREFIX + ours)[len("signbert.") :]
