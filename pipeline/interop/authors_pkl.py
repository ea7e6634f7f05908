"""The SEDS/CiCo authors' per-video `.pkl` layout, read (through the restricted unpickler) and written.

Their training code (SEDS `dataloaders/dataloader_*_retrieval_pose.py`) reads, per video name:
- RGB: a dict with `feature`, an (N, 1024) float32 array of N I3D windows (at most 64, already chosen),
  and `name`, the video name;
- RTMPose: a dict with `keypoints`, a (T, 133, 3) array of COCO-WholeBody x, y (frame pixels) and score
  for every frame, and `img_list`, the T frame image names in order (PHOENIX-style `images0001.png`:
  the number counts frames from 1). The loader thins and filters frames itself, by those names.
Our frames are clip frame indices from 0, so a name's number minus `frame_base` (1) is our index.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.keypoints.layout import NUM_KEYPOINTS
from pipeline.safe_unpickle import safe_load
from pipeline.store.layout import write_then_publish

FEATURE_DIM = 1024
FRAME_BASE = 1  # img_list numbers frames from 1 (images0001.png is the first frame)
_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in a name


class AuthorsFormatError(ValueError):
    """A pkl file that is safe to read but is not in the authors' layout; the message names file and key."""


@dataclass
class AuthorsPose:
    keypoints: np.ndarray  # (T, 133, 2) float32 frame pixels
    scores: np.ndarray  # (T, 133) float32
    frames: np.ndarray  # (T,) int64 clip frame indices


def _entry(data: object, key: str, path: Path) -> object:
    if not isinstance(data, dict):
        raise AuthorsFormatError(f"{path}: holds a {type(data).__name__}, expected a dict with key {key!r}")
    if key not in data:
        raise AuthorsFormatError(f"{path}: has no key {key!r} (keys: {sorted(map(str, data))})")
    return data[key]


def _finite_array(value: object, key: str, path: Path) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iuf":
        raise AuthorsFormatError(f"{path}: {key!r} is not a numeric numpy array ({type(value).__name__})")
    if not np.isfinite(value).all():
        raise AuthorsFormatError(f"{path}: {key!r} holds NaN or infinite values")
    return value


def read_rgb(path: Path) -> np.ndarray:
    """The (N, 1024) features of one RGB pkl, as float32."""
    feature = _finite_array(_entry(safe_load(path), "feature", path), "feature", path)
    if feature.ndim != 2 or feature.shape[1] != FEATURE_DIM or not len(feature):
        raise AuthorsFormatError(f"{path}: 'feature' has shape {feature.shape}, expected (N >= 1, {FEATURE_DIM})")
    return feature.astype(np.float32)


def frame_numbers(names: list, path: Path, frame_base: int = FRAME_BASE) -> np.ndarray:
    """(T,) int64 clip frame indices of img_list names: each name's last number minus `frame_base`."""
    out = []
    for i, name in enumerate(names):
        found = _NUMBER.search(name) if isinstance(name, str) else None
        if found is None:
            raise AuthorsFormatError(f"{path}: img_list[{i}] = {name!r} has no frame number")
        out.append(int(found.group(1)) - frame_base)
    frames = np.asarray(out, dtype=np.int64)
    if len(frames) and (frames[0] < 0 or np.any(np.diff(frames) <= 0)):
        raise AuthorsFormatError(
            f"{path}: img_list frame numbers are not increasing from {frame_base} (first {out[:5]}); check --frame-base"
        )
    return frames


def read_pose(path: Path, frame_base: int = FRAME_BASE) -> AuthorsPose:
    """One RTMPose pkl in the pose stage's layout (keypoints, scores, frames)."""
    data = safe_load(path)
    joints = _finite_array(_entry(data, "keypoints", path), "keypoints", path)
    names = _entry(data, "img_list", path)
    if joints.ndim != 3 or joints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise AuthorsFormatError(f"{path}: 'keypoints' has shape {joints.shape}, expected (T, {NUM_KEYPOINTS}, 3)")
    if not isinstance(names, (list, tuple)) or len(names) != len(joints):
        count = len(names) if isinstance(names, (list, tuple)) else type(names).__name__
        raise AuthorsFormatError(f"{path}: 'img_list' has {count} names for {len(joints)} frames of keypoints")
    joints = joints.astype(np.float32)
    return AuthorsPose(
        np.ascontiguousarray(joints[..., :2]),
        np.ascontiguousarray(joints[..., 2]),
        frame_numbers(list(names), path, frame_base),
    )


def frame_names(frames: np.ndarray, frame_base: int = FRAME_BASE) -> list[str]:
    """img_list names for clip frame indices (the inverse of frame_numbers)."""
    return [f"images{int(f) + frame_base:04d}.png" for f in frames]


def _write_pickle(path: Path, value: dict) -> None:
    """Write all of the file or none of it (a temporary renamed into place)."""
    write_then_publish(path, lambda tmp: tmp.write_bytes(pickle.dumps(value, protocol=4)))


def write_rgb(path: Path, name: str, features: np.ndarray) -> None:
    _write_pickle(path, {"name": name, "feature": np.ascontiguousarray(features, dtype=np.float32)})


def write_pose(
    path: Path, keypoints: np.ndarray, scores: np.ndarray, frames: np.ndarray, frame_base: int = FRAME_BASE
) -> None:
    joints = np.concatenate([keypoints.astype(np.float32), scores.astype(np.float32)[..., None]], axis=-1)
    _write_pickle(path, {"keypoints": joints, "img_list": frame_names(frames, frame_base)})
