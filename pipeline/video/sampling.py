"""Frame and window sampling shared by the pose and rgb stages, so their frame lists align.

All functions return integer indices into a clip's frames (0 = the clip's first frame), as int64
arrays. Units: frames, never seconds, except `clip_frame_range`, which converts clip bounds.
"""

from __future__ import annotations

import math

import numpy as np


def clip_frame_range(video_frames: int, fps: float, start_s: float | None, end_s: float | None) -> tuple[int, int]:
    """[first, stop) frames of a clip: frame i (timestamp i/fps) is in it when start_s <= i/fps < end_s.
    Whole video when the bounds are None. Not clamped: callers decide what out-of-range means."""
    if start_s is None or end_s is None:
        return 0, video_frames
    eps = 1e-6
    first = max(0, math.ceil(start_s * fps - eps))
    stop = math.ceil(end_s * fps - eps)
    return first, stop


def thin_frames(num_frames: int, max_frames: int) -> np.ndarray:
    """Every ceil(T / max_frames)-th frame: the SEDS/CiCo loaders' rule for long clips (T <= max keeps all)."""
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    step = max(1, math.ceil(num_frames / max_frames))
    return np.arange(0, num_frames, step, dtype=np.int64)


def every_kth(num_frames: int, k: int) -> np.ndarray:
    return np.arange(0, max(num_frames, 0), k, dtype=np.int64)


def uniform_frames(num_frames: int, count: int) -> np.ndarray:
    """`count` frames spread evenly from first to last (repeats when the clip is shorter than `count`)."""
    if num_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.round(np.linspace(0, num_frames - 1, count)).astype(np.int64)


def linspace_choice(total: int, count: int) -> np.ndarray:
    """`count` of `total` items chosen by np.linspace(0, total-1, count), rounded half-to-even as
    np.round does; all of them when total <= count."""
    if total <= count:
        return np.arange(total, dtype=np.int64)
    return np.round(np.linspace(0, total - 1, count)).astype(np.int64)


def linspace_floor(total: int, count: int) -> np.ndarray:
    """`count` of `total` items chosen by np.linspace(0, total-1, count, dtype=int), i.e. truncated: the
    SEDS loaders' choice of 64 windows (dataloader_H2_retrieval_pose.py _get_pose_clips); all of them
    when total <= count."""
    if total <= count:
        return np.arange(total, dtype=np.int64)
    return np.linspace(0, total - 1, count, dtype=np.int64)


FRAME_RULES = ("thin", "all", "every", "uniform")


def frame_list(num_frames: int, rule: str = "thin", value: int = 300) -> np.ndarray:
    """A clip's sampled frames by a named rule, shared by pose, gt_keypoints and rgb so they align:
    'thin' (every ceil(T/value)-th frame, at most `value`: the SEDS default with 300), 'all',
    'every' (every value-th frame) or 'uniform' (value frames spread evenly)."""
    if rule == "thin":
        return thin_frames(num_frames, value)
    if rule == "all":
        return np.arange(max(num_frames, 0), dtype=np.int64)
    if rule == "every":
        return every_kth(num_frames, value)
    if rule == "uniform":
        return uniform_frames(num_frames, value)
    raise ValueError(f"unknown frame rule {rule!r}; expected one of {FRAME_RULES}")
