"""The COCO-WholeBody 133-keypoint layout, its part groups and skeleton links.

Index ranges (as RTMPose-WholeBody and the COCO-WholeBody annotations order them):
body 0-16 (COCO 17), feet 17-22, face 23-90 (the 68 iBUG points), left hand 91-111, right hand
112-132 (21 each: root, then thumb, fore, middle, ring and pinky fingers, 4 joints each, base to tip).
Left and right are the person's own (the left hand is usually on the image's right).

Selection groups are the units of the SEDS paper's keypoint ablation (Table 4): `body` (the 7
upper-body points the authors' loader takes, in its order), `hand` (left then right hand), `face` (the
48 face points that are not lips: jaw, brows, nose, eyes) and `mouth` (the 20 lip points). The paper
does not define face and mouth; we split the 68 iBUG points so the two are disjoint and any
combination is a selection. A selection always lists its parts in one canonical order, so the same
groups give the same columns whatever order params name them in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import UserError

NUM_KEYPOINTS = 133

BODY = range(0, 17)
FEET = range(17, 23)
FACE = range(23, 91)
LEFT_HAND = range(91, 112)
RIGHT_HAND = range(112, 133)

# The SEDS loader's body: nose, left shoulder, left elbow, left wrist, right shoulder, right elbow, right wrist.
SEDS_BODY = (0, 5, 7, 9, 6, 8, 10)
MOUTH = range(FACE.start + 48, FACE.start + 68)  # iBUG 48-67: outer lip 48-59, inner lip 60-67
FACE_WITHOUT_MOUTH = range(FACE.start, MOUTH.start)  # iBUG 0-47: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47

# Arms as (shoulder, elbow, wrist), used by the SEDS hand-box fallback.
LEFT_ARM = (5, 7, 9)
RIGHT_ARM = (6, 8, 10)

BODY_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
FOOT_NAMES = ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel")
FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")


def _hand_names(side: str) -> tuple[str, ...]:
    return (f"{side}_hand_root",) + tuple(f"{side}_{finger}{j}" for finger in FINGERS for j in range(1, 5))


KEYPOINT_NAMES: tuple[str, ...] = (
    BODY_NAMES + FOOT_NAMES + tuple(f"face-{i}" for i in range(68)) + _hand_names("left") + _hand_names("right")
)

# Where each part sits among the 133 points, in the canonical selection order.
PART_INDICES: dict[str, tuple[int, ...]] = {
    "body": SEDS_BODY,
    "left_hand": tuple(LEFT_HAND),
    "right_hand": tuple(RIGHT_HAND),
    "face": tuple(FACE_WITHOUT_MOUTH),
    "mouth": tuple(MOUTH),
}
PART_ORDER = ("body", "left_hand", "right_hand", "face", "mouth")
# The groups params name (the paper's ablation units) and the parts each one stands for.
GROUPS: dict[str, tuple[str, ...]] = {
    "body": ("body",),
    "hand": ("left_hand", "right_hand"),
    "face": ("face",),
    "mouth": ("mouth",),
}
DEFAULT_GROUPS = ("body", "hand")  # the SEDS 49: 7 body + 21 + 21


def _chain(points: list[int]) -> list[tuple[int, int]]:
    return list(zip(points[:-1], points[1:]))


def _hand_links(root: int) -> list[tuple[int, int]]:
    links = []
    for f in range(5):
        base = root + 1 + 4 * f
        links += _chain([root, base, base + 1, base + 2, base + 3])
    return links


# mmpose's coco_wholebody skeleton (65 links: body 19, feet 6, each hand 20), by index.
BODY_LINKS = [
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
]
FOOT_LINKS = [(15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22)]
LEFT_HAND_LINKS = _hand_links(LEFT_HAND.start)
RIGHT_HAND_LINKS = _hand_links(RIGHT_HAND.start)
SKELETON_LINKS = BODY_LINKS + FOOT_LINKS + LEFT_HAND_LINKS + RIGHT_HAND_LINKS


def _face_links() -> list[tuple[int, int]]:
    f = FACE.start
    jaw = _chain(list(range(f, f + 17)))
    brows = _chain(list(range(f + 17, f + 22))) + _chain(list(range(f + 22, f + 27)))
    nose = _chain(list(range(f + 27, f + 31))) + _chain(list(range(f + 31, f + 36)))
    eyes = _chain(list(range(f + 36, f + 42)) + [f + 36]) + _chain(list(range(f + 42, f + 48)) + [f + 42])
    return jaw + brows + nose + eyes


# Drawing-only links (not in mmpose's skeleton): face contours (iBUG 68) and lips, and the wrist of the
# body to the root of its hand, so a figure of the SEDS selection reads as one connected person.
FACE_LINKS = _face_links()
MOUTH_LINKS = _chain(list(range(MOUTH.start, MOUTH.start + 12)) + [MOUTH.start]) + _chain(
    list(range(MOUTH.start + 12, MOUTH.start + 20)) + [MOUTH.start + 12]
)
WRIST_LINKS = [(9, LEFT_HAND.start), (10, RIGHT_HAND.start)]


class SelectionError(UserError, ValueError):
    """A list of part groups that does not make a selection (unknown, repeated or overlapping)."""


@dataclass(frozen=True)
class Selection:
    """Which of the 133 points a selection keeps, in column order, and which columns each part holds."""

    parts: tuple[str, ...]  # expanded part names in canonical order, e.g. body, left_hand, right_hand
    indices: np.ndarray  # (K,) COCO-WholeBody indices, column order
    spans: dict[str, tuple[int, int]]  # part -> [start, stop) columns

    @property
    def size(self) -> int:
        return len(self.indices)

    def columns(self, part: str) -> slice:
        start, stop = self.spans[part]
        return slice(start, stop)

    def part_of_column(self) -> list[str]:
        out = []
        for part in self.parts:
            start, stop = self.spans[part]
            out += [part] * (stop - start)
        return out

    def links(self, extra: bool = True) -> list[tuple[int, int, str]]:
        """Skeleton links among the selected points, as (column, column, part of the link).
        `extra` adds the drawing-only links (face contours, lips, wrist to hand root)."""
        candidates = [(a, b) for a, b in SKELETON_LINKS]
        if extra:
            candidates += FACE_LINKS + MOUTH_LINKS + WRIST_LINKS
        position = {int(i): c for c, i in enumerate(self.indices)}
        part_at = self.part_of_column()
        out = []
        for a, b in candidates:
            if a in position and b in position:
                ca, cb = position[a], position[b]
                out.append((ca, cb, part_at[cb]))  # a wrist-root link takes the hand's colour
        return out


def selection(groups: list[str] | tuple[str, ...] = DEFAULT_GROUPS) -> Selection:
    """The selection for part groups (`body`, `hand`, `face`, `mouth`), always in the canonical order
    body, left hand, right hand, face, mouth."""
    if not groups:
        raise SelectionError("no part groups: ask for at least one of " + ", ".join(GROUPS))
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        raise SelectionError(f"unknown part group(s) {unknown}; groups: {', '.join(GROUPS)}")
    if len(set(groups)) != len(groups):
        raise SelectionError(f"part groups {list(groups)} name a group twice")
    wanted = {part for g in groups for part in GROUPS[g]}
    parts = tuple(p for p in PART_ORDER if p in wanted)
    indices, spans, start = [], {}, 0
    for part in parts:
        indices += PART_INDICES[part]
        spans[part] = (start, start + len(PART_INDICES[part]))
        start += len(PART_INDICES[part])
    return Selection(parts, np.asarray(indices, dtype=np.int64), spans)


def selection_of_parts(parts: list[str] | tuple[str, ...]) -> Selection:
    """The selection whose expanded part names are `parts` (as a select item's attrs record them)."""
    groups = [g for g, members in GROUPS.items() if set(members) <= set(parts)]
    chosen = selection(groups)
    if chosen.parts != tuple(parts):
        raise SelectionError(f"parts {list(parts)} are not a selection of whole groups ({', '.join(GROUPS)})")
    return chosen
