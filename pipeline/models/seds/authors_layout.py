"""Our SEDS state dict <-> the authors' release layout: one name map, strict both ways.

The release (longtaojiang/SEDS modules/modeling.py, CLIP4Clip) names its parts `clip` (CLIP: the text
tower and, as `clip.visual`, the Pose interaction tower), `clip_rgb.visual` (the RGB interaction tower),
`signbert` (the Pose encoder: `embed.st_gcn_hand`, `embed.st_gcn_body`, `GCN_Conv`) and `fusion`
(CGAF: Gloss_Fusion_Transformer, or MLP_feature_fusion with `--fusion_type mlp`). The map below pairs
our module paths with theirs, prefix by prefix (the file and class of each part are in docs/model.md);
leaf names (`weight`, `bias`, `running_mean`, ...) are the same on both sides.

Importing is strict: every tensor of the file must map to one of ours and every tensor of ours must be
filled, with equal shapes; anything else fails naming the keys. Two release tensors have no
counterpart because the release never uses them: `clip.logit_scale_first_softmax` and
`clip.logit_scale_sec_softmax` (created as ones in CLIP.__init__, read nowhere, so no gradient ever
moves them). Import checks that they are scalars equal to 1 and drops them; export writes them as 1.

Export also restores the release's dtypes: it runs convert_weights on both CLIP models, so their
Linear/Conv weights and biases, attention in-projections and the two projections are float16 there
(295 tensors); everything else is float32. Import casts to our float32.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from pipeline.errors import UserError

UNUSED_IN_RELEASE = ("clip.logit_scale_first_softmax", "clip.logit_scale_sec_softmax")

Rule = tuple[str, str, "list[Rule] | None"]  # (our prefix, their prefix, map of what follows)

_TEMPORAL: list[Rule] = [
    ("conv5.", "conv1d_5.0.", None),
    ("conv3a.", "conv1d_3_1.0.", None),
    ("conv3b.", "conv1d_3_2.0.", None),
    ("merge.", "conv1x1.", None),
    ("norm.", "bn.", None),
]
_STGCN_BLOCK: list[Rule] = [
    ("graph_conv.conv.", "gcn.conv.", None),
    ("norm_in.", "tcn.0.", None),
    ("conv.", "tcn.3.", None),
    ("norm_out.", "tcn.4.", None),
    ("residual.", "residual.", None),
]
_PART_GCN: list[Rule] = [
    ("adjacency", "A", None),
    ("pooled_adjacency", "A_pool", None),
    ("input_norm.", "data_bn.", None),
    ("joint_blocks.{i}.", "st_gcn_networks.{i}.", _STGCN_BLOCK),
    ("part_blocks.{i}.", "st_gcn_pool.{i}.", _STGCN_BLOCK),
    ("head.", "conv4.", None),
    ("temporal.0.", "tcn_full_b1.", _TEMPORAL),
    ("temporal.1.", "tcn_full_b2.", _TEMPORAL),
]
_TOWER: list[Rule] = [("input_proj.", "conv1.", None), ("token_merge.", "conv2_trans.", None), ("", "", None)]
_CGAF_LAYER: list[Rule] = [
    ("norm.", "layer_norm.", None),
    ("attn.key_proj.", "src_src_att.k_layer.", None),
    ("attn.value_proj.", "src_src_att.v_layer.", None),
    ("attn.query_proj.", "src_src_att.q_layer.", None),
    ("attn.offsets.", "src_src_att.sample_offsets.", None),
    ("attn.out_proj.", "src_src_att.output_layer.", None),
    ("ff.norm.", "feed_forward.layer_norm.", None),
    ("ff.fc1.", "feed_forward.pwff_layer.0.", None),
    ("ff.fc2.", "feed_forward.pwff_layer.3.", None),
]
_MIX: list[Rule] = [
    ("fc1.", "mlp.c_fc.", None),
    ("fc2.", "mlp.c_proj.", None),
    ("fc3.", "mlp.c_proj1.", None),
    ("norm.", "ln.", None),
]

RULES: list[Rule] = [
    ("logit_scale", "clip.logit_scale", None),
    ("pose_tower.", "clip.visual.", _TOWER),
    ("rgb_tower.", "clip_rgb.visual.", _TOWER),
    ("pose_encoder.gcns.hand.", "signbert.embed.st_gcn_hand.", _PART_GCN),
    ("pose_encoder.gcns.body.", "signbert.embed.st_gcn_body.", _PART_GCN),
    # our Table 4 parts, named as the release would name them (it has no face or mouth branch)
    ("pose_encoder.gcns.face.", "signbert.embed.st_gcn_face.", _PART_GCN),
    ("pose_encoder.gcns.mouth.", "signbert.embed.st_gcn_mouth.", _PART_GCN),
    ("pose_encoder.window_fusion.", "signbert.GCN_Conv.", _TEMPORAL),
    ("cgaf.positions", "fusion.pe.pe", None),
    ("cgaf.pose_layers.{i}.", "fusion.P2R_layers.{i}.", _CGAF_LAYER),
    ("cgaf.rgb_layers.{i}.", "fusion.R2P_layers.{i}.", _CGAF_LAYER),
    ("cgaf.pose_norm.", "fusion.P2R_layer_norm.", None),
    ("cgaf.rgb_norm.", "fusion.R2P_layer_norm.", None),
    ("text.", "clip.", None),  # CLIP's text parts: token_embedding, transformer, ln_final, ...; last,
]  # so that clip.visual.* and clip.logit_scale take their own rules
MIX_WITH_LAYERS: Rule = ("cgaf.mix.", "fusion.mlp_fusion.", _MIX)  # --fusion_type gloss_atten
MIX_ALONE: Rule = ("cgaf.mix.", "fusion.", _MIX)  # --fusion_type mlp (no CGAF layers)


class LayoutMismatch(UserError, ValueError):
    """A state dict that does not correspond one to one to the other layout."""


def _pattern(prefix: str) -> re.Pattern:
    return re.compile(re.escape(prefix).replace(re.escape("{i}"), r"(?P<i>\d+)"))


def _translate(key: str, rules: list[Rule], to_theirs: bool) -> str | None:
    for ours, theirs, inner in rules:
        source, target = (ours, theirs) if to_theirs else (theirs, ours)
        match = _pattern(source).match(key)
        if not match:
            continue
        head = target.replace("{i}", match.group("i")) if "{i}" in target else target
        rest = key[match.end() :]
        if source and not source.endswith(".") and rest:
            continue  # a whole-name rule (`A`) must not take a longer name (`A_pool`)
        if inner is None:
            return head + rest
        tail = _translate(rest, inner, to_theirs)
        if tail is not None:
            return head + tail
    return None


def _rules(with_layers: bool) -> list[Rule]:
    return RULES + [MIX_WITH_LAYERS if with_layers else MIX_ALONE]


def to_authors_name(key: str, with_layers: bool = True) -> str:
    name = _translate(key, _rules(with_layers), to_theirs=True)
    if name is None:
        raise LayoutMismatch(f"{key}: no name in the authors' layout")
    return name


def from_authors_name(key: str, with_layers: bool = True) -> str:
    name = _translate(key, _rules(with_layers), to_theirs=False)
    if name is None:
        raise LayoutMismatch(f"{key}: not a tensor of the authors' SEDS layout")
    return name


def _half_in_release(model: nn.Module) -> set[str]:
    """Our names of the tensors convert_weights made float16 in the release (module docstring)."""
    half = set()
    for tower in ("text", "pose_tower", "rgb_tower"):
        for name, module in getattr(model, tower).named_modules():
            prefix = f"{tower}.{name}." if name else f"{tower}."
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                half.update(prefix + p for p, _ in module.named_parameters(recurse=False))
            elif isinstance(module, nn.MultiheadAttention):
                half.update({prefix + "in_proj_weight", prefix + "in_proj_bias"})
    return half | {"text.text_projection", "pose_tower.proj", "rgb_tower.proj"}


def _check_variant(model: nn.Module) -> None:
    if model.config.variant != "seds":
        raise LayoutMismatch(f"the release builds no {model.config.variant} model: only variant seds has its layout")


def export_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Our model's state dict in the authors' names and dtypes (their 804 tensors for their model)."""
    _check_variant(model)
    with_layers = bool(model.cgaf.keys_per_layer)
    half = _half_in_release(model)
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        value = value.detach().cpu()
        out[to_authors_name(key, with_layers)] = value.half() if key in half else value.clone()
    for key in UNUSED_IN_RELEASE:
        out[key] = torch.ones((), dtype=torch.float32)
    return out


