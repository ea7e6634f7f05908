"""Top-down crops: a person box -> the model's fixed-size input, exactly as mmpose's test pipeline makes it.

mmpose's GetBBoxCenterScale turns an xyxy box into a centre and a scale (the box size times 1.25);
TopdownAffine widens the shorter side to the model's aspect ratio and warps that region to the input
size with cv2.warpAffine (bilinear, black border). The warp matrix is built from three point pairs in
float32 as mmpose's get_warp_matrix does (no rotation, no shift), so the pixels are identical and the
two backends agree. Units: pixels of the original frame (centres, scales, boxes) and of the model input.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def box_center_scale(boxes: np.ndarray, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """xyxy boxes (N, 4) float32 -> centres (N, 2) and padded sizes (N, 2), float32."""
    boxes = np.asarray(boxes, dtype=np.float32)
    return (boxes[:, 2:] + boxes[:, :2]) * 0.5, (boxes[:, 2:] - boxes[:, :2]) * padding


def fix_aspect_ratio(scales: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow width or height so that width / height == aspect_ratio (the box only ever gets larger)."""
    w, h = scales[:, :1], scales[:, 1:]
    return np.where(w > h * aspect_ratio, np.hstack([w, w / aspect_ratio]), np.hstack([h * aspect_ratio, h]))


def warp_matrix(center: np.ndarray, scale: np.ndarray, output_size: tuple[int, int]) -> np.ndarray:
    """2x3 affine matrix taking the frame region (center, scale) onto an output_size (w, h) image.

    Three point pairs: the centre, the middle of the left edge, and a point the same distance above
    the centre (the left-edge vector turned by 90 degrees), in float32 as mmpose builds them."""
    out_w, out_h = output_size
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = center
    src[1] = center.astype(np.float64) + np.array([scale[0] * -0.5, 0.0])
    dst[0] = [out_w * 0.5, out_h * 0.5]
    dst[1] = [0.0, out_h * 0.5]
    for pts in (src, dst):
        edge = pts[0] - pts[1]
        pts[2] = pts[1] + np.r_[-edge[1], edge[0]]
    return cv2.getAffineTransform(src, dst)


def crop_inputs(
    frames: Sequence[np.ndarray], boxes: np.ndarray, input_size: tuple[int, int], padding: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops (N, H, W, 3) uint8 (channel order kept), plus each crop's centre and scale (N, 2) float32.

    frames[i] is cropped with boxes[i] (xyxy, frame pixels); crops are input_size = (W, H)."""
    centers, scales = box_center_scale(boxes, padding)
    scales = fix_aspect_ratio(scales, input_size[0] / input_size[1])
    crops = np.empty((len(frames), input_size[1], input_size[0], 3), dtype=np.uint8)
    for i, frame in enumerate(frames):
        matrix = warp_matrix(centers[i], scales[i], input_size)
        crops[i] = cv2.warpAffine(frame, matrix, input_size, flags=cv2.INTER_LINEAR)
    return crops, centers, scales
