"""`.pose` files (the sign-language-processing `pose-format` package): our keypoints out, theirs in.

Out: a clip's pose / gt_keypoints item (133 COCO-WholeBody points) or select item (the selection's
points), one component per part with the point names and skeleton links of
pipeline/keypoints/layout.py, format XYC (x, y in the item's units, C = score), one person. A `.pose`
body is a regular time series at `fps`, while our items hold sampled clip frames, so frame i of the
file is clip frame i: the sampled frames carry their values and the frames between them are empty
(confidence 0, which pose-format reads as masked). Values are float32, as stored, bit for bit.

In: any `.pose` file, read to arrays (`read_pose`), and mapped onto the 133-point layout where the
points exist (`to_wholebody`) if its components follow one of LAYOUTS: COCO-WholeBody 133 (ours,
pose-format's, AlphaPose's) one to one; OpenPose BODY_25 + face 70 + hands gives all 133 but the
pupils, Neck and MidHip (its first 68 face points are the iBUG 68, its hands use COCO-WholeBody's
order); MediaPipe Holistic gives the body points it names and both hands (its face mesh has no iBUG
points). Points a file lacks get score 0; a file of any other layout is refused naming its components.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.errors import UserError
from pipeline.keypoints.layout import (
    FACE,
    FACE_LINKS,
    KEYPOINT_NAMES,
    LEFT_HAND,
    MOUTH_LINKS,
    NUM_KEYPOINTS,
    RIGHT_HAND,
    SKELETON_LINKS,
    Selection,
)

# The 133 points as components: (name, COCO-WholeBody indices).
WHOLEBODY_COMPONENTS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("BODY", tuple(range(0, 17))),
    ("FEET", tuple(range(17, 23))),
    ("FACE", tuple(FACE)),
    ("LEFT_HAND", tuple(LEFT_HAND)),
    ("RIGHT_HAND", tuple(RIGHT_HAND)),
)
_ALL_LINKS = SKELETON_LINKS + FACE_LINKS + MOUTH_LINKS
_COLOR = (255, 255, 255)


class PoseFileError(UserError, ValueError):
    """A .pose file that cannot be read or mapped; the message names the file."""


def _component(name: str, indices: tuple[int, ...]):
    from pose_format.pose_header import PoseHeaderComponent

    position = {index: i for i, index in enumerate(indices)}
    limbs = [(position[a], position[b]) for a, b in _ALL_LINKS if a in position and b in position]
    return PoseHeaderComponent(name, [KEYPOINT_NAMES[i] for i in indices], limbs, [_COLOR], "XYC")


def components_of(num_points: int, chosen: Selection | None) -> list[tuple[str, tuple[int, ...]]]:
    """Components of a 133-point item (chosen None) or of a selection's columns."""
    if chosen is None:
        if num_points != NUM_KEYPOINTS:
            raise PoseFileError(
                f"{num_points} points is not the {NUM_KEYPOINTS}-point layout and no selection was given"
            )
        return list(WHOLEBODY_COMPONENTS)
    if num_points != chosen.size:
        raise PoseFileError(f"{num_points} points do not match the selection {chosen.parts} ({chosen.size} points)")
    return [(part.upper(), tuple(int(i) for i in chosen.indices[chosen.columns(part)])) for part in chosen.parts]


