"""The signer's box per frame: the whole frame, the box of a first pass's keypoints, or a tracked detection.

All boxes are xyxy float32 in frame pixels. The top-down crop pads every box by 1.25 itself
(pipeline/pose/topdown.py), so the boxes here are tight: the region the signer occupies.

The detector rule (several people in view): on the first frame with a detection the signer is the
person with the largest `area x centrality` (centrality = 1 - distance of the box centre from the
frame centre / half the frame diagonal), i.e. the largest, most central person; afterwards the
detection overlapping the previous signer box most (IoU >= 0.3) continues the track, and only when
none does is the signer chosen afresh by the same rule. The chosen box is smoothed by an exponential
moving average (weight `smoothing` on the previous box) so the crop does not jitter. Frames with no
detection keep the previous box (or the whole frame before the first detection). The rule is causal
(it only looks back), so processing a clip in chunks gives the same boxes as processing it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BODY = slice(0, 17)  # COCO-WholeBody body keypoints (nose ... ankles; wrists included)
TRACK_IOU = 0.3


def whole_frame_box(width: int, height: int) -> np.ndarray:
    """[0, 0, w, h]: what mmpose's inference_topdown uses when no box is given."""
    return np.array([0, 0, width, height], dtype=np.float32)


def keypoint_boxes(
    keypoints: np.ndarray, scores: np.ndarray, sizes: np.ndarray, threshold: float, min_keypoints: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tight boxes (N, 4) of each frame's body keypoints scoring above `threshold`, clipped to the frame;
    frames with fewer than `min_keypoints` such keypoints (or a degenerate box) keep the whole frame.

    keypoints (N, 133, 2), scores (N, 133), sizes (N, 2) = frame (width, height). Returns the boxes and
    a bool mask of the frames that fell back to the whole frame."""
    sizes = np.asarray(sizes, dtype=np.float32)
    body, confident = keypoints[:, BODY], scores[:, BODY] > threshold
    lo = np.where(confident[..., None], body, np.inf).min(axis=1)
    hi = np.where(confident[..., None], body, -np.inf).max(axis=1)
    lo = np.clip(lo, 0, sizes)
    hi = np.clip(hi, 0, sizes)
    fallback = (confident.sum(axis=1) < min_keypoints) | np.any(hi - lo < 1.0, axis=1)
    boxes = np.concatenate([lo, hi], axis=1).astype(np.float32)
    boxes[fallback] = np.concatenate([np.zeros_like(sizes), sizes], axis=1)[fallback]
    return boxes, fallback


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of (n, 4) boxes."""
    lo = np.maximum(box[:2], boxes[:, :2])
    hi = np.minimum(box[2:], boxes[:, 2:4])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(boxes[:, 2:4] - boxes[:, :2], axis=1)
    return inter / np.maximum(area + areas - inter, 1e-9)


def prominence(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area (pixels) x centrality in [0, 1]: large, central people score high."""
    centers = (boxes[:, :2] + boxes[:, 2:4]) * 0.5
    offset = np.linalg.norm(centers - np.array([width, height]) * 0.5, axis=1)
    centrality = np.clip(1.0 - offset / (0.5 * np.hypot(width, height)), 0.0, 1.0)
    return np.prod(boxes[:, 2:4] - boxes[:, :2], axis=1) * centrality


@dataclass
class SignerTrack:
    """One clip's signer box, frame after frame (see the module docstring for the rule)."""

    width: int
    height: int
    smoothing: float
    box: np.ndarray | None = None
    fallback_frames: int = 0  # frames before the first detection, given the whole frame
    reselections: int = 0  # times the track was lost and the signer chosen afresh

    def update(self, detections: np.ndarray) -> np.ndarray:
        """detections (n, 5): xyxy + score, already filtered by score. Returns this frame's box."""
        if len(detections):
            chosen = None
            if self.box is not None:
                overlap = box_iou(self.box, detections)
                if overlap.max() >= TRACK_IOU:
                    chosen = detections[int(np.argmax(overlap)), :4]
                else:
                    self.reselections += 1
            if chosen is None:
                chosen = detections[int(np.argmax(prominence(detections, self.width, self.height))), :4]
            chosen = chosen.astype(np.float32)
            if self.box is None:
                self.box = chosen
            else:
                self.box = (self.smoothing * self.box + (1.0 - self.smoothing) * chosen).astype(np.float32)
        if self.box is None:
            self.fallback_frames += 1
            return whole_frame_box(self.width, self.height)
        return self.box.copy()


def describe_rule(
    box: str, *, threshold: float = 0.0, min_keypoints: int = 0, min_score: float = 0.0, smoothing: float = 0.0
) -> str:
    """The box rule in words, stored with every item (attrs box_rule)."""
    if box == "whole_frame":
        return "whole_frame: [0, 0, width, height] for every frame"
    if box == "two_pass":
        return (
            f"two_pass: whole-frame pass, then per frame the tight box of body keypoints 0-16 scoring > "
            f"{threshold:g} (whole frame when fewer than {min_keypoints}), re-run with that box"
        )
    return (
        f"mmdet: person detections scoring >= {min_score:g}; signer = largest x most central on the first "
        f"frame, then the detection with IoU >= {TRACK_IOU:g} to the previous box (else re-chosen by the "
        f"same rule); box EMA-smoothed with weight {smoothing:g} on the previous frame's box"
    )
