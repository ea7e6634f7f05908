"""`seds import pose`: .pose files of each layout into the store as the pose_file stage, read by select and
by the trainer's data loading; bad files recorded with a reason naming them."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.alphapose_133 import get_alphapose_133_components
from pose_format.utils.cocowholebody133_header import cocowholebody_components
from pose_format.utils.openpose import OpenPose_Components
from pose_format.utils.openpose_135 import OpenPose_Components as OpenPose135_Components

from pipeline.cli import main
from pipeline.interop.pose_format import PoseLayoutError, read_pose, to_pose, to_wholebody, write_pose
from pipeline.interop.pose_import import clip_frames, pose_item
from pipeline.interop.views import open_view
from pipeline.keypoints.layout import selection
from pipeline.rgb.windows import plan_windows
from pipeline.runner.plan import read_view

SEDS_49 = selection(["body", "hand"]).indices  # COCO-WholeBody index of each SEDS column

# The 49 SEDS points and their counterparts, written out from each project's own documentation (not
# from our mapping code): the body point's name, then hand point j (0..20) of the left and right hand.
OPENPOSE_BODY = {0: "Nose", 5: "LShoulder", 7: "LElbow", 9: "LWrist", 6: "RShoulder", 8: "RElbow", 10: "RWrist"}
MEDIAPIPE_BODY = {
    0: "NOSE",
    5: "LEFT_SHOULDER",
    7: "LEFT_ELBOW",
    9: "LEFT_WRIST",
    6: "RIGHT_SHOULDER",
    8: "RIGHT_ELBOW",
    10: "RIGHT_WRIST",
}
MEDIAPIPE_POSE_33 = [  # mediapipe.solutions.pose.PoseLandmark, in order
    "NOSE",
    "LEFT_EYE_INNER",
    "LEFT_EYE",
    "LEFT_EYE_OUTER",
    "RIGHT_EYE_INNER",
    "RIGHT_EYE",
    "RIGHT_EYE_OUTER",
    "LEFT_EAR",
    "RIGHT_EAR",
    "MOUTH_LEFT",
    "MOUTH_RIGHT",
    "LEFT_SHOULDER",
    "RIGHT_SHOULDER",
    "LEFT_ELBOW",
    "RIGHT_ELBOW",
    "LEFT_WRIST",
    "RIGHT_WRIST",
    "LEFT_PINKY",
    "RIGHT_PINKY",
    "LEFT_INDEX",
    "RIGHT_INDEX",
    "LEFT_THUMB",
    "RIGHT_THUMB",
    "LEFT_HIP",
    "RIGHT_HIP",
    "LEFT_KNEE",
    "RIGHT_KNEE",
    "LEFT_ANKLE",
    "RIGHT_ANKLE",
    "LEFT_HEEL",
    "RIGHT_HEEL",
    "LEFT_FOOT_INDEX",
    "RIGHT_FOOT_INDEX",
]
MEDIAPIPE_HAND_21 = [  # mediapipe.solutions.hands.HandLandmark, in order
    "WRIST",
    "THUMB_CMC",
    "THUMB_MCP",
    "THUMB_IP",
    "THUMB_TIP",
    "INDEX_FINGER_MCP",
    "INDEX_FINGER_PIP",
    "INDEX_FINGER_DIP",
    "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP",
    "MIDDLE_FINGER_PIP",
    "MIDDLE_FINGER_DIP",
    "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP",
    "RING_FINGER_PIP",
    "RING_FINGER_DIP",
    "RING_FINGER_TIP",
    "PINKY_MCP",
    "PINKY_PIP",
    "PINKY_DIP",
    "PINKY_TIP",
]


def _component(name: str, points: list[str], fmt: str = "XYC") -> PoseHeaderComponent:
    return PoseHeaderComponent(name, points, [], [(255, 255, 255)], fmt)


def _labelled_file(
    path, components, frames: int = 3, fps: float = 25.0, confidence: float = 0.9, size: tuple[int, int] = (640, 480)
):
    """A .pose file whose point k (over all components) sits at x = k + 0.25, y = frame + 0.5, so each
    imported point says which file point it came from. Returns {(component, point): k}."""
    dims = len(components[0].format) - 1
    total = sum(len(c.points) for c in components)
    data = np.zeros((frames, 1, total, dims), np.float32)
    data[..., 0] = np.arange(total) + 0.25
    data[..., 1] = np.arange(frames)[:, None, None] + 0.5
    conf = np.full((frames, 1, total), confidence, np.float32)
    header = PoseHeader(0.1, PoseHeaderDimensions(*size, 0), components)
    write_pose(path, Pose(header, NumPyPoseBody(fps, data, conf)))
    places, k = {}, 0
    for c in components:
        for point in c.points:
            places[(c.name, point)] = k
            k += 1
    return places


def _check_49(item: dict, expected: dict[int, int | None]) -> None:
    """expected: COCO-WholeBody index -> the file point k it must come from (None: masked)."""
    for column, index in enumerate(SEDS_49):
        k = expected[int(index)]
        if k is None:
            assert item["scores"][:, index].max() == 0, (column, index)
        else:
            assert item["keypoints"][0, index, 0] == pytest.approx(k + 0.25), (column, index)
            assert item["scores"][0, index] == pytest.approx(0.9)
    np.testing.assert_allclose(
        item["keypoints"][:, SEDS_49[0], 1][item["scores"][:, SEDS_49[0]] > 0],
        (np.arange(3) + 0.5)[item["scores"][:, SEDS_49[0]] > 0],
    )


def _hands(places, left: str, right: str, names: list[str]) -> dict[int, int]:
    out = {91 + j: places[(left, n)] for j, n in enumerate(names)}
    out.update({112 + j: places[(right, n)] for j, n in enumerate(names)})
    return out


def test_coco_wholebody_files_map_one_to_one(tmp_path):
    """Ours (BODY 17 + FEET 6 + ...), pose-format's (BODY 23 + FACE 68 + hands) and AlphaPose's 133."""
    rng = np.random.default_rng(0)
    keypoints = rng.uniform(0, 100, (4, 133, 2)).astype(np.float32)
    scores = rng.uniform(0.1, 1, (4, 133)).astype(np.float32)
    write_pose(tmp_path / "ours.pose", to_pose(keypoints, scores, np.arange(4), 25.0, 160, 120))
    for name, components in (
        ("ours", None),
        ("pose_format", cocowholebody_components()),
        ("alphapose", get_alphapose_133_components()),
    ):
        path = tmp_path / f"{name}.pose"
        if components is not None:
            places = _labelled_file(path, components)
            arrays, attrs = pose_item(path, {}, None)
            np.testing.assert_allclose(arrays["keypoints"][0, :, 0], np.arange(133) + 0.25)
            assert sorted(places.values()) == list(range(133))
        else:
            arrays, attrs = pose_item(path, {}, None)
            np.testing.assert_array_equal(arrays["keypoints"], keypoints)
            np.testing.assert_array_equal(arrays["scores"], scores)
        assert attrs["layout"] == "coco_wholebody" and attrs["points_mapped"] == 133, name


def test_openpose_body25_and_hands_map_onto_the_49_points(tmp_path):
    path = tmp_path / "op.pose"
    places = _labelled_file(path, OpenPose_Components)
    hands = [p for c in OpenPose_Components if c.name == "hand_left_keypoints_2d" for p in c.points]
    expected = {i: places[("pose_keypoints_2d", n)] for i, n in OPENPOSE_BODY.items()}
    expected.update(_hands(places, "hand_left_keypoints_2d", "hand_right_keypoints_2d", hands))
    arrays, attrs = pose_item(path, {}, None)
    _check_49(arrays, expected)
    assert attrs["layout"] == "openpose" and attrs["points_mapped"] == 23 + 68 + 42  # BODY_25 less Neck, MidHip
    # without the (optional) face: the 49 are all there, the face is masked
    no_face = [c for c in OpenPose_Components if c.name != "face_keypoints_2d"]
    places = _labelled_file(path, no_face)
    expected = {i: places[("pose_keypoints_2d", n)] for i, n in OPENPOSE_BODY.items()}
    expected.update(_hands(places, "hand_left_keypoints_2d", "hand_right_keypoints_2d", hands))
    arrays, attrs = pose_item(path, {}, None)
    _check_49(arrays, expected)
    assert attrs["points_mapped"] == 133 - 68 and not arrays["scores"][:, 23:91].any()


def test_mediapipe_holistic_maps_onto_the_49_points_full_and_reduced(tmp_path):
    path = tmp_path / "mp.pose"
    full = [
        _component("POSE_LANDMARKS", MEDIAPIPE_POSE_33, "XYZC"),
        _component("FACE_LANDMARKS", [str(i) for i in range(468)], "XYZC"),
        _component("LEFT_HAND_LANDMARKS", MEDIAPIPE_HAND_21, "XYZC"),
        _component("RIGHT_HAND_LANDMARKS", MEDIAPIPE_HAND_21, "XYZC"),
        _component("POSE_WORLD_LANDMARKS", MEDIAPIPE_POSE_33, "XYZC"),
    ]
    places = _labelled_file(path, full)
    expected = {i: places[("POSE_LANDMARKS", n)] for i, n in MEDIAPIPE_BODY.items()}
    expected.update(_hands(places, "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS", MEDIAPIPE_HAND_21))
    arrays, attrs = pose_item(path, {}, None)
    _check_49(arrays, expected)
    assert attrs["layout"] == "mediapipe_holistic" and not arrays["scores"][:, 23:91].any()  # no iBUG face
    # the reduced body of pose-format's tests (8 landmarks, no nose): the nose is masked
    reduced = [_component("POSE_LANDMARKS", MEDIAPIPE_POSE_33[11:17] + MEDIAPIPE_POSE_33[23:25], "XYZC"), *full[1:4]]
    places = _labelled_file(path, reduced)
    expected = {i: (places[("POSE_LANDMARKS", n)] if i else None) for i, n in MEDIAPIPE_BODY.items()}
    expected.update(_hands(places, "LEFT_HAND_LANDMARKS", "RIGHT_HAND_LANDMARKS", MEDIAPIPE_HAND_21))
    _check_49(pose_item(path, {}, None)[0], expected)


@pytest.mark.parametrize(
    "components, named",
    [
        (OpenPose135_Components, "BODY_135 (135 points)"),
        ([_component("POSE_LANDMARKS", MEDIAPIPE_POSE_33)], "POSE_LANDMARKS (33 points)"),  # Holistic without hands
        (
            [_component("BODY", [f"p{i}" for i in range(17)]), _component("LEFT_HAND", MEDIAPIPE_HAND_21)],
            "BODY (17 points), LEFT_HAND (21 points)",
        ),
        (
            [
                c if c.name != "hand_left_keypoints_2d" else _component(c.name, c.points[:20])
                for c in OpenPose_Components
            ],
            "hand_left_keypoints_2d (20 points)",
        ),
    ],
)
def test_other_layouts_are_refused_naming_what_they_hold(tmp_path, components, named):
    path = tmp_path / "odd.pose"
    _labelled_file(path, list(components))
    with pytest.raises(PoseLayoutError, match=r"odd\.pose: holds .*" + named.replace("(", r"\(").replace(")", r"\)")):
        to_wholebody(read_pose(path))


def test_real_files_import_with_their_layouts(testdata):
    mediapipe, mp_attrs = pose_item(testdata / "pose_format/slp-pose__mediapipe.pose", {}, None)
    raw = read_pose(testdata / "pose_format/slp-pose__mediapipe.pose")
    assert mp_attrs == {
        "frames_sampled": 170,
        "layout": "mediapipe_holistic",
        "points_mapped": 50,
        "file_fps": 24.0,
        "file_frames": 170,
        "width": 1250,
        "height": 1250,
    }
    np.testing.assert_array_equal(mediapipe["frames"], np.arange(170))
    np.testing.assert_array_equal(mediapipe["keypoints"][:, 10], raw.keypoints[:, 5, :2])  # RIGHT_WRIST
    assert not mediapipe["scores"][:, 0].any()  # the reduced body has no nose: masked
    assert not mediapipe["scores"][:, 91:112].any()  # this file never found the left hand
    openpose, op_attrs = pose_item(testdata / "pose_format/slp-pose__openpose.pose", {}, (1920, 1080))
    raw = read_pose(testdata / "pose_format/slp-pose__openpose.pose")
    assert op_attrs["layout"] == "openpose" and (op_attrs["width"], op_attrs["height"]) == (1920, 1080)
    kept = (raw.confidence > 0).any(axis=1)
    np.testing.assert_array_equal(openpose["frames"], np.flatnonzero(kept))
    np.testing.assert_array_equal(openpose["keypoints"][:, 112:133], raw.keypoints[kept][:, 116:137])


def test_frames_follow_the_clip_rate_and_empty_or_broken_files_are_refused(tmp_path):
    np.testing.assert_array_equal(clip_frames(4, 29.97, 30.0), np.arange(4))  # one rate written two ways
    np.testing.assert_array_equal(clip_frames(5, 50.0, 25.0), [0, 0, 1, 1, 2])
    np.testing.assert_array_equal(clip_frames(3, 12.5, 25.0), [0, 2, 4])
    path = tmp_path / "fast.pose"
    _labelled_file(path, OpenPose_Components, frames=6, fps=50.0)
    arrays, _ = pose_item(path, {"fps": 25.0, "num_frames": 3}, None)
    np.testing.assert_array_equal(arrays["frames"], [0, 1, 2])
    np.testing.assert_allclose(arrays["keypoints"][:, 0, 1], [0.5, 2.5, 4.5])  # file frames 0, 2, 4
    with pytest.raises(ValueError, match=r"fast\.pose: has keypoints at clip frame 2 .* clip has 2 frames"):
        pose_item(path, {"fps": 25.0, "num_frames": 2}, None)
    _labelled_file(path, OpenPose_Components, confidence=0.0)
    with pytest.raises(ValueError, match=r"fast\.pose: none of its 3 frames has a point with confidence above 0"):
        pose_item(path, {}, None)


def _with(path, fn) -> None:
    """Rewrite a .pose file after fn(data, confidence) changed its arrays in place."""
    pose = Pose.read(path.read_bytes())
    data, confidence = np.ma.getdata(pose.body.data).copy(), np.asarray(pose.body.confidence).copy()
    fn(data, confidence)
    write_pose(path, Pose(pose.header, NumPyPoseBody(pose.body.fps, data, confidence)))


def test_non_finite_values_are_refused_where_they_would_count(tmp_path):
    path = tmp_path / "nan.pose"
    places = _labelled_file(path, OpenPose_Components)
    wrist = places[("pose_keypoints_2d", "LWrist")]

    def masked_nan(data, confidence):
        data[1, 0, wrist, 0], confidence[1, 0, wrist] = np.nan, 0.0

    _with(path, masked_nan)  # a NaN under zero confidence is "no point": imported as 0, score 0
    arrays, _ = pose_item(path, {}, None)
    assert arrays["keypoints"][1, 9, 0] == 0 and arrays["scores"][1, 9] == 0 and arrays["keypoints"][0, 9, 0] > 0

    def counted_nan(data, confidence):
        data[1, 0, wrist, 0], confidence[1, 0, wrist] = np.nan, 0.9

    _with(path, counted_nan)
    with pytest.raises(ValueError, match=r"nan\.pose: holds NaN or infinite coordinates for points with confidence"):
        pose_item(path, {}, None)

    def nan_confidence(data, confidence):
        data[1, 0, wrist, 0], confidence[1, 0, wrist] = 1.0, np.nan

    _with(path, nan_confidence)
    with pytest.raises(ValueError, match=r"nan\.pose: holds NaN or infinite confidences"):
        pose_item(path, {}, None)


def _project_rows(project):
    return pq.read_table(project / "manifests/probe.parquet").to_pylist()


def test_import_pose_records_bad_files_and_reuses_good_ones(project, tmp_path, testdata, capsys):
    rows = _project_rows(project)
    folder = tmp_path / "poses"
    folder.mkdir()
    good = [r["sample_id"] for r in rows[:8]]
    for row in rows[:8]:
        _labelled_file(
            folder / f"{row['sample_id']}.pose", OpenPose_Components, frames=row["num_frames"], fps=row["fps"]
        )
    garbage, odd, long, missing = (r["sample_id"] for r in rows[8:12])
    (folder / f"{garbage}.pose").write_bytes(b"not a pose file")
    _labelled_file(folder / f"{odd}.pose", OpenPose135_Components)
    shutil.copy(testdata / "pose_format/slp-pose__openpose.pose", folder / f"{long}.pose")  # 93 frames

    args = ["import", "pose", str(folder), "--source", "openpose-test"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert (
        "import pose_file: 8 imported, 0 reused, 4 failed (2 bad_format, 1 missing_file, 1 unknown_layout)"
        in captured.out
    )
    assert f"{garbage}.pose: not a readable .pose file" in captured.err
    assert f"{odd}.pose: holds BODY_135 (135 points)" in captured.err
    assert f"{long}.pose: has keypoints at clip frame" in captured.err and "(93 frames at 24 fps)" in captured.err
    table, fingerprints = read_view(project / "manifests", "pose_file")
    view = {r["sample_id"]: r for r in table.to_pylist()}
    assert {s: view[s]["pose_file_reason"] for s in (garbage, odd, long, missing)} == {
        garbage: "bad_format",
        odd: "unknown_layout",
        long: "bad_format",
        missing: "missing_file",
    }
    assert all(view[s]["pose_file_status"] == "ok" for s in good) and "probe" in fingerprints
    assert main(args) == 1
    assert "import pose_file: 0 imported, 8 reused, 4 failed" in capsys.readouterr().out


def test_exported_poses_reimport_and_train_as_the_originals(project, tmp_path, capsys):
    """gt keypoints -> .pose -> pose_file: the same arrays; select on them equals select on the originals;
    the trainer's data loading reads the clips."""
    from pipeline.train.data import ClipDataset, collate, load_clips

    assert main(["run", "gt_keypoints", "--no-progress", "--set", "select.gt_frames_value=10"]) == 0
    out = tmp_path / "poses"
    assert main(["export", "pose", "--view", "gt_keypoints", "--out", str(out)]) == 0
    assert main(["import", "pose", str(out), "--source", "round-trip"]) == 0
    gt = open_view("gt_keypoints", project / "manifests", project / "cache")
    imported = open_view("pose_file", project / "manifests", project / "cache")
    assert len(imported.ok_rows()) == len(gt.ok_rows()) == 12
    by_id = {r["sample_id"]: r for r in imported.rows}
    for row in gt.ok_rows():
        ours, theirs = gt.read(row), imported.read(by_id[row["sample_id"]])
        for name in ("keypoints", "scores", "frames"):
            np.testing.assert_array_equal(theirs[name], ours[name].astype(theirs[name].dtype), err_msg=name)

    assert main(["cache", "export", "pose_file", "-o", str(tmp_path / "pose_file.tar")]) == 0  # shared as any stage

    selected = {}
    for source in ("gt_keypoints", "pose_file"):
        capsys.readouterr()
        assert (
            main(
                [
                    "run",
                    "select",
                    "--no-progress",
                    "--set",
                    f"select.source={source}",
                    "--set",
                    "select.gt_frames_value=10",
                ]
            )
            == 0
        )
        assert "select: 12 items: 12 computed" in capsys.readouterr().out
        view = open_view("select", project / "manifests", project / "cache")
        selected[source] = {r["sample_id"]: view.read(r) for r in view.ok_rows()}
    assert selected["gt_keypoints"].keys() == selected["pose_file"].keys()
    for sample_id, a in selected["gt_keypoints"].items():
        for name in ("keypoints", "scores", "mask", "frames"):
            np.testing.assert_array_equal(a[name], selected["pose_file"][sample_id][name], err_msg=name)

    # RGB features from the authors' layout, so training has both streams without running I3D
    features = tmp_path / "i3d"
    features.mkdir()
    for row in _project_rows(project):
        n = len(plan_windows(row["num_frames"], window=4, stride=1, max_frames=300, num_windows=4).windows)
        with open(features / f"{row['sample_id']}.pkl", "wb") as f:
            pickle.dump({"feature": np.ones((n, 1024), np.float32)}, f)
    assert (
        main(["import", "authors", "rgb", str(features), "--source", "ones", "--window", "4", "--num-windows", "4"])
        == 0
    )
    clips = load_clips(project / "manifests", project / "cache", "select", ["manifests/authors/rgb.parquet"], "train")
    assert len(clips.clips) == 4 and not clips.skipped
    dataset = ClipDataset(clips, steps=4)
    for i, clip in enumerate(clips.clips):  # every kept frame, as select wrote it from the imported poses
        np.testing.assert_array_equal(
            dataset[i]["keypoints"].numpy(), selected["pose_file"][clip.sample_id]["keypoints"]
        )
    batch = collate([dataset[i] for i in range(len(dataset))])
    assert batch["keypoints"].shape[::2] == (4, 49) and batch["windows"].shape == (4, 4, 4)
    assert (batch["windows"] >= 0).all() and batch["rgb"].eq(1).all()
