"""Which frames each I3D window sees: the SEDS/CiCo sampling, written out in clip frame indices.

The authors' rule (SEDS `dataloaders/dataloader_H2_retrieval_pose.py::_get_pose_clips`, CiCo's
`I3D_feature_extractor/datasets/videodataset.py::_slide_windows` and its loader):
1. thin the clip's T frames to at most `max_frames` by keeping every ceil(T / max_frames)-th frame
   (`pipeline.video.sampling.thin_frames`, shared with the pose stage so the two align);
2. over the thinned list of L frames, num_clips = ceil((L - window) / stride) + 1 windows (at least
   one); window j starts at j * stride, except a window that would run past the end, which starts at
   L - window instead (only possible when stride > 1);
3. a list shorter than one window gives one window padded by repeating its last frame (never dropped);
4. when there are more than `num_windows` windows, keep `np.linspace(0, n - 1, num_windows, dtype=int)`:
   numpy's cast to int truncates, so the indices are floor(i * (n - 1) / (num_windows - 1)), not
   rounded (`pipeline.video.sampling.linspace_choice` rounds half-to-even and would pick other windows).

Everything returned is an int64 index: `windows` are clip frame indices (0 = the clip's first frame),
the array the rgb stage stores so the pose side can align to exactly the same frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.video.sampling import thin_frames


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one clip and the frames to decode for them (each decoded once)."""

    frames: np.ndarray  # (F,) sorted unique clip frame indices the kept windows need
    windows: np.ndarray  # (n, window) clip frame indices of each kept window's frames
    positions: np.ndarray  # (n, window) index of each of those frames in `frames`
    total_windows: int  # windows before the linspace choice
    padded: bool  # the thinned clip was shorter than one window (last frame repeated)
    step: int  # thinning step: every step-th clip frame was kept


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start positions (in the thinned list) of every window, by the authors' sliding-window rule."""
    if length <= 0:
        return np.zeros(0, dtype=np.int64)
    count = max(1, math.ceil((length - window) / stride) + 1)
    starts = np.arange(count, dtype=np.int64) * stride
    return np.where(starts + window > length, max(length - window, 0), starts)


def choose_windows(total: int, count: int | None) -> np.ndarray:
    """Indices of the kept windows: all when `count` is None or total <= count, else the authors'
    truncating linspace."""
    if count is None or total <= count:
        return np.arange(total, dtype=np.int64)
    return np.linspace(0, total - 1, count, dtype=int).astype(np.int64)


def plan_windows(num_frames: int, *, window: int, stride: int, max_frames: int, num_windows: int | None) -> WindowPlan:
    """The SEDS/CiCo windows of a clip of `num_frames` frames (see the module docstring)."""
    if num_frames <= 0:
        raise ValueError(f"a clip needs at least one frame to be windowed, got {num_frames}")
    thinned = thin_frames(num_frames, max_frames)
    step = int(thinned[1] - thinned[0]) if len(thinned) > 1 else 1
    length = len(thinned)
    starts = window_starts(length, window, stride)
    kept = starts[choose_windows(len(starts), num_windows)]
    offsets = kept[:, None] + np.arange(window, dtype=np.int64)[None, :]
    offsets = np.minimum(offsets, length - 1)  # only a short clip reaches past its end: repeat the last frame
    windows = thinned[offsets]
    frames, positions = np.unique(windows, return_inverse=True)
    return WindowPlan(
        frames.astype(np.int64),
        windows.astype(np.int64),
        positions.reshape(windows.shape).astype(np.int64),
        int(len(starts)),
        length < window,
        step,
    )
