"""Plain helpers shared by the pose tests (fixtures live in conftest.py)."""

from __future__ import annotations

import numpy as np

MODEL_M = "rtmpose-m_8xb64-270e_coco-wholebody-256x192"
MODEL_L = "rtmpose-l_8xb32-270e_coco-wholebody-384x288"


def whole(image: np.ndarray) -> np.ndarray:
    """The whole-image box [0, 0, w, h], as mmpose's inference_topdown makes it."""
    return np.array([0, 0, image.shape[1], image.shape[0]], dtype=np.float32)


def inside_padded_crops(keypoints: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether keypoints (N, K, 2) lie in the crop region of their boxes (N, 4): the box padded 1.25x
    and widened to the 3:4 input aspect, as the top-down crop is, plus 1% (about one input pixel:
    a keypoint scored <= 0 sits at bin -1, half an input pixel outside)."""
    center = (boxes[:, None, :2] + boxes[:, None, 2:]) / 2
    size = (boxes[:, 2:] - boxes[:, :2]) * 1.25
    reach = np.maximum(size, size[:, ::-1] * np.array([0.75, 4 / 3]))[:, None, :] / 2 * 1.01 + 1
    return bool((np.abs(keypoints - center) <= reach).all())
