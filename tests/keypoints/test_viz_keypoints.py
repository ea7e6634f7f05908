"""`seds viz keypoints` and the figure it draws: valid PNGs of the expected size, coloured by part, on
the sample project and on a real COCO-WholeBody image with its annotated keypoints."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.commands import viz
from pipeline.keypoints.layout import selection
from pipeline.report.keypoints_figure import MASKED_COLOUR, PART_COLOURS, draw_legend, draw_points, write_png
from pipeline.video.decode import read_frames

FIELDS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")


def read_png(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} is not a readable PNG"
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def colour_pixels(image: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(image == np.array(colour, np.uint8), axis=-1).sum())


def test_viz_draws_select_items_with_seds_panels(project, capsys):
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    assert main(["run", "select", "--no-progress", "--set", "select.source=gt_keypoints"]) == 0
    sid = "sample000_0-1-rgb_front"
    assert main(["viz", "keypoints", sid, "--frame", "20", "--out", "fig/select.png"]) == 0
    assert "clip frame 20" in capsys.readouterr().out
    image = read_png("fig/select.png")
    # the sample's 160x120 frame enlarged by a whole factor (aspect kept), then three square panels of the
    # same height: body, left hand, right hand
    height, width = image.shape[:2]
    factor, frame_w = height // 120, 160 * (height // 120)
    assert factor >= 1 and height == 120 * factor and width == frame_w + 3 * height
    frame, body, left, right = (
        image[:, :frame_w],
        image[:, frame_w : frame_w + height],
        image[:, frame_w + height : frame_w + 2 * height],
        image[:, frame_w + 2 * height :],
    )
    for part in ("body", "left_hand", "right_hand"):
        assert colour_pixels(frame, PART_COLOURS[part]) > 20, part
    assert colour_pixels(body, PART_COLOURS["body"]) > 20 and colour_pixels(body, PART_COLOURS["left_hand"]) == 0
    assert colour_pixels(left, PART_COLOURS["left_hand"]) > 20 and colour_pixels(left, PART_COLOURS["body"]) == 0
    assert (
        colour_pixels(right, PART_COLOURS["right_hand"]) > 20 and colour_pixels(right, PART_COLOURS["left_hand"]) == 0
    )

    assert main(["viz", "keypoints", sid, "--stage", "gt_keypoints", "--out", "fig/gt.png"]) == 0
    assert read_png("fig/gt.png").shape == (height, frame_w, 3)  # the frame alone: gt_keypoints has no SEDS panels


def test_viz_names_what_is_missing(project, capsys):
    assert main(["viz", "keypoints", "sample000_0-1-rgb_front"]) == 2
    assert "manifests/select.parquet does not exist" in capsys.readouterr().err
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    assert main(["viz", "keypoints", "no-such-sample", "--stage", "gt_keypoints"]) == 2
    assert "has no sample 'no-such-sample'" in capsys.readouterr().err


def test_nearest_sampled_frame():
    frames = np.array([0, 3, 6, 9])
    assert (
        viz.nearest_frame(frames, 7) == 2
        and viz.nearest_frame(frames, None) == 2
        and viz.nearest_frame(frames, 100) == 3
    )


@pytest.fixture
def coco_image(testdata, tmp_path):
    """A real COCO-WholeBody image (as a one-frame folder clip) and its person annotations."""
    data = json.loads((testdata / "coco_wholebody" / "test_coco_wholebody.json").read_text())
    image = next(im for im in data["images"] if im["id"] == 197388)
    folder = tmp_path / "clip"
    folder.mkdir()
    os.symlink(testdata / "coco_wholebody" / image["file_name"], folder / image["file_name"])
    people = [
        np.concatenate([np.asarray(a[f], np.float64).reshape(-1, 3) for f in FIELDS])
        for a in data["annotations"]
        if a["image_id"] == image["id"] and a["num_keypoints"] > 0
    ]
    return folder, image, people


def test_figure_on_a_real_image_with_annotated_keypoints(coco_image, tmp_path):
    folder, image, people = coco_image
    frame = read_frames(folder, np.array([0]))[0]
    assert frame.shape == (image["height"], image["width"], 3)
    chosen = selection(["body", "hand", "face"])
    figure = frame
    for kp in people:
        confident = kp[chosen.indices, 2] > 0.4  # the hand flags of some skiers are low scores (0.04-0.37)
        figure = draw_points(figure, kp[chosen.indices, :2], confident.astype(np.uint8), chosen)
    figure = draw_legend(figure, chosen.parts, "COCO 197388")
    path = write_png(tmp_path / "coco.png", figure)
    drawn = read_png(path)
    assert drawn.shape == frame.shape
    full = people[0]  # the skier with every part annotated (id 437295)
    x, y = np.round(full[5, :2]).astype(int)  # left shoulder: a body dot
    assert tuple(drawn[y, x]) == PART_COLOURS["body"]
    x, y = np.round(full[112 + 8, :2]).astype(int)  # right index fingertip: a right-hand dot
    assert tuple(drawn[y, x]) == PART_COLOURS["right_hand"]
    assert colour_pixels(drawn, PART_COLOURS["face"]) > 20
    low = people[2]  # id 531914: right hand scored 0.05-0.37
    x, y = np.round(low[112 + 8, :2]).astype(int)
    ring = drawn[y - 6 : y + 7, x - 6 : x + 7]
    assert colour_pixels(ring, MASKED_COLOUR) > 0 and colour_pixels(ring, PART_COLOURS["right_hand"]) == 0
