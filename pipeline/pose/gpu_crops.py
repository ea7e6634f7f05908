"""Top-down crops as torch ops, for frames that are already on a device (NVDEC-decoded frames on a GPU).

The same crops as `pipeline.pose.topdown.crop_inputs` (the reference: mmpose's TopdownAffine, i.e.
cv2.warpAffine, bilinear, black border), with the same centres, scales and warp matrices, but sampled
by F.grid_sample on whatever device the frames are on, so a GPU-decoded frame never visits the host.

Why the pixels differ slightly from cv2's: cv2.warpAffine maps each output pixel to a source
position quantised to 1/32 pixel and interpolates in 15-bit fixed point; grid_sample uses the exact
float32 position. Both treat integer coordinates as pixel centres (align_corners=True here) and blend
with zeros outside the frame. The measured differences (crops, and keypoints after the full model)
are in docs/gpu.md; tests/pose/test_gpu_crops.py measures them again on real frames.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.pose.topdown import box_center_scale, fix_aspect_ratio, warp_matrix


def warp_crops(frames: torch.Tensor, matrices: np.ndarray, output_size: tuple[int, int]) -> torch.Tensor:
    """cv2.warpAffine(frames[i], matrices[i], output_size, INTER_LINEAR, BORDER_CONSTANT 0) for every i.

    frames: (N, H, W, 3) uint8 on any device; matrices: (N, 2, 3) frame -> crop pixels; output_size:
    (w, h). Returns (N, h, w, 3) uint8 on the frames' device, rounded as cv2 rounds."""
    count, height, width = frames.shape[:3]
    out_w, out_h = output_size
    device = frames.device
    if count == 0:
        return torch.empty((0, out_h, out_w, 3), dtype=torch.uint8, device=device)
    # Output pixel (x, y) reads the source at inverse(M) @ (x, y, 1), in float64 on the host (N 2x3 matrices).
    full = np.zeros((count, 3, 3))
    full[:, :2] = matrices
    full[:, 2, 2] = 1.0
    inverse = torch.from_numpy(np.linalg.inv(full)[:, :2]).to(device=device, dtype=torch.float32)
    ys, xs = torch.meshgrid(
        torch.arange(out_h, device=device, dtype=torch.float32),
        torch.arange(out_w, device=device, dtype=torch.float32),
        indexing="ij",
    )
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)  # (h*w, 3)
    source = torch.einsum("nij,pj->npi", inverse, points)  # (N, h*w, 2) pixels
    # align_corners=True: -1 and +1 are the centres of the first and last pixel, as cv2's coordinates.
    scale = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], device=device)
    grid = (source * scale - 1.0).reshape(count, out_h, out_w, 2)
    images = frames.permute(0, 3, 1, 2).float()
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    return crops.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def crop_inputs_on_device(
    frames: torch.Tensor, boxes: np.ndarray, input_size: tuple[int, int], padding: float
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """`topdown.crop_inputs` for a (N, H, W, 3) uint8 tensor of frames: crops (N, h, w, 3) uint8 on the
    frames' device, plus each crop's centre and scale (N, 2) float32 (frame pixels, on the host, where the
    keypoint decoding uses them). frames[i] is cropped with boxes[i] (xyxy frame pixels)."""
    centers, scales = box_center_scale(boxes, padding)
    scales = fix_aspect_ratio(scales, input_size[0] / input_size[1])
    matrices = (
        np.stack([warp_matrix(centers[i], scales[i], input_size) for i in range(len(boxes))])
        if len(boxes)
        else np.zeros((0, 2, 3))
    )
    return warp_crops(frames, matrices, input_size), centers, scales
