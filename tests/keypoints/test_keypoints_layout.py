"""The COCO-WholeBody layout and the SEDS selection, checked against mmpose's own dataset definition and
the real annotations of ../shared/testdata/coco_wholebody (body, feet, face, left and right hand)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import ParamError, build_section
from pipeline.keypoints.layout import (
    KEYPOINT_NAMES,
    MOUTH,
    SKELETON_LINKS,
    SelectionError,
    selection,
    selection_of_parts,
)
from pipeline.keypoints.normalise import SedsRules, no_normalise, seds_normalise
from pipeline.keypoints.params import SelectParams
from pipeline.keypoints.select import KeypointShapeError, select_points

FIELDS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")  # 17, 6, 68, 21, 21


@pytest.fixture(scope="module")
def coco(testdata) -> dict:
    return json.loads((testdata / "coco_wholebody" / "test_coco_wholebody.json").read_text())


def wholebody(ann: dict) -> np.ndarray:
    """(133, 3) x, y, v: the annotation's five keypoint lists concatenated in the layout's order."""
    return np.concatenate([np.asarray(ann[f], dtype=np.float64).reshape(-1, 3) for f in FIELDS])


def test_names_and_links_match_mmpose_coco_wholebody():
    from importlib.util import find_spec

    from mmengine.config import Config

    package = Path(find_spec("mmpose").origin).parent  # located, not imported (importing it takes seconds)
    info = Config.fromfile(package / ".mim/configs/_base_/datasets/coco_wholebody.py").dataset_info
    names = [info.keypoint_info[i]["name"] for i in range(133)]
    assert list(KEYPOINT_NAMES) == names
    theirs = {tuple(sorted(names.index(n) for n in link["link"])) for link in info.skeleton_info.values()}
    assert {tuple(sorted(link)) for link in SKELETON_LINKS} == theirs and len(SKELETON_LINKS) == 65


def test_the_default_selection_is_the_seds_49():
    chosen = selection()
    assert chosen.parts == ("body", "left_hand", "right_hand") and chosen.size == 49
    assert chosen.indices.tolist() == [0, 5, 7, 9, 6, 8, 10] + list(range(91, 112)) + list(range(112, 133))
    assert [KEYPOINT_NAMES[i] for i in chosen.indices[:7]] == [
        "nose",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ]


def test_groups_come_out_in_canonical_order_whatever_the_params_order():
    assert selection(["mouth", "hand", "body"]).parts == ("body", "left_hand", "right_hand", "mouth")
    face = selection(["face", "body"])
    assert face.size == 7 + 48 and face.indices[7:].tolist() == list(range(23, 71))  # iBUG 0-47: not the lips
    mouth = selection(["mouth"])
    assert mouth.indices.tolist() == list(range(71, 91)) and [KEYPOINT_NAMES[i] for i in mouth.indices[[0, -1]]] == [
        "face-48",
        "face-67",
    ]
    assert (
        selection_of_parts(("body", "left_hand", "right_hand", "mouth")).indices.tolist()
        == selection(["body", "hand", "mouth"]).indices.tolist()
    )


@pytest.mark.parametrize("groups, message", [([], "at least one"), (["hands"], "unknown"), (["body", "body"], "twice")])
def test_bad_groups_are_refused(groups, message):
    with pytest.raises(SelectionError, match=message):
        selection(groups)


def test_face_and_mouth_are_disjoint_and_together_make_the_68_face_points():
    both = selection(["mouth", "face", "hand", "body"])
    assert both.parts == ("body", "left_hand", "right_hand", "face", "mouth")
    assert sorted(both.indices[49:].tolist()) == list(range(23, 91)) and len(set(both.indices.tolist())) == 49 + 68


def test_params_name_the_key_of_a_bad_selection():
    with pytest.raises(ParamError, match=r"select\.parts: 'hands' is not one of"):
        build_section(SelectParams, {"parts": ["body", "hands"]}, "select")
    p = build_section(SelectParams, {"parts": ["hand", "body"]}, "select")
    assert p.fingerprint() == build_section(SelectParams, {}, "select").fingerprint()  # same columns, same key


def test_layout_splits_real_annotations_into_their_parts(coco):
    for ann in coco["annotations"]:
        kp = wholebody(ann)
        chosen = selection(["body", "hand", "face", "mouth"])
        picked = kp[chosen.indices]
        body = np.asarray(ann["keypoints"]).reshape(17, 3)
        assert picked[chosen.columns("body")].tolist() == body[[0, 5, 7, 9, 6, 8, 10]].tolist()
        assert picked[chosen.columns("left_hand")].ravel().tolist() == ann["lefthand_kpts"]
        assert picked[chosen.columns("right_hand")].ravel().tolist() == ann["righthand_kpts"]
        face_and_lips = np.concatenate([picked[chosen.columns("face")], picked[chosen.columns("mouth")]])
        assert face_and_lips.ravel().tolist() == ann["face_kpts"]
        assert kp[17:23].ravel().tolist() == ann["foot_kpts"]


def test_each_wrist_lies_at_the_root_of_the_same_sided_hand(coco):
    """Left and right agree between the body and the hands: the annotated left wrist is next to the left
    hand's root and far from the right hand's (checked on every annotation with both)."""
    checked = 0
    for ann in coco["annotations"]:
        kp = wholebody(ann)
        for side, wrist, root, other in (("lefthand", 9, 91, 112), ("righthand", 10, 112, 91)):
            if ann[f"{side}_valid"] and kp[wrist, 2] > 0 and kp[root, 2] > 0:
                near = np.linalg.norm(kp[wrist, :2] - kp[root, :2])
                box = ann[f"{side}_box"]
                assert near < max(box[2], box[3]), (ann["id"], side, near)
                if kp[other, 2] > 0:
                    assert near < np.linalg.norm(kp[wrist, :2] - kp[other, :2])
                checked += 1
    assert checked >= 6


def test_mouth_points_are_the_lips_inside_the_face(coco):
    checked = 0
    for ann in coco["annotations"]:
        kp = wholebody(ann)
        if not ann["face_valid"] or kp[0, 2] == 0:
            continue
        x, y, w, h = ann["face_box"]
        mouth = kp[list(MOUTH), :2]
        assert (mouth[:, 0] >= x - 1).all() and (mouth[:, 0] <= x + w + 1).all()
        assert (mouth[:, 1] > kp[0, 1]).all(), "the lips lie below the nose"
        assert mouth[:, 1].mean() > kp[23:91, 1].mean(), "and below the face's centre"
        checked += 1
    assert checked >= 3


def test_masks_follow_visibility_flags(coco):
    chosen = selection()
    for ann in coco["annotations"]:
        kp = wholebody(ann)
        result = no_normalise(kp[None, :, :2], (kp[None, :, 2] > 0).astype(np.float32), chosen, 0.4)
        assert result.mask[0].tolist() == (kp[chosen.indices, 2] > 0).astype(np.uint8).tolist()
        if not ann["lefthand_valid"]:
            assert result.mask[0, chosen.columns("left_hand")].sum() == 0
        if not ann["righthand_valid"]:
            assert result.mask[0, chosen.columns("right_hand")].sum() == 0


def test_seds_boxes_centre_real_hands(coco):
    """On real annotated hands, the joint box puts the hand's extent in the middle of the 256 crop."""
    image_size = {im["id"]: (im["width"], im["height"]) for im in coco["images"]}
    chosen = selection()
    centred = 0
    for ann in coco["annotations"]:
        kp = wholebody(ann)
        if not ann["righthand_valid"] or (kp[112:133, 2] > 0).sum() < 21:
            continue
        rules = SedsRules(frame=None)  # the annotation's own image frame
        result = seds_normalise(
            kp[None, :, :2], (kp[None, :, 2] > 0).astype(np.float32), chosen, image_size[ann["image_id"]], rules
        )
        hand = result.keypoints[0, chosen.columns("right_hand")]
        middle = (hand.min(axis=0) + hand.max(axis=0)) / 2
        assert np.abs(middle - 128).max() < 6, (ann["id"], middle)
        assert result.mask[0, chosen.columns("right_hand")].all()
        centred += 1
    assert centred >= 2


def test_select_points_checks_the_layout():
    chosen = selection()
    kp, sc = np.arange(2 * 133 * 2, dtype=np.float32).reshape(2, 133, 2), np.ones((2, 133), np.float32)
    xy, scores = select_points(kp, sc, chosen)
    assert xy.shape == (2, 49, 2) and xy[1, 3].tolist() == kp[1, 9].tolist()
    with pytest.raises(KeypointShapeError, match=r"expected \(T, 133, 2\)"):
        select_points(kp[:, :17], sc[:, :17], chosen)