@dataclass(frozen=True)
class Imported:
    state: dict[str, torch.Tensor]  # ours, ready for load_state_dict(strict=True)
    dropped: tuple[str, ...]  # release tensors without counterpart (UNUSED_IN_RELEASE)


def import_state_dict(model: nn.Module, theirs: Mapping[str, torch.Tensor], source: str | Path) -> Imported:
    """Map a release state dict onto `model`'s keys, strictly (module docstring)."""
    _check_variant(model)
    with_layers = bool(model.cgaf.keys_per_layer)
    ours = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    unknown, wrong, dropped, misshapen = [], [], [], set()
    for key, value in theirs.items():
        if key in UNUSED_IN_RELEASE:
            if value.shape != () or float(value) != 1.0:
                wrong.append(
                    f"{key}: the release never changes it from 1, found shape {tuple(value.shape)} "
                    f"value {value.flatten()[:1].tolist()}"
                )
            dropped.append(key)
            continue
        name = _translate(key, _rules(with_layers), to_theirs=False)
        if name is None or name not in ours:
            unknown.append(key)
            continue
        if tuple(value.shape) != tuple(ours[name].shape):
            wrong.append(f"{key} -> {name}: file {tuple(value.shape)}, model {tuple(ours[name].shape)}")
            misshapen.add(name)
            continue
        mapped[name] = value.to(ours[name].dtype)
    missing = sorted(set(ours) - set(mapped) - misshapen)
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} tensor(s) of the file have no place in the model: " + _listing(unknown))
    if missing:
        problems.append(
            f"{len(missing)} tensor(s) of the model are not in the file (as "
            + ", ".join(to_authors_name(n, with_layers) for n in missing[:6])
            + (" ..." if len(missing) > 6 else "")
            + ")"
        )
    if wrong:
        problems.append(f"{len(wrong)} tensor(s) differ: " + "; ".join(wrong[:6]) + (" ..." if len(wrong) > 6 else ""))
    if problems:
        raise LayoutMismatch(
            f"{source}: not the authors' SEDS layout for this model (train params must match "
            f"the checkpoint's shapes): " + " | ".join(problems)
        )
    return Imported(mapped, tuple(dropped))


def _listing(keys: list[str]) -> str:
    return ", ".join(keys[:6]) + (" ..." if len(keys) > 6 else "")
