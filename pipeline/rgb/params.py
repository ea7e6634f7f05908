"""The `rgb` section of params.yaml: I3D feature sets, the SEDS/CiCo window sampling, and run-time knobs.

Several checkpoints are several *feature sets*: `rgb.feature_sets` names each (checkpoint +
normalisation family) and `rgb.feature_set` picks the one a run computes. Each set is its own stage
fingerprint (its own folder under cache/rgb/), so the sets are computed side by side, reuse items
independently, and a trainer reads and mixes them by name (pipeline.rgb.sets). A set's name never
enters the fingerprint: two names with the same checkpoint and family share their cache.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pipeline.config import ParamError, Params, build_section, knob
from pipeline.models.memory_budget import AUTO
from pipeline.models.precision import PRECISIONS

FAMILIES = ("bsl1k", "cico", "pytorch_i3d")


@dataclass(frozen=True)
class FeatureSet:
    """One I3D: where its weights are and how its input was normalised in training."""

    checkpoint: str = knob(
        "random",
        help="path, http(s) URL (cached under ~/.cache/seds/checkpoints) or 'random' "
        "(explicitly random weights, offline); its content hash enters the fingerprint",
    )
    family: str = knob(
        "bsl1k",
        choices=FAMILIES,
        help="input normalisation of the checkpoint's training: bsl1k/cico: RGB in [0,1] minus 0.5 "
        "(std 1); pytorch_i3d: RGB scaled to [-1, 1] (Kinetics I3D, video_features)",
    )


def _default_sets() -> dict[str, Any]:
    return {"default": {"checkpoint": "random", "family": "bsl1k"}}


@dataclass(frozen=True)
class RgbParams:
    feature_set: str = knob(
        "default", help="the entry of rgb.feature_sets this run computes (--set rgb.feature_set=NAME runs another set)"
    )
    feature_sets: dict[str, Any] = knob(
        default_factory=_default_sets,
        help="name -> {checkpoint, family}: every I3D whose features the project "
        "uses (e.g. aware: How2Sign-finetuned, agnostic: BSL-1K)",
    )
    max_frames: int = knob(
        300,
        min=1,
        help="thin a clip to at most this many frames first (every ceil(T/max)-th "
        "frame, the pose stage's default frame list)",
    )
    window: int = knob(16, min=1, help="frames per I3D window (consecutive frames of the thinned list)")
    stride: int = knob(1, min=1, help="frames between window starts in the thinned list")
    num_windows: int | str = knob(
        64, help="windows kept per clip, chosen by the authors' truncating np.linspace; 'all' keeps every window"
    )
    size: int = knob(224, min=32, help="side (pixels) of the square centre crop fed to I3D")
    resize: int = knob(256, min=32, help="frames are first resized so their short side is this many pixels")
    batch_size: int | str = knob(
        64,
        min=1,
        help="windows per forward pass, across clips (halved on a CUDA "
        "out-of-memory error), or 'auto': as many as the device's memory "
        "budget holds, at most 128 (pipeline/models/memory_budget.py); "
        "never changes the output",
    )
    precision: str = knob(
        "bf16",
        choices=PRECISIONS,
        help="CUDA autocast dtype (CPU always computes in fp32); the precision a run computes "
        "in enters the fingerprint, so bf16 and fp32 features never share a key",
    )
    compile: bool = knob(False, help="torch.compile the model (CUDA; pays a compile once per worker)")
    decoders: int = knob(1, min=1, help="decoder processes per worker feeding the model (raise on a GPU box)")
    prefetch: int = knob(2, min=1, help="clips each decoder decodes ahead of the model")

    def validate(self, prefix: str) -> None:
        if isinstance(self.batch_size, str) and self.batch_size != AUTO:
            raise ParamError(f"{prefix}.batch_size: {self.batch_size!r} is not a number of windows or 'auto'")
        if isinstance(self.num_windows, str) and self.num_windows != "all":
            raise ParamError(f"{prefix}.num_windows: {self.num_windows!r} is not a number of windows or 'all'")
        if isinstance(self.num_windows, int) and self.num_windows < 1:
            raise ParamError(f"{prefix}.num_windows: {self.num_windows} is below the minimum 1 (or use 'all')")
        if self.resize < self.size:
            raise ParamError(
                f"{prefix}.resize: {self.resize} px is smaller than the crop {prefix}.size "
                f"({self.size} px); the short side must be at least the crop"
            )
        sets = self.sets(prefix)
        if self.feature_set not in sets:
            raise ParamError(
                f"{prefix}.feature_set: {self.feature_set!r} is not a key of {prefix}.feature_sets "
                f"({', '.join(sorted(sets)) or 'none'})"
            )

    def sets(self, prefix: str = "rgb") -> dict[str, FeatureSet]:
        """Every feature set, validated (an error names `rgb.feature_sets.NAME.key`)."""
        if not self.feature_sets:
            raise ParamError(f"{prefix}.feature_sets: at least one feature set is required")
        return {
            str(name): build_section(FeatureSet, entry, f"{prefix}.feature_sets.{name}")
            for name, entry in self.feature_sets.items()
        }

    @property
    def current(self) -> FeatureSet:
        return self.sets()[self.feature_set]

    @property
    def kept_windows(self) -> int | None:
        """num_windows as a count, None for 'all'."""
        return None if self.num_windows == "all" else int(self.num_windows)

    def sampling(self) -> dict[str, Any]:
        """The params that decide which frames each window holds (they enter the fingerprint)."""
        return {
            "frames": "thin",
            "max_frames": self.max_frames,
            "window": self.window,
            "stride": self.stride,
            "num_windows": self.num_windows,
            "choice": "linspace_floor",
        }


SET_PREFIX = "set:"  # train.rgb_views: `set:NAME` reads feature set NAME by key, without a view


def with_feature_set(params: Params, name: str) -> Params:
    """`params` with rgb.feature_set = name (validated against rgb.feature_sets)."""
    rgb = params["rgb"]
    if name not in rgb.sets():
        raise ParamError(
            f"rgb.feature_set: {name!r} is not a key of rgb.feature_sets ({', '.join(sorted(rgb.sets()))})"
        )
    return Params(params.path, params.raw, {**params.sections, "rgb": dataclasses.replace(rgb, feature_set=name)})
