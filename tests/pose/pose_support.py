"""Plain helpers shared by the pose tests (fixtures live in conftest.py)."""

from __future__ import annotations

import numpy as np

MODEL_M = "rtmpose-m_8xb64-270e_coco-wholebody-256x192"
MODEL_L = "rtmpose-l_8xb32-270e_coco-wholebody-384x288"


def whole(image: np.ndarray) -> np.ndarray:
    """The whole-image box [0, 0, w, h], as mmpose's inference_topdown makes it."""
    return np.array([0, 0, image.shape[1], image.shape[0]], dtype=np.float32)
