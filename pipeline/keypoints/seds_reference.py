"""A frame-by-frame, scalar restatement of the SEDS authors' pose loader (longtaojiang/SEDS,
dataloaders/dataloader_H2_retrieval_pose.py: crop_hand, elbow_hand, get_kp2ds, GetTotalFrameList,
_get_single_hand, _get_body_pose), written from reading it, in plain Python floats and lists.

Not used by any stage: it is the reference the vectorised pipeline.keypoints.normalise is checked
against (tests/keypoints/test_seds_rules.py) and the per-frame baseline it is timed against, with
agreement checked (benchmarks/select_bench.py). Frames with no box for a hand get zeros, as their
list splicing does; frames with no box for either hand are dropped (their total frame list).

Input: keypoints (T, 133, 3) [x, y, score] already in their frame of size (usz, vsz) (How2Sign 256 x 256,
PHOENIX-2014T 210 x 260, CSL-Daily 512 x 512), and the arm fallback's bottom margin: 50 px in the How2Sign
and CSL-Daily loaders, none (None) in PHOENIX-2014T's (dataloader_ph_retrieval_pose.py elbow_hand).
Output: (kept frame positions, {"body": (T', 7, 2), "left": (T', 21, 2), "right": (T', 21, 2)}).
"""

from __future__ import annotations

import math

import numpy as np

CROP = 256.0
FRAMES_THRESHOLD = 0.1  # --frames_threshold in their scripts
THRESHOLD = 0.4  # --threshold
LEN_KPS = 10
THRE = 0.5
BODY = [0, 5, 7, 9, 6, 8, 10]


def _span(mid: float, b: float, size: float) -> tuple[float, float]:
    s = round(max(0, mid - b / 2))
    e = s + b
    if e > size - 1:
        d = e - (size - 1)
        e -= d
        s -= d
    return s, e


def joint_box(frame: np.ndarray, side: str, usz: float, vsz: float, margin: float | None) -> list[float] | None:
    hand = range(112, 133) if side == "right" else range(91, 112)
    u = [float(frame[j, 0]) for j in hand if frame[j, 2] > FRAMES_THRESHOLD]
    v = [float(frame[j, 1]) for j in hand if frame[j, 2] > FRAMES_THRESHOLD]
    if len(u) < LEN_KPS:
        return arm_box(frame, side, usz, vsz, margin)
    umin, umax, vmin, vmax = min(u), max(u), min(v), max(v)
    b = round(2.2 * max(umax - umin, vmax - vmin))
    minsz = min(usz, vsz)
    us, ue, vs, ve = 0, usz - 1, 0, vsz - 1
    umid, vmid = umin + (umax - umin) / 2, vmin + (vmax - vmin) / 2
    if b < minsz - 1:
        us, ue = _span(umid, b, usz)
        vs, ve = _span(vmid, b, vsz)
    else:
        b = minsz - 1
        if usz == minsz:
            vs, ve = _span(vmid, b, vsz)
        if vsz == minsz:
            us, ue = _span(umid, b, usz)
    box = [int(us), int(ue), int(vs), int(ve)]
    return box if box[1] > box[0] and box[3] > box[2] else None  # theirs asserts here


def arm_box(frame: np.ndarray, side: str, usz: float, vsz: float, margin: float | None) -> list[float] | None:
    arm = [6, 8, 10] if side == "right" else [5, 7, 9]
    if any(frame[j, 2] < THRE for j in arm) or (margin is not None and not frame[arm[2], 1] < vsz - margin):
        return None
    (x1, y1), (x2, y2), (x3, y3) = [(float(frame[j, 0]), float(frame[j, 1])) for j in arm]
    x = x3 + 0.33 * (x3 - x2)
    y = y3 + 0.33 * (y3 - y2)
    width = 1.1 * max(math.hypot(x3 - x2, y3 - y2), 0.9 * math.hypot(x2 - x1, y2 - y1))
    x -= width / 2
    y -= width / 2
    x, y = max(x, 0), max(y, 0)
    w1 = usz - x if x + width > usz else width
    w2 = vsz - y if y + width > vsz else width
    x, y, width = int(x), int(y), int(min(w1, w2))
    return [x, x + width, y, y + width] if width > 0 else None  # theirs asserts here


def hand_values(frame: np.ndarray, side: str, box: list[float]) -> list[list[float]]:
    hand = range(112, 133) if side == "right" else range(91, 112)
    out = []
    for j in hand:
        x, y = (0.0, 0.0) if frame[j, 2] <= THRESHOLD else (float(frame[j, 0]), float(frame[j, 1]))
        p = [(x - box[0]) / (box[1] - box[0]) * CROP, (y - box[2]) / (box[3] - box[2]) * CROP]
        p = [c if c > 0 else 0.0 for c in p]
        if side == "left":
            p[0] = CROP - p[0]
            p = [c if c < 255.0 else 0.0 for c in p]
        out.append(p)
    return out


def reference_loader(
    clip: np.ndarray, usz: float, vsz: float, margin: float | None = 50.0
) -> tuple[list[int], dict[str, np.ndarray]]:
    boxes = {side: [joint_box(f, side, usz, vsz, margin) for f in clip] for side in ("left", "right")}
    kept = [t for t in range(len(clip)) if boxes["left"][t] is not None or boxes["right"][t] is not None]
    out = {"body": [], "left": [], "right": []}
    for t in kept:
        frame = clip[t]
        out["body"].append([[float(frame[j, 0]) / usz * CROP, float(frame[j, 1]) / vsz * CROP] for j in BODY])
        for side in ("left", "right"):
            box = boxes[side][t]
            out[side].append(hand_values(frame, side, box) if box is not None else [[0.0, 0.0]] * 21)
    return kept, {k: np.asarray(v, dtype=np.float64).reshape(len(kept), -1, 2) for k, v in out.items()}
