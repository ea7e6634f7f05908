"""Shared pieces of the SEDS model tests: a narrow model of the same code, and the release's tensor list."""

from __future__ import annotations

import json

import torch

from pipeline.models.seds.model import SEDSConfig
from tests_support import RELEASE_REFERENCE, shared_file

# The authors' network at tiny widths: every module present, everything small.
NARROW = dict(
    gcn_joint_channels=(4, 4, 8),
    gcn_part_channels=6,
    steps=4,
    tower_width=16,
    tower_layers=1,
    tower_heads=2,
    embed_dim=8,
    text_width=16,
    text_layers=1,
    text_heads=2,
    cgaf_heads=2,
    cgaf_ff=16,
)


def narrow_config(**changes) -> SEDSConfig:
    return SEDSConfig(**{**NARROW, **changes})


def reference_tensors() -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """(name, shape, dtype) of each of the release's 804 tensors, in their state_dict order. The file
    writes buffers' dtypes as e.g. 'float32 (buffer)'."""
    reference = shared_file(
        RELEASE_REFERENCE,
        "the authors' release tensor list",
        RELEASE_REFERENCE,
        "it is derived from longtaojiang/SEDS at 434e3f7 and ships with the team's shared folder",
    )
    data = json.loads(reference.read_text())
    return [(name, tuple(shape), getattr(torch, dtype.split()[0])) for name, shape, dtype in data["tensors"]]


def random_release_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the release layout with random values and the listed dtypes (the two unused logit
    scales at 1, as the release leaves them)."""
    generator = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape, dtype in reference_tensors():
        if name in ("clip.logit_scale_first_softmax", "clip.logit_scale_sec_softmax"):
            out[name] = torch.ones(shape, dtype=dtype)
        elif dtype.is_floating_point:
            out[name] = torch.randn(shape, generator=generator).to(dtype)
        else:
            out[name] = torch.randint(0, 1000, shape, generator=generator, dtype=dtype)
    return out