def to_pose(
    keypoints: np.ndarray,
    scores: np.ndarray,
    frames: np.ndarray,
    fps: float,
    width: int,
    height: int,
    chosen: Selection | None = None,
):
    """A pose_format Pose of one clip: frame i is clip frame i (unsampled frames empty, see module doc)."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import PoseHeader, PoseHeaderDimensions

    comps = components_of(keypoints.shape[1], chosen)
    total = int(frames.max()) + 1 if len(frames) else 0
    data = np.zeros((total, 1, keypoints.shape[1], 2), dtype=np.float32)
    confidence = np.zeros((total, 1, keypoints.shape[1]), dtype=np.float32)
    data[frames, 0] = keypoints.astype(np.float32)
    confidence[frames, 0] = scores.astype(np.float32)
    header = PoseHeader(
        0.1, PoseHeaderDimensions(int(width), int(height), 0), [_component(name, idx) for name, idx in comps]
    )
    return Pose(header, NumPyPoseBody(float(fps), data, confidence))


def write_pose(path: Path, pose) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "wb") as f:
        pose.write(f)
    tmp.replace(path)


@dataclass
class PoseFile:
    """A .pose file as arrays: one person, points of all components in header order."""

    fps: float
    width: int
    height: int
    components: list[tuple[str, list[str]]]  # (component name, point names)
    keypoints: np.ndarray  # (T, K, D) float32, D = 2 or 3 (x, y[, z])
    confidence: np.ndarray  # (T, K) float32; 0 where the file has no value
    path: Path | None = None


def read_pose(path: Path, person: int = 0) -> PoseFile:
    from pose_format import Pose

    try:
        pose = Pose.read(Path(path).read_bytes())
    except Exception as err:  # pose-format raises bare struct/ValueErrors for a bad file
        raise PoseFileError(f"{path}: not a readable .pose file ({type(err).__name__}: {err})") from None
    data, confidence = pose.body.data, pose.body.confidence
    if not 0 <= person < data.shape[1]:
        raise PoseFileError(f"{path}: person {person} does not exist (the file holds {data.shape[1]})")
    values = np.ma.getdata(data)[:, person].astype(np.float32)
    conf = np.asarray(confidence[:, person], dtype=np.float32)
    return PoseFile(
        float(pose.body.fps),
        int(pose.header.dimensions.width),
        int(pose.header.dimensions.height),
        [(c.name, list(c.points)) for c in pose.header.components],
        values,
        conf,
        Path(path),
    )


class PoseLayoutError(PoseFileError):
    """A readable .pose file whose components are none of the layouts in LAYOUTS; the message names them."""


# How one component's points map onto the 133: a table by point name, or a run (first index, count):
# point j of the component is COCO-WholeBody point first + j, for j < count.
Rule = dict[str, int] | tuple[int, int]


@dataclass(frozen=True)
class PoseLayout:
    """A family of .pose files whose points map onto the 133 COCO-WholeBody points.

    `exact`: the file's components are exactly `rules`' components, in that order, with the runs' counts
    (a one-to-one layout); otherwise it must have the `required` components, `sizes` fixes the point
    count of those that have one, and other components are ignored."""

    name: str
    rules: dict[str, Rule]
    required: tuple[str, ...]
    sizes: dict[str, int]
    exact: bool = False

    @classmethod
    def one_to_one(cls, name: str, components: tuple[tuple[str, int], ...]) -> "PoseLayout":
        rules, start = {}, 0
        for component, count in components:
            rules[component] = (start, count)
            start += count
        assert start == NUM_KEYPOINTS, components
        return cls(name, rules, tuple(rules), dict(components), exact=True)

    def accepts(self, components: list[tuple[str, list[str]]]) -> bool:
        counts = {name: len(points) for name, points in components}
        if self.exact and [name for name, _ in components] != list(self.rules):
            return False
        return all(name in counts for name in self.required) and all(
            counts[name] == size for name, size in self.sizes.items() if name in counts
        )

    def describe(self) -> str:
        parts = [f"{name} {self.sizes[name]}" if name in self.sizes else name for name in self.required]
        optional = [f"{name} {self.sizes[name]}" for name in self.rules if name not in self.required]
        return " + ".join(parts) + (f" (+ {', '.join(optional)})" if optional else "")


_OPENPOSE_BODY = {
    "Nose": 0,
    "LEye": 1,
    "REye": 2,
    "LEar": 3,
    "REar": 4,
    "LShoulder": 5,
    "RShoulder": 6,
    "LElbow": 7,
    "RElbow": 8,
    "LWrist": 9,
    "RWrist": 10,
    "LHip": 11,
    "RHip": 12,
    "LKnee": 13,
    "RKnee": 14,
    "LAnkle": 15,
    "RAnkle": 16,
    "LBigToe": 17,
    "LSmallToe": 18,
    "LHeel": 19,
    "RBigToe": 20,
    "RSmallToe": 21,
    "RHeel": 22,
}
_MEDIAPIPE_BODY = {
    "NOSE": 0,
    "LEFT_EYE": 1,
    "RIGHT_EYE": 2,
    "LEFT_EAR": 3,
    "RIGHT_EAR": 4,
    "LEFT_SHOULDER": 5,
    "RIGHT_SHOULDER": 6,
    "LEFT_ELBOW": 7,
    "RIGHT_ELBOW": 8,
    "LEFT_WRIST": 9,
    "RIGHT_WRIST": 10,
    "LEFT_HIP": 11,
    "RIGHT_HIP": 12,
    "LEFT_KNEE": 13,
    "RIGHT_KNEE": 14,
    "LEFT_ANKLE": 15,
    "RIGHT_ANKLE": 16,
    "LEFT_HEEL": 19,
    "RIGHT_HEEL": 22,
}
_HANDS = {"left": (LEFT_HAND.start, len(LEFT_HAND)), "right": (RIGHT_HAND.start, len(RIGHT_HAND))}

# Every layout `to_wholebody` maps (docs/interop.md has the table). The hands of all three families use
# COCO-WholeBody's point order (wrist, then thumb, index, middle, ring and little finger, base to tip).
LAYOUTS: tuple[PoseLayout, ...] = (
    # seds export pose
    PoseLayout.one_to_one(
        "coco_wholebody", (("BODY", 17), ("FEET", 6), ("FACE", 68), ("LEFT_HAND", 21), ("RIGHT_HAND", 21))
    ),
    # pose-format's COCO-WholeBody header (its mmpose estimator) and its AlphaPose 133 reader
    PoseLayout.one_to_one("coco_wholebody", (("BODY", 23), ("FACE", 68), ("LEFT_HAND", 21), ("RIGHT_HAND", 21))),
    PoseLayout.one_to_one(
        "coco_wholebody", (("BODY_133", 23), ("FACE_133", 68), ("LEFT_HAND_133", 21), ("RIGHT_HAND_133", 21))
    ),
    # OpenPose BODY_25 (by point name; Neck and MidHip have no counterpart), face 70 (its first 68 are the
    # iBUG 68 of COCO-WholeBody's face; the two pupils have none), hands 21
    PoseLayout(
        "openpose",
        {
            "pose_keypoints_2d": _OPENPOSE_BODY,
            "face_keypoints_2d": (FACE.start, len(FACE)),
            "hand_left_keypoints_2d": _HANDS["left"],
            "hand_right_keypoints_2d": _HANDS["right"],
        },
        ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d"),
        {"face_keypoints_2d": 70, "hand_left_keypoints_2d": 21, "hand_right_keypoints_2d": 21},
    ),
    # MediaPipe Holistic (full or reduced): the pose landmarks by name, both hands; its face mesh has
    # no iBUG points and its world landmarks are in metres, so both are left out
    PoseLayout(
        "mediapipe_holistic",
        {
            "POSE_LANDMARKS": _MEDIAPIPE_BODY,
            "LEFT_HAND_LANDMARKS": _HANDS["left"],
            "RIGHT_HAND_LANDMARKS": _HANDS["right"],
        },
        ("POSE_LANDMARKS", "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS"),
        {"LEFT_HAND_LANDMARKS": 21, "RIGHT_HAND_LANDMARKS": 21},
    ),
)


def layout_of(pose: PoseFile) -> PoseLayout:
    """The layout a file's components follow; PoseLayoutError naming what it holds otherwise."""
    for layout in LAYOUTS:
        if layout.accepts(pose.components):
            return layout
    held = ", ".join(f"{name} ({len(points)} points)" for name, points in pose.components) or "no components"
    known = "; ".join(f"{layout.name}: {layout.describe()}" for layout in LAYOUTS)
    raise PoseLayoutError(
        f"{pose.path or 'the .pose file'}: holds {held}, which is no layout seds maps onto its "
        f"keypoints (known: {known})"
    )


