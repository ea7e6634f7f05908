"""Each rule of the `seds` normalisation on hand-computed cases, the whole rule set against a
frame-by-frame restatement of the authors' loader, and the `none` / `center` normalisations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.keypoints.layout import LEFT_HAND, RIGHT_HAND, selection
from pipeline.keypoints.normalise import (
    BOX_ARM,
    BOX_JOINTS,
    BOX_NONE,
    SedsRules,
    center_normalise,
    hand_box_from_arm,
    hand_box_from_joints,
    hand_boxes,
    into_box,
    mirror_left,
    no_normalise,
    normalise,
    scale_to_crop,
    seds_normalise,
    to_frame,
    zeroed_joints,
)
from pipeline.keypoints.seds_reference import reference_loader
from pipeline.store.records import ItemFailed

RULES = SedsRules()  # the authors' values: 256 frame and crop, box score 0.1, joint score 0.4
SQUARE = (256, 256)


def hand(xs, ys, score=1.0) -> tuple[np.ndarray, np.ndarray]:
    """One frame of one hand: 21 joints spread over the given x and y ranges (linspace), all scoring `score`."""
    xy = np.stack([np.linspace(*xs, 21), np.linspace(*ys, 21)], axis=1)[None]
    return xy, np.full((1, 21), score)


# --- frame and body ----------------------------------------------------------------------------


def test_to_frame_scales_each_axis_into_the_authors_frame():
    xy = np.array([[[80.0, 60.0], [160.0, 0.0]]])  # a 160x120 clip
    assert to_frame(xy, (160, 120), (256, 256)).tolist() == [[[128.0, 128.0], [256.0, 0.0]]]


def test_body_is_scaled_onto_the_crop_frame():
    xy = np.array([[[128.0, 64.0]]])
    assert scale_to_crop(xy, (256, 256), 256).tolist() == [[[128.0, 64.0]]]  # How2Sign: their frame is the crop
    assert scale_to_crop(xy, (512, 512), 256).tolist() == [[[64.0, 32.0]]]  # CSL-Daily: 512 frame halves


def test_zeroed_joints_follow_get_kp2ds():
    scores = np.array([0.39, 0.4, 0.41, 0.0])
    assert zeroed_joints(scores, 0.4).tolist() == [True, True, False, True]  # score <= threshold
    assert zeroed_joints(scores, 0.0).tolist() == [False] * 4  # their body call zeroes nothing


# --- the hand box from the hand's own joints ---------------------------------------------------


def test_joint_box_is_2_2_times_the_extent_centred_on_the_joints():
    xy, sc = hand((100, 120), (50, 60))  # extent 20 x 10 -> side round(2.2 * 20) = 44
    boxes, ok = hand_box_from_joints(xy, sc, SQUARE, RULES)
    assert ok.tolist() == [True] and boxes.tolist() == [[88, 33, 132, 77]]  # centre (110, 55) +- 22


def test_joint_box_rounds_half_to_even_like_python_round():
    xy, sc = hand((100.5, 120.5), (50, 60))  # centre x 110.5: 110.5 - 22 = 88.5 -> 88
    boxes, _ = hand_box_from_joints(xy, sc, SQUARE, RULES)
    assert boxes[0, 0] == 88 and boxes[0, 2] == 132


def test_joint_box_is_pushed_back_inside_the_frame():
    xy, sc = hand((230, 250), (100, 110))  # 218..262 overshoots 255 by 7
    boxes, _ = hand_box_from_joints(xy, sc, SQUARE, RULES)
    assert boxes.tolist() == [[211, 83, 255, 127]]


def test_a_box_larger_than_the_short_side_spans_it():
    xy, sc = hand((100, 250), (100, 110))  # side 330 >= 239 in a 320x240 frame
    boxes, _ = hand_box_from_joints(xy, sc, (320, 240), RULES)
    assert boxes.tolist() == [[56, 0, 295, 239]]  # x: round(175 - 119.5) = 56 (half to even), full height
    boxes, _ = hand_box_from_joints(xy[..., ::-1].copy(), sc, (240, 320), RULES)
    assert boxes.tolist() == [[0, 56, 239, 295]]  # a tall frame: full width, centred in y


def test_joint_box_needs_ten_joints_above_the_box_score():
    xy, sc = hand((100, 120), (50, 60))
    sc[0, :12] = 0.1  # 9 joints above 0.1: too few
    assert hand_box_from_joints(xy, sc, SQUARE, RULES)[1].tolist() == [False]
    sc[0, 11] = 0.11  # 10 joints: enough
    assert hand_box_from_joints(xy, sc, SQUARE, RULES)[1].tolist() == [True]


def test_joints_on_one_point_give_no_box():
    xy, sc = hand((100, 100), (50, 50))  # zero extent: their loader's assertion fails
    assert hand_box_from_joints(xy, sc, SQUARE, RULES)[1].tolist() == [False]


# --- the hand box from the arm -----------------------------------------------------------------

ARM = np.array([[[100.0, 100.0], [100.0, 140.0], [100.0, 170.0]]])  # shoulder, elbow, wrist


def test_arm_box_lies_beyond_the_wrist():
    boxes, ok = hand_box_from_arm(ARM, np.full((1, 3), 0.9), SQUARE, RULES)
    # centre = wrist + 0.33 (wrist - elbow) = (100, 179.9); side = 1.1 max(30, 0.9 * 40) = 39.6;
    # corner (80.2, 160.1); truncated: (80, 160), side 39
    assert ok.tolist() == [True] and boxes.tolist() == [[80, 160, 119, 199]]


def test_arm_box_is_cut_at_the_frame_edge():
    arm = np.array([[[230.0, 100.0], [240.0, 140.0], [250.0, 170.0]]])
    boxes, _ = hand_box_from_arm(arm, np.full((1, 3), 0.9), SQUARE, RULES)
    side = 1.1 * max(math.hypot(10, 30), 0.9 * math.hypot(10, 40))
    x, y = 250 + 0.33 * 10 - side / 2, 170 + 0.33 * 30 - side / 2
    cut = min(256 - x, side)  # x + side passes 256: side = 256 - x
    assert boxes.tolist() == [[int(x), int(y), int(x) + int(cut), int(y) + int(cut)]] == [[232, 159, 255, 182]]


def test_arm_box_needs_a_confident_arm_and_a_wrist_above_the_bottom_margin():
    assert hand_box_from_arm(ARM, np.array([[0.9, 0.5, 0.9]]), SQUARE, RULES)[1].tolist() == [True]  # >= 0.5
    assert hand_box_from_arm(ARM, np.array([[0.9, 0.49, 0.9]]), SQUARE, RULES)[1].tolist() == [False]
    low = ARM.copy()
    low[0, 2, 1] = 206.0  # wrist y must be < 256 - 50
    assert hand_box_from_arm(low, np.full((1, 3), 0.9), SQUARE, RULES)[1].tolist() == [False]


def test_hand_boxes_prefer_joints_then_the_arm_then_none():
    kp = np.zeros((3, 133, 2))
    sc = np.zeros((3, 133))
    kp[:, [5, 7, 9]] = ARM[0]
    sc[:, [5, 7, 9]] = 0.9
    xy, hs = hand((100, 120), (150, 160))
    kp[0, LEFT_HAND.start : LEFT_HAND.stop], sc[0, LEFT_HAND.start : LEFT_HAND.stop] = xy[0], hs[0]  # frame 0: joints
    sc[2, [5, 7, 9]] = 0.2  # frame 2: no arm
    boxes, source = hand_boxes(kp, sc, LEFT_HAND, (5, 7, 9), SQUARE, RULES)
    assert source.tolist() == [BOX_JOINTS, BOX_ARM, BOX_NONE]
    assert boxes[1].tolist() == [80, 160, 119, 199] and np.isnan(boxes[2]).all()


# --- coordinates in the box --------------------------------------------------------------------


def test_into_box_maps_the_box_onto_the_crop_and_clips_below_zero():
    xy = np.array([[[110.0, 55.0], [80.0, 40.0], [132.0, 99.0]]])
    out, clipped = into_box(xy, np.array([[88.0, 33.0, 132.0, 77.0]]), 256)
    assert out[0, 0].tolist() == [128.0, 128.0]
    assert out[0, 1].tolist() == pytest.approx([0.0, 7 / 44 * 256])  # x left of the box -> 0
    assert out[0, 2].tolist() == pytest.approx([256.0, 66 / 44 * 256])  # right hand: no clip above
    assert clipped.tolist() == [[False, True, False]]


def test_left_hand_is_mirrored_and_clipped_at_255():
    xy = np.array([[[100.0, 50.0], [0.5, 10.0], [100.0, 300.0]]])
    out, clipped = mirror_left(xy, 256)
    assert out.tolist() == [[[156.0, 50.0], [0.0, 10.0], [156.0, 0.0]]]
    assert clipped.tolist() == [[False, True, True]]


# --- the whole rule set ------------------------------------------------------------------------


def _random_clip(rng: np.random.Generator, frames: int, size: tuple[int, int] = SQUARE) -> np.ndarray:
    """(T, 133, 3) keypoints in a frame of `size` (256x256 as drawn, scaled): a person whose hands are
    sometimes well seen, sometimes half seen (arm fallback), sometimes lost; arms sometimes unconfident or
    low in the frame."""
    clip = np.zeros((frames, 133, 3))
    for t in range(frames):
        clip[t, :, :2] = rng.uniform(0, 255, size=(133, 2))
        clip[t, :, 2] = rng.uniform(0, 1, size=133)
        for hand_range in (LEFT_HAND, RIGHT_HAND):
            centre = rng.uniform(10, 245, size=2)
            clip[t, hand_range.start : hand_range.stop, :2] = centre + rng.normal(0, rng.uniform(1, 40), size=(21, 2))
            well_seen, half_seen = rng.uniform(0.3, 1.0, size=21), rng.uniform(0.0, 0.15, size=21)
            clip[t, hand_range.start : hand_range.stop, 2] = [well_seen, half_seen, half_seen / 3][rng.integers(0, 3)]
        clip[t, [5, 6, 7, 8, 9, 10], 2] = rng.choice([0.3, 0.5, 0.9], size=6)
    clip[..., :2] *= np.asarray(size, np.float64) / 256
    return clip


# Each dataset's loader: its keypoint frame and the arm fallback's bottom margin (None: no condition).
LOADERS = {"how2sign": ((256, 256), 50.0), "phoenix2014t": ((210, 260), None), "csl_daily": ((512, 512), 50.0)}


@pytest.mark.parametrize("dataset", sorted(LOADERS))
def test_seds_normalise_matches_the_authors_loader_frame_by_frame(dataset):
    frame, margin = LOADERS[dataset]
    rules = SedsRules(frame=frame, bottom_margin=margin)
    rng = np.random.default_rng(7)
    chosen = selection(["body", "hand"])
    clip = _random_clip(rng, 300, frame)
    kept, expected = reference_loader(clip, float(frame[0]), float(frame[1]), margin)
    result = seds_normalise(clip[..., :2], clip[..., 2], chosen, frame, rules)
    assert 0 < len(kept) < 300, "the random clip should both keep and drop frames"
    assert np.flatnonzero(result.kept).tolist() == kept
    got = result.keypoints.astype(np.float64)
    np.testing.assert_allclose(got[:, chosen.columns("body")], expected["body"], atol=1e-3)
    np.testing.assert_allclose(got[:, chosen.columns("left_hand")], expected["left"], atol=1e-3)
    np.testing.assert_allclose(got[:, chosen.columns("right_hand")], expected["right"], atol=1e-3)
    sources = result.box_sources
    assert {BOX_JOINTS, BOX_ARM, BOX_NONE} <= set(sources["left_hand"].tolist())


def test_seds_normalise_masks_what_it_zeroes_and_drops_handless_frames():
    chosen = selection(["body", "hand"])
    kp = np.zeros((3, 133, 2))
    sc = np.zeros((3, 133))
    kp[:, [5, 7, 9]], sc[:, [5, 7, 9]] = ARM[0] * 2, 0.9  # a 512x512 clip: x2 of the 256 frame
    xy, hs = hand((200, 240), (300, 320))
    kp[0, LEFT_HAND.start : LEFT_HAND.stop], sc[0, LEFT_HAND.start : LEFT_HAND.stop] = xy[0], hs[0]
    sc[0, LEFT_HAND.start + 3] = 0.4  # one low joint in frame 0
    sc[2, [5, 7, 9]] = 0.0  # frame 2: no hand anywhere
    result = seds_normalise(kp, sc, chosen, (512, 512), RULES)
    assert result.kept.tolist() == [True, True, False] and result.keypoints.shape == (2, 49, 2)
    left = result.mask[:, chosen.columns("left_hand")]
    assert left[0].sum() == 20 and left[0, 3] == 0  # the low joint is masked and zeroed
    assert result.keypoints[0, chosen.columns("left_hand")][3].tolist() == [0.0, 0.0]
    assert left[1].sum() == 0  # arm box, but no confident hand joint
    assert result.mask[:, chosen.columns("right_hand")].sum() == 0
    np.testing.assert_allclose(result.keypoints[:, 1], [[100.0, 100.0]] * 2)  # shoulder (200, 200) / 512 * 256


def test_seds_frames_come_from_the_hand_rule_even_without_hands_selected():
    kp = np.zeros((2, 133, 2))
    sc = np.zeros((2, 133))
    kp[0, [5, 7, 9]], sc[0, [5, 7, 9]] = ARM[0], 0.9
    result = seds_normalise(kp, sc, selection(["body"]), SQUARE, RULES)
    assert result.kept.tolist() == [True, False] and result.keypoints.shape == (1, 7, 2)


# --- the other datasets' loaders, on hand-made frames ------------------------------------------
# Expected values worked out by hand from the release's code: PHOENIX-2014T's fixed 210 x 260 frame
# (dataloader_ph_retrieval_pose.py:247) and its arm fallback without the bottom margin (:501, :526);
# CSL-Daily's square --original_size 512 frame (dataloader_csl_retrieval_pose.py:251, scripts/train_csl.sh:14).


def _phoenix_frame_with_a_low_left_wrist() -> tuple[np.ndarray, np.ndarray]:
    """One frame of a 210 x 260 clip: left arm confident, its wrist 20 px above the bottom (inside the
    How2Sign loader's 50 px margin), one left-hand joint above the joint threshold, too few for a joint box."""
    kp, sc = np.zeros((1, 133, 2)), np.zeros((1, 133))
    kp[0, [5, 7, 9]] = [[100, 150], [100, 190], [100, 240]]  # shoulder, elbow, wrist
    sc[0, [5, 7, 9]] = 0.9
    kp[0, LEFT_HAND.start] = [90, 240]
    sc[0, LEFT_HAND.start] = 0.45
    kp[0, 0], sc[0, 0] = [105, 52], 0.9  # the nose
    return kp, sc


def test_phoenix_arm_fallback_has_no_bottom_margin():
    kp, sc = _phoenix_frame_with_a_low_left_wrist()
    phoenix = SedsRules(frame=(210, 260), bottom_margin=None)
    # elbow_hand: centre (100, 240 + 0.33 * 50) = (100, 256.5); width 1.1 * max(50, 0.9 * 40) = 55;
    # corner (72.5, 229); y + 55 > 260, so width = 260 - 229 = 31; int: x 72, y 229, width 31
    boxes, ok = hand_box_from_arm(kp[:, [5, 7, 9]], sc[:, [5, 7, 9]], (210, 260), phoenix)
    assert ok.tolist() == [True] and boxes.tolist() == [[72, 229, 103, 260]]
    assert hand_box_from_arm(kp[:, [5, 7, 9]], sc[:, [5, 7, 9]], (210, 260), RULES)[1].tolist() == [False]  # 240 >= 210
    chosen = selection(["body", "hand"])
    result = seds_normalise(kp, sc, chosen, (210, 260), phoenix)
    # the joint (90, 240) in that box: ((90 - 72) / 31 * 256, (240 - 229) / 31 * 256), then mirrored: 256 - x
    assert result.kept.tolist() == [True]
    assert result.keypoints[0, chosen.columns("left_hand")][0].tolist() == pytest.approx(
        [256 - 18 / 31 * 256, 11 / 31 * 256], abs=1e-4
    )
    # the body on the 256 crop from the 210 x 260 frame: nose (105 / 210 * 256, 52 / 260 * 256)
    assert result.keypoints[0, 0].tolist() == pytest.approx([128.0, 51.2])
    assert seds_normalise(kp, sc, chosen, (210, 260), SedsRules(frame=(210, 260))).kept.tolist() == [False]


def test_phoenix_frame_scales_other_clip_sizes_into_210_by_260():
    kp, sc = _phoenix_frame_with_a_low_left_wrist()
    phoenix = SedsRules(frame=(210, 260), bottom_margin=None)
    chosen = selection(["body", "hand"])
    native = seds_normalise(kp, sc, chosen, (210, 260), phoenix)
    doubled = seds_normalise(kp * 2, sc, chosen, (420, 520), phoenix)  # the same frame at twice the size
    np.testing.assert_allclose(doubled.keypoints, native.keypoints, atol=1e-4)


def test_csl_daily_keypoints_live_in_a_512_frame():
    csl = SedsRules(frame=(512, 512))
    chosen = selection(["body", "hand"])
    kp, sc = np.zeros((1, 133, 2)), np.zeros((1, 133))
    xy, hs = hand((200, 240), (300, 320))  # the right hand, extent 40 x 20 in the 512 frame
    kp[0, RIGHT_HAND.start : RIGHT_HAND.stop], sc[0, RIGHT_HAND.start : RIGHT_HAND.stop] = xy[0], hs[0]
    kp[0, 0], sc[0, 0] = [256, 128], 0.9
    # crop_hand: B = round(2.2 * 40) = 88; centre (220, 310); us = round(220 - 44) = 176, vs = round(310 - 44) = 266
    boxes, ok = hand_box_from_joints(xy, hs, (512, 512), csl)
    assert ok.tolist() == [True] and boxes.tolist() == [[176, 266, 264, 354]]
    result = seds_normalise(kp, sc, chosen, (512, 512), csl)
    right = result.keypoints[0, chosen.columns("right_hand")]
    assert right[10].tolist() == pytest.approx([128.0, 128.0])  # joint 10 sits at the centre (220, 310)
    assert result.keypoints[0, 0].tolist() == pytest.approx([128.0, 64.0])  # (256, 128) / 512 * 256
    # the 50 px margin counts in the 512 frame: a wrist at y 470 (> 462) has no arm box, at 460 it has one
    arm = np.array([[[300.0, 380.0], [300.0, 420.0], [300.0, 470.0]]])
    assert hand_box_from_arm(arm, np.full((1, 3), 0.9), (512, 512), csl)[1].tolist() == [False]
    arm[0, 2, 1] = 460.0
    assert hand_box_from_arm(arm, np.full((1, 3), 0.9), (512, 512), csl)[1].tolist() == [True]


def test_the_wrist_margin_enters_the_key_only_where_it_departs_from_50():
    from pipeline.keypoints.params import SelectParams

    default = SelectParams().fingerprint()
    assert "seds_wrist_margin" not in default and SelectParams(seds_wrist_margin=50).fingerprint() == default
    assert SelectParams(seds_wrist_margin=None).fingerprint() == {**default, "seds_wrist_margin": None}
    assert SelectParams(seds_wrist_margin=None).rules().bottom_margin is None
    assert "seds_wrist_margin" not in SelectParams(normalisation="none", seds_wrist_margin=None).fingerprint()


# --- none and center ---------------------------------------------------------------------------


def test_none_keeps_pixels_and_masks_low_scores():
    rng = np.random.default_rng(0)
    kp, sc = rng.uniform(0, 500, size=(4, 133, 2)), rng.uniform(0, 1, size=(4, 133))
    chosen = selection(["body", "hand"])
    result = no_normalise(kp, sc, chosen, 0.4)
    np.testing.assert_array_equal(result.keypoints, kp[:, chosen.indices].astype(np.float32))
    np.testing.assert_array_equal(result.mask, sc[:, chosen.indices] > 0.4)
    assert result.kept.all()


def test_center_uses_the_median_shoulder_frame():
    kp = np.zeros((3, 133, 2))
    sc = np.ones((3, 133))
    kp[:, 5] = [[120, 100], [122, 100], [500, 500]]  # left shoulders
    kp[:, 6] = [[80, 100], [78, 100], [0, 0]]  # right shoulders
    sc[2, 6] = 0.1  # frame 2's shoulders do not count
    kp[:, 0] = [100, 60]  # the nose
    result = center_normalise(kp, sc, selection(["body"]), 0.4)
    # centre: median of (100, 100), (100, 100) = (100, 100); width: median of 40, 44 = 42
    assert result.keypoints[0, 0].tolist() == pytest.approx([0.0, -40 / 42])
    assert result.mask[2, 4] == 0 and result.mask[2, 1] == 1  # right shoulder column masked in frame 2


def test_center_without_confident_shoulders_is_a_recorded_failure():
    with pytest.raises(ItemFailed) as err:
        center_normalise(np.zeros((2, 133, 2)), np.zeros((2, 133)), selection(["body"]), 0.4)
    assert err.value.reason == "no_shoulders"


def test_normalise_rejects_other_layouts():
    with pytest.raises(ValueError, match=r"\(T, 133, 2\)"):
        normalise("none", np.zeros((2, 17, 2)), np.zeros((2, 17)), selection(["body"]), SQUARE, 0.4, RULES)
