"""A 2D signer in the COCO-WholeBody layout: 133 keypoints from a few pose parameters, and its drawing.

The figure is deliberately simple (a camera-facing upper body) but every keypoint group is real:
17 body, 6 feet (out of frame, score 0), 68 face, 21 per hand, in COCO-WholeBody order, so the
pose/select stages and the trainer see exactly the layout they will see on real data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.keypoints.layout import FACE, LEFT_HAND, MOUTH, NUM_KEYPOINTS, RIGHT_HAND

# Finger chains of a 21-joint hand: wrist 0, then thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20.
FINGER_CHAINS = [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20)]
FINGER_ANGLES = np.deg2rad([-55.0, -20.0, 0.0, 18.0, 36.0])  # spread around the hand's axis
FINGER_LENGTHS = np.array([0.55, 0.75, 0.8, 0.75, 0.6])  # relative to palm length


@dataclass(frozen=True)
class Signer:
    """Appearance and placement of one rendered signer (varied across renders of a sentence)."""

    center_x: float  # pixels
    shoulder_y: float  # pixels
    scale: float  # shoulder half-width, pixels
    skin: tuple[int, int, int]
    shirt: tuple[int, int, int]
    background: tuple[int, int, int]


def hand_keypoints(wrist: np.ndarray, direction: float, curl: np.ndarray, size: float, mirror: bool) -> np.ndarray:
    """21 hand joints: the palm points along `direction` (radians, image coordinates), each finger bent
    by `curl` in [0, 1] (0 straight, 1 folded back onto the palm)."""
    points = np.zeros((21, 2))
    points[0] = wrist
    sign = -1.0 if mirror else 1.0
    palm = size
    for f, chain in enumerate(FINGER_CHAINS):
        base_angle = direction + sign * FINGER_ANGLES[f]
        base = wrist + palm * (0.45 if f == 0 else 1.0) * np.array([np.cos(base_angle), np.sin(base_angle)])
        seg = palm * FINGER_LENGTHS[f] / 3
        angle = base_angle
        prev = base
        points[chain[0]] = base
        for joint in chain[1:]:
            angle = angle + sign * curl[f] * np.deg2rad(70)
            prev = prev + seg * np.array([np.cos(angle), np.sin(angle)])
            points[joint] = prev
    return points


def face_keypoints(center: np.ndarray, radius: float, mouth_open: float) -> np.ndarray:
    """68 face points in the iBUG order's groups: jaw 17, brows 10, nose 9, eyes 12, mouth 20."""
    pts = []
    jaw = np.linspace(np.deg2rad(200), np.deg2rad(-20), 17)
    pts += [center + radius * np.array([np.cos(a) * 0.9, -np.sin(a) * 1.05]) for a in jaw]
    for side in (-1, 1):
        pts += [center + radius * np.array([side * (0.2 + 0.1 * i), -0.45 - 0.05 * np.sin(i)]) for i in range(5)]
    pts += [center + radius * np.array([0.0, -0.3 + 0.12 * i]) for i in range(4)]
    pts += [center + radius * np.array([0.12 * i, 0.18]) for i in range(-2, 3)]
    for side in (-1, 1):
        eye = center + radius * np.array([side * 0.38, -0.25])
        pts += [
            eye + radius * np.array([0.12 * np.cos(a), 0.06 * np.sin(a)])
            for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)
        ]
    mouth = center + radius * np.array([0.0, 0.5])
    pts += [
        mouth + radius * np.array([0.3 * np.cos(a), (0.08 + 0.15 * mouth_open) * np.sin(a)])
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False)
    ]
    pts += [
        mouth + radius * np.array([0.18 * np.cos(a), 0.1 * mouth_open * np.sin(a)])
        for a in np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ]
    return np.array(pts)


def arm_from_wrist(
    shoulder: np.ndarray, wrist: np.ndarray, upper: float, fore: float, outward: float
) -> tuple[np.ndarray, np.ndarray]:
    """Elbow position by two-link inverse kinematics (elbow bends outward/down), and the reachable wrist."""
    delta = wrist - shoulder
    dist = np.clip(np.linalg.norm(delta), 1e-6, upper + fore - 1e-3)
    wrist = shoulder + delta / max(np.linalg.norm(delta), 1e-6) * dist
    a = (upper**2 - fore**2 + dist**2) / (2 * dist)
    h = np.sqrt(max(upper**2 - a**2, 0.0))
    unit = delta / max(np.linalg.norm(delta), 1e-6)
    normal = np.array([-unit[1], unit[0]]) * outward
    if normal[1] < 0:  # elbows hang below the line shoulder-wrist
        normal = -normal
    return shoulder + a * unit + h * normal, wrist


