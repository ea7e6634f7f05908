"""Taking the selected points out of (T, 133) whole-body keypoints, with shape checks that name the array."""

from __future__ import annotations

import numpy as np

from pipeline.keypoints.layout import NUM_KEYPOINTS, Selection


class KeypointShapeError(ValueError):
    """Keypoint arrays that are not (T, 133, 2) pixels with (T, 133) scores."""


def check_wholebody(keypoints: np.ndarray, scores: np.ndarray, where: str = "keypoints") -> None:
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 2):
        raise KeypointShapeError(f"{where}: keypoints have shape {keypoints.shape}, expected (T, {NUM_KEYPOINTS}, 2)")
    if scores.shape != keypoints.shape[:2]:
        raise KeypointShapeError(f"{where}: scores have shape {scores.shape}, expected {keypoints.shape[:2]}")


def select_points(keypoints: np.ndarray, scores: np.ndarray, chosen: Selection) -> tuple[np.ndarray, np.ndarray]:
    """(T, K, 2) keypoints and (T, K) scores of the selection's points, in its column order (copies)."""
    check_wholebody(keypoints, scores)
    return keypoints[:, chosen.indices], scores[:, chosen.indices]
