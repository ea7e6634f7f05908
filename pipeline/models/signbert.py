"""Initialise the SEDS GCN-hand from a SignBERT checkpoint (or any checkpoint holding a GCN-hand).

The SEDS authors start GCN-hand from SignBERT pre-training (`--init_sign_model
ckpt/pretrain_signbert.pth`). Three checkpoint layouts are recognised, by their key prefixes:

1. The authors' SignBERT file: `state_dict` (or `state_dict['GCN_Transform']`) with keys under
   `embed.st_gcn_hand.` (a leading `module.` or `signbert.` is ignored). Mapping, source -> ours:
       data_bn.*                         -> data_bn.*
       st_gcn_networks.{0,1,2}.<rest>    -> layers.{0,1,2}.<rest>
       st_gcn_pool.0.<rest>              -> layers.3.<rest>
   <rest> names agree (gcn.conv, tcn.0, tcn.3, tcn.4, residual.0, residual.1) because our layer copies
   the authors' st_gcn layout. Their temporal convolution `tcn.3.weight` has kernel 1 (they run the
   GCN frame by frame); it is inflated to our temporal kernel by putting it at the centre tap (zeros
   elsewhere), which computes the same function at initialisation. Not used (no counterpart here):
   st_gcn_pool.1, conv4, tcn_full_b1/b2 and the graph buffers A / A_pool. Caveat, stated in the
   docs: their fourth layer ran on a 6-node graph of max-pooled hand parts; ours runs on the 21 joints
   (same weight shapes, same subsets, different graph).
2. A checkpoint of this pipeline's trainer: `model` with keys under `pose_encoder.gcn_hand.`.
3. A bare GCN-hand state dict: keys `data_bn.*` and `layers.*`.

Strict: every parameter and buffer of our GCN-hand must be filled with exactly its shape (after the
inflation above), or loading fails naming the keys; nothing is left at its random value silently.
Files load with torch.load(weights_only=True) only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn


class CheckpointMismatch(ValueError):
    """A checkpoint that does not fill the module it is meant to initialise."""


_AUTHORS_PREFIX = "embed.st_gcn_hand."
_OURS_PREFIX = "pose_encoder.gcn_hand."


def _unwrap(obj: Any, path: Path) -> Mapping[str, torch.Tensor]:
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
        if isinstance(obj, Mapping) and "GCN_Transform" in obj:
            obj = obj["GCN_Transform"]
    elif isinstance(obj, Mapping) and "model" in obj:
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointMismatch(f"{path}: no state dict of tensors found (looked at the top level, "
                                 f"'state_dict', 'state_dict.GCN_Transform' and 'model')")
    return obj


def _strip(key: str) -> str:
    for lead in ("module.", "signbert."):
        if key.startswith(lead):
            key = key[len(lead):]
    return key


def map_authors_keys(source: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Authors' SignBERT keys -> our GCN-hand keys (layout 1). Returns (mapped, unused source keys)."""
    mapped, unused = {}, []
    for raw, value in source.items():
        key = _strip(raw)
        if not key.startswith(_AUTHORS_PREFIX):
            continue
        rest = key[len(_AUTHORS_PREFIX):]
        match = re.match(r"st_gcn_networks\.([0-2])\.(.+)$", rest)
        pool = re.match(r"st_gcn_pool\.0\.(.+)$", rest)
        if rest.startswith("data_bn."):
            mapped[rest] = value
        elif match:
            mapped[f"layers.{match.group(1)}.{match.group(2)}"] = value
        elif pool:
            mapped[f"layers.3.{pool.group(1)}"] = value
        else:
            unused.append(raw)
    return mapped, unused


def _inflate_temporal(mapped: dict[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> None:
    """Kernel-1 temporal conv weights (C, C, 1, 1) -> our (C, C, k, 1), centre tap, zeros elsewhere."""
    for key, value in list(mapped.items()):
        want = target.get(key)
        if (want is not None and key.endswith("tcn.3.weight") and value.dim() == 4 and value.shape[2] == 1
                and want.shape[2] > 1 and value.shape[:2] == want.shape[:2]):
            inflated = torch.zeros(want.shape, dtype=value.dtype)
            inflated[:, :, want.shape[2] // 2] = value[:, :, 0]
            mapped[key] = inflated


def load_gcn_hand(gcn_hand: nn.Module, path: str | Path) -> str:
    """Fill `gcn_hand` from the checkpoint at `path` (strict). Returns a one-line description."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train.signbert_checkpoint: {path} does not exist")
    source = _unwrap(torch.load(path, map_location="cpu", weights_only=True), path)
    target = gcn_hand.state_dict()
    keys = [_strip(k) for k in source]
    if any(k.startswith(_AUTHORS_PREFIX) for k in keys):
        mapped, unused = map_authors_keys(source)
        layout = "SEDS authors' SignBERT (embed.st_gcn_hand.*)"
    elif any(k.startswith(_OURS_PREFIX) for k in keys):
        mapped = {k[len(_OURS_PREFIX):]: v for k, v in zip(keys, source.values()) if k.startswith(_OURS_PREFIX)}
        unused = []
        layout = "seds train checkpoint (pose_encoder.gcn_hand.*)"
    else:
        mapped = {k: v for k, v in zip(keys, source.values()) if k.startswith(("data_bn.", "layers."))}
        unused = [k for k in keys if k not in mapped]
        layout = "bare GCN-hand state dict"
    _inflate_temporal(mapped, target)
    missing = sorted(set(target) - set(mapped))
    wrong = [f"{k}: checkpoint {tuple(mapped[k].shape)} vs model {tuple(target[k].shape)}"
             for k in sorted(set(target) & set(mapped)) if mapped[k].shape != target[k].shape]
    if missing or wrong:
        problems = ([f"missing {len(missing)} key(s): {', '.join(missing[:8])}" + (" ..." if len(missing) > 8 else "")]
                    if missing else []) + wrong[:8]
        raise CheckpointMismatch(f"{path} ({layout}) does not fit GCN-hand (train.gcn_widths and train.pose_channels "
                                 f"must match the checkpoint): " + "; ".join(problems))
    gcn_hand.load_state_dict({k: mapped[k] for k in target}, strict=True)
    extra = sorted(set(mapped) - set(target)) + unused
    return (f"GCN-hand from {path.name} ({layout}, {len(target)} tensors"
            + (f"; {len(extra)} source tensor(s) without counterpart not used" if extra else "") + ")")