@dataclass
class Wholebody:
    """A .pose file in the pose stage's layout."""

    layout: str
    keypoints: np.ndarray  # (T, 133, 2) float32 pixels
    scores: np.ndarray  # (T, 133) float32, 0 for points the file lacks
    frames: np.ndarray  # (T,) int64 file frame indices
    mapped: np.ndarray  # (133,) bool: points the file provides


def to_wholebody(pose: PoseFile) -> Wholebody:
    """Map a PoseFile's points onto the 133 COCO-WholeBody points by its layout (see LAYOUTS)."""
    layout = layout_of(pose)
    total = len(pose.keypoints)
    keypoints = np.zeros((total, NUM_KEYPOINTS, 2), dtype=np.float32)
    scores = np.zeros((total, NUM_KEYPOINTS), dtype=np.float32)
    mapped = np.zeros(NUM_KEYPOINTS, dtype=bool)
    column = 0
    for name, points in pose.components:
        rule = layout.rules.get(name)
        for j, point in enumerate(points):
            if isinstance(rule, dict):
                target = rule.get(point)
            elif rule is not None and j < rule[1]:
                target = rule[0] + j
            else:
                target = None
            if target is not None:
                keypoints[:, target] = pose.keypoints[:, column + j, :2]
                scores[:, target] = pose.confidence[:, column + j]
                mapped[target] = True
        column += len(points)
    return Wholebody(layout.name, keypoints, scores, np.arange(total, dtype=np.int64), mapped)
