"""Frames -> I3D input: centre crop and the normalisation each checkpoint family was trained with.

Frames arrive as RGB uint8 (F, H, W, 3) whose short side is already `rgb.resize` pixels (the decoder
resizes). The crop's top-left corner is int((H - size) / 2), int((W - size) / 2), as the bsl1k/CiCo
evaluation code computes it. Only the crop (uint8) is copied to the device; conversion to float and
normalisation happen there, once per frame, however many windows share the frame.
"""

from __future__ import annotations

import numpy as np
import torch

# family -> (scale, offset): input = (uint8 / 255) * scale + offset, in that order, as the authors' code
NORMALISATION = {
    "bsl1k": (1.0, -0.5),  # [0,1] minus mean 0.5, std 1.0 (bsl1k, CiCo, SEDS)
    "cico": (1.0, -0.5),
    "pytorch_i3d": (2.0, -1.0),  # [-1, 1] (pytorch-i3d, kinetics-i3d, video_features)
}


def centre_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """(F, size, size, 3) view of the centre of (F, H, W, 3) frames; ValueError when a side is short."""
    height, width = frames.shape[1:3]
    if height < size or width < size:
        raise ValueError(f"frames of {width}x{height} px are smaller than the {size} px crop")
    top, left = int((height - size) / 2), int((width - size) / 2)
    return frames[:, top : top + size, left : left + size]


def to_model_input(frames: np.ndarray, size: int, family: str, device: torch.device | str) -> torch.Tensor:
    """(F, 3, size, size) float32 normalised frames on `device`, from RGB uint8 (F, H, W, 3)."""
    scale, offset = NORMALISATION[family]
    crop = torch.from_numpy(np.ascontiguousarray(centre_crop(frames, size)))
    if torch.device(device).type == "cuda":
        crop = crop.pin_memory().to(device, non_blocking=True)
    return crop.permute(0, 3, 1, 2).float().div_(255.0).mul_(scale).add_(offset)
