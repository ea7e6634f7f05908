"""Named normalisations of selected keypoints: `none`, `seds` (the SEDS authors' loader) and `center`.

`seds` reproduces the published SEDS loader (github.com/longtaojiang/SEDS, dataloaders/
dataloader_H2_retrieval_pose.py: crop_hand, elbow_hand, get_kp2ds, GetTotalFrameList, inherited from
CiCo) rule by rule; each rule below is one small function over all frames of a clip at once and says
which case it handles. The authors' keypoints live in a fixed frame (256 x 256 for How2Sign and
PHOENIX-2014T, 512 x 512 for CSL-Daily: their `original_size` flags), so ours, in original pixels, are
first scaled into that frame (`SedsRules.frame`) and every rule runs there, with its pixel margins.

Where the authors' code would crash (a zero-size hand box: an assertion), the box counts as not found.
Nothing is dropped or zeroed silently: every output joint has a mask bit (1 = a confident joint whose
value is a real location) and every dropped frame is counted by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.keypoints.layout import LEFT_ARM, LEFT_HAND, RIGHT_ARM, RIGHT_HAND, Selection
from pipeline.keypoints.select import check_wholebody, select_points
from pipeline.store.records import ItemFailed

NORMALISATIONS = ("none", "seds", "center")

# Hand-box sources recorded per frame.
BOX_NONE, BOX_JOINTS, BOX_ARM = 0, 1, 2


@dataclass(frozen=True)
class SedsRules:
    """The constants of the authors' loader. `frame`, `crop`, `box_score` and `joint_score` are their
    command-line flags (original_size_w/h, crop_size, frames_threshold, threshold: the values of their
    scripts are the defaults); the rest are literals in their code."""

    frame: tuple[int, int] | None = (256, 256)  # (width, height) px of their keypoint frame; None: the clip's own
    crop: int = 256  # output frame, px (body and each hand box map onto crop x crop)
    box_score: float = 0.1  # a hand joint counts for the hand's extent when its score is above this
    joint_score: float = 0.4  # a hand joint with score <= this is zeroed
    min_hand_joints: int = 10  # fewer confident joints than this: box from the arm instead
    box_factor: float = 2.2  # joint box side = 2.2 x the larger extent of the confident joints
    arm_score: float = 0.5  # the arm fallback needs shoulder, elbow and wrist scores all >= this
    wrist_ratio: float = 0.33  # the hand centre lies 0.33 x (wrist - elbow) beyond the wrist
    arm_width: float = 1.1  # arm box side = 1.1 x max(|wrist - elbow|, 0.9 x |elbow - shoulder|)
    upper_arm: float = 0.9
    # No arm box when the wrist is within this many px of the frame's bottom: 50 in the How2Sign and
    # CSL-Daily loaders (dataloader_csl_retrieval_pose.py:505, :530); None: no such condition, as in
    # PHOENIX-2014T's (dataloader_ph_retrieval_pose.py:501, :526).
    bottom_margin: float | None = 50.0


@dataclass
class Normalised:
    """A clip's selected keypoints after a normalisation: only the kept frames."""

    keypoints: np.ndarray  # (T', K, 2) float32, units as the normalisation says
    mask: np.ndarray  # (T', K) uint8, 1 = confident joint with a real location
    kept: np.ndarray  # (T,) bool, which input frames were kept
    box_sources: dict[str, np.ndarray]  # hand part -> (T,) BOX_* per input frame (seds only)


# ---------------------------------------------------------------------------------------------
# The SEDS rules, each over all T frames of a clip.


def to_frame(xy: np.ndarray, size_wh: tuple[float, float], frame_wh: tuple[float, float]) -> np.ndarray:
    """Case: keypoints in original pixels of a (W, H) clip, rules that expect the authors' frame.
    Scales x by frame_w / W and y by frame_h / H (the frames they ran the pose model on were resized)."""
    return xy * (np.asarray(frame_wh, np.float64) / np.asarray(size_wh, np.float64))


def scale_to_crop(xy: np.ndarray, frame_wh: tuple[float, float], crop: float) -> np.ndarray:
    """Case: body (and, our extension, face) points: x, y / frame size x crop, i.e. onto a crop x crop frame."""
    return xy / np.asarray(frame_wh, np.float64) * crop


