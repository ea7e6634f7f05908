"""Full-size frames on a device -> I3D input, as torch ops: the decoder's short-side resize, the centre
crop and the normalisation, for frames that NVDEC left on the GPU.

The reference is the CPU path: the decoder child resizes with cv2 (INTER_AREA when shrinking,
INTER_LINEAR when enlarging) to uint8, then `pipeline.rgb.frames` crops the centre and normalises.
Here the shrink is cv2's area rule written as two small weight matrices (output pixel i averages the
source interval [i*s, (i+1)*s) with fractional coverage, s = source/output size per axis), so it is
the same arithmetic up to float rounding; only the crop's rows and columns are computed, and the result
is rounded to uint8 levels as the CPU path stores it. Measured differences: docs/gpu.md.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.rgb.frames import NORMALISATION
from pipeline.video.decode import resized_size

FRAMES_PER_STEP = 32  # frames converted to float at a time: 32 x 720p x 3 x 4 bytes = 350 MB at most


def area_weights(source: int, output: int) -> np.ndarray:
    """(output, source) float64 weights of cv2's INTER_AREA shrink along one axis (rows sum to 1)."""
    step = source / output
    starts = np.arange(output)[:, None] * step
    pixels = np.arange(source)[None, :]
    overlap = np.minimum(starts + step, pixels + 1) - np.maximum(starts, pixels)
    return np.clip(overlap, 0.0, None) / step


def resize_crop(frames: torch.Tensor, short_side: int, size: int) -> torch.Tensor:
    """(F, 3, size, size) float32 in uint8 levels (0..255, whole numbers): the centre `size` crop of
    (F, H, W, 3) uint8 frames after resizing their short side to `short_side`. ValueError when the
    resized frames are smaller than the crop (as `frames.centre_crop`)."""
    count, height, width = frames.shape[:3]
    out_w, out_h = resized_size(width, height, short_side)
    if out_h < size or out_w < size:
        raise ValueError(f"frames of {out_w}x{out_h} px are smaller than the {size} px crop")
    top, left = int((out_h - size) / 2), int((out_w - size) / 2)
    device = frames.device
    out = torch.empty((count, 3, size, size), dtype=torch.float32, device=device)
    shrink = out_w / width < 1
    if shrink:
        rows = torch.from_numpy(area_weights(height, out_h)[top : top + size]).to(device, torch.float32)
        cols = torch.from_numpy(area_weights(width, out_w)[left : left + size]).to(device, torch.float32)
    for start in range(0, count, FRAMES_PER_STEP):
        chunk = frames[start : start + FRAMES_PER_STEP].permute(0, 3, 1, 2).float()  # (f, 3, H, W)
        if shrink:
            resized = torch.matmul(torch.matmul(rows, chunk), cols.T)  # (f, 3, size, size)
        else:  # cv2 INTER_LINEAR: half-pixel centres, edge pixels repeated
            resized = F.interpolate(chunk, size=(out_h, out_w), mode="bilinear", align_corners=False)
            resized = resized[:, :, top : top + size, left : left + size]
        out[start : start + len(chunk)] = resized.round_().clamp_(0, 255)
    return out


def to_model_input_on_device(frames: torch.Tensor, short_side: int, size: int, family: str) -> torch.Tensor:
    """`frames.to_model_input` for full-size (F, H, W, 3) uint8 frames already on a device: (F, 3, size,
    size) float32 normalised for the checkpoint `family`, on the same device."""
    scale, offset = NORMALISATION[family]
    return resize_crop(frames, short_side, size).div_(255.0).mul_(scale).add_(offset)