def body_keypoints(
    signer: Signer,
    left_wrist: np.ndarray,
    right_wrist: np.ndarray,
    left_dir: float,
    right_dir: float,
    left_curl: np.ndarray,
    right_curl: np.ndarray,
    mouth_open: float,
    height: int,
) -> tuple[np.ndarray, np.ndarray]:
    """All 133 keypoints and their visibility scores. Left/right are the signer's own (image right is
    the signer's left, as in COCO)."""
    s = signer.scale
    kp = np.zeros((NUM_KEYPOINTS, 2))
    score = np.ones(NUM_KEYPOINTS)
    cx, sy = signer.center_x, signer.shoulder_y
    head = np.array([cx, sy - 1.25 * s])
    kp[0] = head + [0, 0.05 * s]  # nose
    kp[1], kp[2] = head + [0.25 * s, -0.15 * s], head + [-0.25 * s, -0.15 * s]  # eyes (left, right)
    kp[3], kp[4] = head + [0.5 * s, -0.05 * s], head + [-0.5 * s, -0.05 * s]  # ears
    l_sho, r_sho = np.array([cx + s, sy]), np.array([cx - s, sy])
    kp[5], kp[6] = l_sho, r_sho
    upper, fore = 1.1 * s, 1.0 * s
    l_elb, l_wri = arm_from_wrist(l_sho, left_wrist, upper, fore, +1)
    r_elb, r_wri = arm_from_wrist(r_sho, right_wrist, upper, fore, -1)
    kp[7], kp[8], kp[9], kp[10] = l_elb, r_elb, l_wri, r_wri
    kp[11], kp[12] = np.array([cx + 0.8 * s, sy + 2.6 * s]), np.array([cx - 0.8 * s, sy + 2.6 * s])
    kp[13], kp[14] = kp[11] + [0, 1.8 * s], kp[12] + [0, 1.8 * s]
    kp[15], kp[16] = kp[13] + [0, 1.8 * s], kp[14] + [0, 1.8 * s]
    kp[17:20] = kp[15] + [[0.2 * s, 0.3 * s], [0.4 * s, 0.3 * s], [0, 0.2 * s]]
    kp[20:23] = kp[16] + [[-0.2 * s, 0.3 * s], [-0.4 * s, 0.3 * s], [0, 0.2 * s]]
    kp[FACE.start : FACE.stop] = face_keypoints(head + [0, 0.05 * s], 0.55 * s, mouth_open)
    kp[LEFT_HAND.start : LEFT_HAND.stop] = hand_keypoints(l_wri, left_dir, left_curl, 0.42 * s, mirror=False)
    kp[RIGHT_HAND.start : RIGHT_HAND.stop] = hand_keypoints(r_wri, right_dir, right_curl, 0.42 * s, mirror=True)
    score[kp[:, 1] >= height] = 0.0  # below the frame (legs, feet): not visible
    return kp.astype(np.float32), score.astype(np.float32)


def draw(frame: np.ndarray, kp: np.ndarray, signer: Signer) -> None:
    """Paint the figure onto an RGB frame in place (thick limbs, filled head, finger lines)."""
    import cv2

    s = signer.scale
    pt = lambda i: tuple(int(round(v)) for v in kp[i])  # noqa: E731
    torso = np.array([kp[5], kp[6], kp[12], kp[11]]).round().astype(np.int32)
    cv2.fillPoly(frame, [torso], signer.shirt)
    cv2.circle(frame, pt(0), int(0.62 * s), signer.skin, -1, cv2.LINE_AA)
    for a, b in ((5, 7), (7, 9), (6, 8), (8, 10)):
        cv2.line(frame, pt(a), pt(b), signer.shirt, max(2, int(0.32 * s)), cv2.LINE_AA)
    for i in (1, 2):
        cv2.circle(frame, pt(i), max(1, int(0.07 * s)), (30, 30, 30), -1, cv2.LINE_AA)
    mouth = kp[MOUTH.start : MOUTH.start + 12].round().astype(np.int32)  # the outer lip (iBUG 48-59)
    cv2.fillPoly(frame, [mouth], (120, 40, 40))
    for hand in (LEFT_HAND, RIGHT_HAND):
        h = kp[hand.start : hand.stop]
        cv2.circle(frame, tuple(int(v) for v in h[0].round()), max(2, int(0.18 * s)), signer.skin, -1, cv2.LINE_AA)
        for chain in FINGER_CHAINS:
            points = [h[0]] + [h[j] for j in chain]
            for p, q in zip(points[:-1], points[1:]):
                cv2.line(
                    frame,
                    tuple(int(v) for v in p.round()),
                    tuple(int(v) for v in q.round()),
                    signer.skin,
                    max(1, int(0.08 * s)),
                    cv2.LINE_AA,
                )
