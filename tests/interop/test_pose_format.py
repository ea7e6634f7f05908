"""`.pose` files: the ecosystem's test files read and mapped onto our layout; our keypoints written with
`seds export pose` and read back by pose-format, value for value."""

from __future__ import annotations

import numpy as np
import pytest
from pose_format import Pose

from pipeline.cli import main
from pipeline.interop.pose_format import PoseFileError, read_pose, to_wholebody
from pipeline.interop.views import open_view
from pipeline.keypoints.layout import KEYPOINT_NAMES, LEFT_HAND, RIGHT_HAND, selection


def test_reads_the_mediapipe_file_and_maps_body_and_hands(testdata):
    path = testdata / "pose_format/slp-pose__mediapipe.pose"
    pose = read_pose(path)
    assert pose.fps == 24 and pose.keypoints.shape == (170, 178, 3) and pose.confidence.shape == (170, 178)
    assert [(name, len(points)) for name, points in pose.components] == [
        ("POSE_LANDMARKS", 8),
        ("FACE_LANDMARKS", 128),
        ("LEFT_HAND_LANDMARKS", 21),
        ("RIGHT_HAND_LANDMARKS", 21),
    ]
    body = to_wholebody(pose)
    assert body.keypoints.shape == (170, 133, 2) and body.scores.shape == (170, 133)
    assert np.flatnonzero(body.mapped).tolist() == list(range(5, 13)) + list(LEFT_HAND) + list(RIGHT_HAND)
    # LEFT_WRIST is the 5th pose landmark; the left hand's 21 points follow 8 + 128 points of the file
    np.testing.assert_array_equal(body.keypoints[:, 9], pose.keypoints[:, 4, :2])
    np.testing.assert_array_equal(body.keypoints[:, LEFT_HAND.start + 20], pose.keypoints[:, 136 + 20, :2])
    np.testing.assert_array_equal(body.scores[:, RIGHT_HAND.start], pose.confidence[:, 157])
    assert not body.scores[:, ~body.mapped].any()


def test_reads_the_openpose_file_into_all_133_points(testdata):
    pose = read_pose(testdata / "pose_format/slp-pose__openpose.pose")
    assert pose.fps == 24 and pose.keypoints.shape == (93, 137, 2) and (pose.width, pose.height) == (1000, 1000)
    body = to_wholebody(pose)
    assert body.mapped.all()
    np.testing.assert_array_equal(body.frames, np.arange(93))
    np.testing.assert_array_equal(body.keypoints[:, 5], pose.keypoints[:, 5])  # LShoulder
    np.testing.assert_array_equal(body.keypoints[:, 6], pose.keypoints[:, 2])  # RShoulder
    np.testing.assert_array_equal(body.keypoints[:, 23:91], pose.keypoints[:, 25:93])  # iBUG 68 of face 70
    np.testing.assert_array_equal(body.keypoints[:, 112:133], pose.keypoints[:, 116:137])


def test_not_a_pose_file_names_it(tmp_path):
    bad = tmp_path / "bad.pose"
    bad.write_bytes(b"\x00\x01 not a pose")
    with pytest.raises(PoseFileError, match="bad.pose: not a readable .pose file"):
        read_pose(bad)


def _read(path):
    return Pose.read(path.read_bytes())


def test_export_pose_of_wholebody_and_selection_reads_back_exactly(project, tmp_path, capsys):
    # every 4th-or-so frame, so the file has frames between the sampled ones
    assert main(["run", "gt_keypoints", "--no-progress", "--set", "select.gt_frames_value=10"]) == 0
    assert (
        main(
            [
                "run",
                "select",
                "--no-progress",
                "--set",
                "select.source=gt_keypoints",
                "--set",
                "select.normalisation=none",
                "--set",
                "select.gt_frames_value=10",
            ]
        )
        == 0
    )
    gt = open_view("gt_keypoints", project / "manifests", project / "cache")
    row = gt.ok_rows()[0]
    sample = row["sample_id"]
    for view in ("gt_keypoints", "select"):
        assert main(["export", "pose", "--view", view, "--out", str(tmp_path / view), "--sample", sample]) == 0
    assert "export pose: 1 clip(s)" in capsys.readouterr().out

    whole = _read(tmp_path / "gt_keypoints" / f"{sample}.pose")
    ours = gt.read(row)
    frames = ours["frames"]
    assert whole.body.fps == pytest.approx(row["fps"])
    assert [c.name for c in whole.header.components] == ["BODY", "FEET", "FACE", "LEFT_HAND", "RIGHT_HAND"]
    assert [p for c in whole.header.components for p in c.points] == list(KEYPOINT_NAMES)
    assert ("left_shoulder", "left_elbow") in {
        (whole.header.components[0].points[a], whole.header.components[0].points[b])
        for a, b in whole.header.components[0].limbs
    }
    assert whole.body.data.shape == (frames[-1] + 1, 1, 133, 2) and whole.body.data.dtype == np.float32
    np.testing.assert_array_equal(np.ma.getdata(whole.body.data)[frames, 0], ours["keypoints"])
    np.testing.assert_array_equal(whole.body.confidence[frames, 0], ours["scores"])
    gaps = np.setdiff1d(np.arange(frames[-1] + 1), frames)
    assert len(gaps) and not whole.body.confidence[gaps].any()  # frames not sampled are empty

    chosen = selection(["body", "hand"])
    select = open_view("select", project / "manifests", project / "cache")
    picked = select.read(next(r for r in select.rows if r["sample_id"] == sample))
    sel = _read(tmp_path / "select" / f"{sample}.pose")
    assert [(c.name, len(c.points)) for c in sel.header.components] == [
        ("BODY", 7),
        ("LEFT_HAND", 21),
        ("RIGHT_HAND", 21),
    ]
    assert [p for c in sel.header.components for p in c.points] == [KEYPOINT_NAMES[i] for i in chosen.indices]
    assert len(sel.header.components[1].limbs) == 20
    np.testing.assert_array_equal(np.ma.getdata(sel.body.data)[picked["frames"], 0], picked["keypoints"])
    np.testing.assert_array_equal(sel.body.confidence[picked["frames"], 0], picked["scores"])


def test_exported_file_reads_back_through_our_reader(project, tmp_path):
    assert main(["run", "gt_keypoints", "--no-progress"]) == 0
    gt = open_view("gt_keypoints", project / "manifests", project / "cache")
    row = gt.ok_rows()[0]
    assert main(["export", "pose", "--view", "gt_keypoints", "--out", str(tmp_path), "--sample", row["sample_id"]]) == 0
    pose = read_pose(tmp_path / f"{row['sample_id']}.pose")
    assert [name for name, _ in pose.components] == ["BODY", "FEET", "FACE", "LEFT_HAND", "RIGHT_HAND"]
    ours = gt.read(row)
    np.testing.assert_array_equal(pose.keypoints[ours["frames"]], ours["keypoints"])
