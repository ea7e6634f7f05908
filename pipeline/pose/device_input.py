"""Keypoints from frames that are already on a device (NVDEC-decoded): the native estimator's network and
SimCC decoding fed with top-down crops cut on that device, so a GPU-decoded frame never visits the host.

`NativeEstimator.estimate` takes host frames and warps its crops with cv2 (the reference); here the crops
come from `pipeline.pose.gpu_crops` (the same centres, scales and warp matrices, sampled by grid_sample;
within one level of cv2's, docs/gpu.md) and go straight into the same network, with the same
normalisation, flip test and precision, and the same decoding to frame pixels. What this relies on of
the estimator (its public interface, nothing of its CPU path): `spec` (input_size, bbox_padding),
`batch_size`, `forward_crops` (crops -> SimCC maxima on the device) and `decode` (-> frame pixels).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.models.rtmpose.spec import NUM_KEYPOINTS
from pipeline.pose.gpu_crops import crop_inputs_on_device


def estimate_frames(
    estimator, frames: Sequence[np.ndarray] | torch.Tensor, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`estimator.estimate(frames, boxes)` for host frames; `estimate_on_device` for a (N, H, W, 3) uint8
    tensor of frames (which only the native estimator is given: the stage opens no NVDEC reader for mmpose)."""
    if isinstance(frames, torch.Tensor):
        return estimate_on_device(estimator, frames, boxes)
    return estimator.estimate(frames, boxes)


def estimate_on_device(estimator, frames: torch.Tensor, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 133, 2) float32 frame pixels and scores (N, 133) float32 for frames[i] (uint8 RGB on
    any device) cropped at boxes[i] (xyxy frame pixels), `estimator.batch_size` crops at a time."""
    spec = estimator.spec
    count = len(frames)
    keypoints = np.empty((count, NUM_KEYPOINTS, 2), dtype=np.float32)
    scores = np.empty((count, NUM_KEYPOINTS), dtype=np.float32)
    for start in range(0, count, estimator.batch_size):
        stop = min(start + estimator.batch_size, count)
        crops, centers, scales = crop_inputs_on_device(
            frames[start:stop], boxes[start:stop], spec.input_size, spec.bbox_padding
        )
        keypoints[start:stop], scores[start:stop] = keypoints_from_crops(estimator, crops, centers, scales)
    return keypoints, scores


def keypoints_from_crops(
    estimator, crops: torch.Tensor, centers: np.ndarray, scales: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """THE entry point for ready crops: (B, h, w, 3) uint8 crops (any device; moved to the estimator's)
    with each crop's centre and scale (B, 2) frame pixels -> keypoints (B, 133, 2) in frame pixels and
    scores (B, 133), through the estimator's own forward and decoding (`NativeEstimator.forward_crops`,
    `decode`), so both input paths share every speed-up and setting."""
    return estimator.decode(estimator.forward_crops(crops), centers, scales)