def zeroed_joints(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Case: low-confidence joints the authors set to (0, 0). Their get_kp2ds keeps score > threshold and
    zeroes score < threshold after clearing the rest to 0, so: score <= threshold is zeroed when
    threshold > 0, and nothing is zeroed when threshold is 0 (their body call)."""
    if threshold <= 0:
        return np.zeros(scores.shape, dtype=bool)
    return scores <= threshold


def _centre_span(mid: np.ndarray, side: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of a span of `side` px centred on `mid`, pushed back inside [0, size - 1]."""
    start = np.round(np.maximum(0.0, mid - side / 2))
    end = start + side
    overshoot = np.maximum(end - (size - 1), 0.0)
    return start - overshoot, end - overshoot


def hand_box_from_joints(
    hand_xy: np.ndarray, hand_scores: np.ndarray, frame_wh: tuple[float, float], rules: SedsRules
) -> tuple[np.ndarray, np.ndarray]:
    """Case: a hand with at least `min_hand_joints` joints scoring above `box_score`.
    A square box of side round(2.2 x the larger extent of those joints) centred on them, shifted inside
    the frame; a box as large as the frame's short side becomes that side, spanning the short axis.
    Returns (T, 4) boxes [x0, y0, x1, y1] (frame px, integral) and (T,) validity."""
    usz, vsz = float(frame_wh[0]), float(frame_wh[1])
    minsz = min(usz, vsz)
    visible = hand_scores > rules.box_score
    count = visible.sum(axis=1)
    enough = count >= rules.min_hand_joints
    x, y = hand_xy[..., 0].astype(np.float64), hand_xy[..., 1].astype(np.float64)
    umin, umax = np.where(visible, x, np.inf).min(axis=1), np.where(visible, x, -np.inf).max(axis=1)
    vmin, vmax = np.where(visible, y, np.inf).min(axis=1), np.where(visible, y, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore"):  # frames with no visible joint give inf - inf; `enough` drops them
        side = np.round(rules.box_factor * np.maximum(umax - umin, vmax - vmin))
        umid = umin + (umax - umin) / 2
        vmid = vmin + (vmax - vmin) / 2
        small = side < minsz - 1
        side = np.where(small, side, minsz - 1)
        us, ue = _centre_span(umid, side, usz)
        vs, ve = _centre_span(vmid, side, vsz)
    if usz != minsz:  # a large box in a wide frame spans the full height, centred in x
        vs, ve = np.where(small, vs, 0.0), np.where(small, ve, vsz - 1)
    if vsz != minsz:  # a large box in a tall frame spans the full width, centred in y
        us, ue = np.where(small, us, 0.0), np.where(small, ue, usz - 1)
    boxes = np.stack([us, vs, ue, ve], axis=1)
    valid = enough & (side > 0)  # a zero-size box (all joints on one point) is no box
    return np.where(valid[:, None], boxes, np.nan), valid


def hand_box_from_arm(
    arm_xy: np.ndarray, arm_scores: np.ndarray, frame_wh: tuple[float, float], rules: SedsRules
) -> tuple[np.ndarray, np.ndarray]:
    """Case: too few confident hand joints, but a confident arm (shoulder, elbow, wrist all scoring
    >= 0.5, wrist more than `bottom_margin` px above the frame's bottom where the rules have one). A
    square box centred 0.33 x (wrist - elbow)
    beyond the wrist, side 1.1 x max(|wrist - elbow|, 0.9 x |elbow - shoulder|), its corner clamped to
    >= 0 and its side cut to stay in the frame, then truncated to whole pixels.
    `arm_xy` is (T, 3, 2) shoulder, elbow, wrist. Returns (T, 4) boxes and (T,) validity."""
    usz, vsz = float(frame_wh[0]), float(frame_wh[1])
    shoulder, elbow, wrist = arm_xy[:, 0], arm_xy[:, 1], arm_xy[:, 2]
    usable = np.all(arm_scores >= rules.arm_score, axis=1)
    if rules.bottom_margin is not None:
        usable &= wrist[:, 1] < vsz - rules.bottom_margin
    centre = wrist + rules.wrist_ratio * (wrist - elbow)
    forearm = np.linalg.norm(wrist - elbow, axis=1)
    upper = np.linalg.norm(elbow - shoulder, axis=1)
    side = rules.arm_width * np.maximum(forearm, rules.upper_arm * upper)
    x = np.maximum(centre[:, 0] - side / 2, 0.0)
    y = np.maximum(centre[:, 1] - side / 2, 0.0)
    side = np.minimum(np.where(x + side > usz, usz - x, side), np.where(y + side > vsz, vsz - y, side))
    x, y, side = np.trunc(x), np.trunc(y), np.trunc(side)
    boxes = np.stack([x, y, x + side, y + side], axis=1)
    valid = usable & (side > 0)  # a box cut to nothing at the frame's edge is no box
    return np.where(valid[:, None], boxes, np.nan), valid


def hand_boxes(
    keypoints: np.ndarray,
    scores: np.ndarray,
    hand: range,
    arm: tuple[int, int, int],
    frame_wh: tuple[float, float],
    rules: SedsRules,
) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the joint box when the hand has enough confident joints, else the arm box.
    `keypoints` (T, 133, 2) in the rules' frame. Returns (T, 4) boxes (NaN: none) and (T,) BOX_* source."""
    hand_xy, hand_scores = keypoints[:, hand.start : hand.stop], scores[:, hand.start : hand.stop]
    from_joints, joints_ok = hand_box_from_joints(hand_xy, hand_scores, frame_wh, rules)
    from_arm, arm_ok = hand_box_from_arm(keypoints[:, list(arm)], scores[:, list(arm)], frame_wh, rules)
    enough = (hand_scores > rules.box_score).sum(axis=1) >= rules.min_hand_joints
    use_arm = ~enough & arm_ok
    boxes = np.where(enough[:, None], from_joints, np.where(use_arm[:, None], from_arm, np.nan))
    source = np.where(enough & joints_ok, BOX_JOINTS, np.where(use_arm, BOX_ARM, BOX_NONE)).astype(np.int8)
    return boxes, source


def into_box(xy: np.ndarray, boxes: np.ndarray, crop: float) -> tuple[np.ndarray, np.ndarray]:
    """Case: hand joints of frames that have a box. (xy - box origin) / box size x crop; coordinates
    that come out <= 0 become 0 (the authors' clip). `xy` (T, J, 2), `boxes` (T, 4).
    Returns the coordinates and (T, J) `clipped` (some coordinate replaced by 0)."""
    origin = boxes[:, None, 0:2]
    size = boxes[:, None, 2:4] - boxes[:, None, 0:2]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (xy - origin) / size * crop
    positive = out > 0
    return np.where(positive, out, 0.0), ~np.all(positive, axis=-1)


def mirror_left(xy: np.ndarray, crop: float) -> tuple[np.ndarray, np.ndarray]:
    """Case: the left hand, so both hands look like right hands. x -> crop - x; then any coordinate
    >= crop - 1 (255 for their 256) becomes 0, as in their loader. Returns coordinates and (T, J) clipped."""
    out = xy.copy()
    out[..., 0] = crop - out[..., 0]
    inside = out < crop - 1
    return np.where(inside, out, 0.0), ~np.all(inside, axis=-1)


def seds_normalise(
    keypoints: np.ndarray,
    scores: np.ndarray,
    chosen: Selection,
    size_wh: tuple[float, float],
    rules: SedsRules = SedsRules(),
    min_score: float | None = None,
) -> Normalised:
    """The authors' loader on one clip: (T, 133, 2) px keypoints of a (W, H) clip -> the selection's points,
    body (and face) on a crop x crop frame, each hand in its own box mapped to crop x crop (left mirrored),
    hand joints scoring <= joint_score zeroed, frames where neither hand has a box dropped.
    Mask: score > min_score (default: joint_score), and for hands a box in that frame and no clipping."""
    min_score = rules.joint_score if min_score is None else min_score
    frame_wh = tuple(rules.frame) if rules.frame is not None else tuple(size_wh)
    xy = to_frame(keypoints.astype(np.float64), size_wh, frame_wh)
    out = np.zeros((len(xy), chosen.size, 2), np.float64)
    mask = scores[:, chosen.indices] > min_score
    sources: dict[str, np.ndarray] = {}
    any_box = np.zeros(len(xy), dtype=bool)
    for part, hand, arm in (("left_hand", LEFT_HAND, LEFT_ARM), ("right_hand", RIGHT_HAND, RIGHT_ARM)):
        boxes, source = hand_boxes(xy, scores, hand, arm, frame_wh, rules)
        found = source != BOX_NONE
        any_box |= found
        sources[part] = source
        if part not in chosen.parts:
            continue
        cols = chosen.columns(part)
        values, clipped = into_box(xy[:, hand.start : hand.stop], boxes, rules.crop)
        if part == "left_hand":
            values, clipped_mirror = mirror_left(values, rules.crop)
            clipped |= clipped_mirror
        zeroed = zeroed_joints(scores[:, hand.start : hand.stop], rules.joint_score)
        keep = found[:, None] & ~zeroed
        out[:, cols] = np.where(keep[..., None], values, 0.0)
        mask[:, cols] &= keep & ~clipped
    for part in ("body", "face", "mouth"):
        if part in chosen.parts:
            cols = chosen.columns(part)
            out[:, cols] = scale_to_crop(xy[:, chosen.indices[cols]], frame_wh, rules.crop)
    return Normalised(out[any_box].astype(np.float32), mask[any_box].astype(np.uint8), any_box, sources)


# ---------------------------------------------------------------------------------------------
# The other normalisations.


def no_normalise(keypoints: np.ndarray, scores: np.ndarray, chosen: Selection, min_score: float) -> Normalised:
    """Pixels as the pose stage gave them; mask: score > min_score; every frame kept."""
    xy, selected_scores = select_points(keypoints, scores, chosen)
    return Normalised(
        xy.astype(np.float32), (selected_scores > min_score).astype(np.uint8), np.ones(len(keypoints), dtype=bool), {}
    )


def shoulder_frame(keypoints: np.ndarray, scores: np.ndarray, min_score: float) -> tuple[np.ndarray, float]:
    """The clip's shoulder centre (2,) px and shoulder width px: medians over the frames where both
    shoulders score above min_score (one robust frame per clip, so joint jitter does not move the origin)."""
    left, right = keypoints[:, 5].astype(np.float64), keypoints[:, 6].astype(np.float64)
    both = (scores[:, 5] > min_score) & (scores[:, 6] > min_score)
    if not both.any():
        raise ItemFailed(
            "no_shoulders",
            f"no frame of {len(keypoints)} has both shoulders scoring above "
            f"select.min_score = {min_score}; `center` needs them",
        )
    centre = np.median((left[both] + right[both]) / 2, axis=0)
    width = float(np.median(np.linalg.norm(left[both] - right[both], axis=1)))
    if width <= 0:
        raise ItemFailed("no_shoulders", "the shoulders coincide (zero shoulder width); `center` cannot scale")
    return centre, width


def center_normalise(keypoints: np.ndarray, scores: np.ndarray, chosen: Selection, min_score: float) -> Normalised:
    """Shoulder-centred, shoulder-width-scaled coordinates (units: shoulder widths), one centre and
    width per clip; mask: score > min_score; every frame kept."""
    centre, width = shoulder_frame(keypoints, scores, min_score)
    xy, selected_scores = select_points(keypoints, scores, chosen)
    return Normalised(
        ((xy.astype(np.float64) - centre) / width).astype(np.float32),
        (selected_scores > min_score).astype(np.uint8),
        np.ones(len(keypoints), dtype=bool),
        {},
    )


def normalise(
    name: str,
    keypoints: np.ndarray,
    scores: np.ndarray,
    chosen: Selection,
    size_wh: tuple[float, float],
    min_score: float,
    rules: SedsRules,
) -> Normalised:
    """Dispatch by name. `keypoints` (T, 133, 2) px of a clip of size (W, H), `scores` (T, 133)."""
    check_wholebody(keypoints, scores)
    if name == "none":
        return no_normalise(keypoints, scores, chosen, min_score)
    if name == "center":
        return center_normalise(keypoints, scores, chosen, min_score)
    if name == "seds":
        return seds_normalise(keypoints, scores, chosen, size_wh, rules, min_score)
    raise ValueError(f"unknown normalisation {name!r}; expected one of {NORMALISATIONS}")
