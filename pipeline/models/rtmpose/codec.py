"""SimCC decoding and the map from model-input pixels back to the original frame, as mmpose does it.

mmpose's SimCCLabel.decode (use_dark=False, as the WholeBody configs set) takes, per keypoint, the
argmax bin of the x and y logits as the location, divides by the split ratio, and scores it with the
smaller of the two maxima (raw logits, not softmax: RTMPose scores are not probabilities and can
exceed 1). A keypoint whose score is <= 0 gets location -1 bins. TopdownPoseEstimator then maps input
pixels to frame pixels with the crop's centre and scale. The dtypes below (float32 bins, float64
mapping stored back as float32) are mmpose's, so both backends agree to the last bit.
"""

from __future__ import annotations

import numpy as np


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, Wx), (N, K, Wy) logits -> keypoints (N, K, 2) in model-input pixels, scores (N, K)."""
    return decode_maxima(
        np.argmax(simcc_x, axis=2),
        np.amax(simcc_x, axis=2),
        np.argmax(simcc_y, axis=2),
        np.amax(simcc_y, axis=2),
        split_ratio,
    )


def decode_maxima(
    x_locs: np.ndarray, x_max: np.ndarray, y_locs: np.ndarray, y_max: np.ndarray, split_ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """`decode_simcc` from each axis' argmax bin (the first of equal maxima) and maximum, (N, K) each.

    The native backend takes the maxima on the device, so only these four small arrays come back
    to the host instead of the full logits (N x 133 x 1248 floats at 384x288)."""
    locs = np.stack((x_locs, y_locs), axis=-1).astype(np.float32)
    scores = np.minimum(x_max, y_max)
    locs[scores <= 0.0] = -1
    return locs / np.float32(split_ratio), scores


def input_to_frame(
    keypoints: np.ndarray, input_size: tuple[int, int], centers: np.ndarray, scales: np.ndarray
) -> np.ndarray:
    """Model-input pixels (N, K, 2) -> frame pixels, given each crop's centre and scale (N, 2), float32."""
    size = np.asarray(input_size, dtype=np.int64)
    mapped = keypoints / size * scales[:, None, :] + centers[:, None, :] - 0.5 * scales[:, None, :]
    return mapped.astype(np.float32)
