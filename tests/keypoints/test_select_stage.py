"""gt_keypoints and select through the runner on the tiny sample project: values, shapes, masks, frame
rules, reuse on rerun, fingerprints that follow content (not paths), and recorded failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from pipeline.cli import main
from pipeline.keypoints.layout import selection
from pipeline.keypoints.normalise import SedsRules, seds_normalise
from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir
from pipeline.store.reader import StageReader
from pipeline.video.sampling import every_kth, thin_frames
from tests_support import BASE_RUNTIME

GT = ["--set", "select.source=gt_keypoints"]


def run(*args: str) -> int:
    return main(["run", *args, "--no-progress"])


def items(stage: str) -> dict[str, tuple[dict[str, np.ndarray], dict, dict]]:
    """sample_id -> (arrays, attrs, view row) of every ok item in the stage's view."""
    table, fingerprints = read_view(Path("manifests"), stage)
    reader = StageReader(StageDir(Path("cache"), stage, fingerprints[stage]))
    return {
        r["sample_id"]: (reader.read(r[f"{stage}_key"]), reader.attrs(r[f"{stage}_key"]), r)
        for r in table.to_pylist()
        if r[f"{stage}_status"] == "ok"
    }


def view_rows(stage: str) -> dict[str, dict]:
    return {r["sample_id"]: r for r in read_view(Path("manifests"), stage)[0].to_pylist()}


def with_select(project: Path, **select) -> None:
    """The project's params plus a select section (list values go through the file: the runner
    cannot yet carry a list given with --set, see docs/stages/select.md)."""
    write_params(
        project,
        {**yaml.safe_load((project / "params.yaml").read_text()), "select": {"source": "gt_keypoints", **select}},
    )


def write_params(project: Path, params: dict) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def last_summary(capsys) -> str:
    return [line for line in capsys.readouterr().out.splitlines() if " items: " in line][-1]


def test_gt_keypoints_are_the_generator_values_at_the_pose_frames(project, capsys):
    assert run("gt_keypoints") == 0
    got = items("gt_keypoints")
    assert len(got) == 12
    with h5py.File("data/sample/keypoints.h5", "r") as gt:
        for sid, (arrays, attrs, row) in got.items():
            frames = thin_frames(row["num_frames"], 300)
            assert arrays["frames"].tolist() == frames.tolist() and arrays["frames"].dtype == np.int64
            np.testing.assert_array_equal(arrays["keypoints"], gt[sid]["keypoints"][...][frames])
            np.testing.assert_array_equal(arrays["scores"], gt[sid]["scores"][...][frames])
            assert arrays["keypoints"].dtype == arrays["scores"].dtype == arrays["boxes"].dtype == np.float32
            body = arrays["keypoints"][:, :17]
            seen = arrays["scores"][:, :17] > 0
            assert (arrays["boxes"][:, 0] == np.where(seen, body[..., 0], np.inf).min(axis=1)).all()
            assert (arrays["boxes"][:, 3] == np.where(seen, body[..., 1], -np.inf).max(axis=1)).all()
            assert (attrs["width"], attrs["height"], attrs["box_rule"]) == (160, 120, "gt_body_extent")

    assert run("gt_keypoints", "--set", "select.gt_frames=every", "--set", "select.gt_frames_value=3") == 0
    assert "12 computed" in last_summary(capsys)
    with h5py.File("data/sample/keypoints.h5", "r") as gt:
        for sid, (arrays, _, row) in items("gt_keypoints").items():
            frames = every_kth(row["num_frames"], 3)
            assert arrays["frames"].tolist() == frames.tolist()
            np.testing.assert_array_equal(arrays["keypoints"], gt[sid]["keypoints"][...][frames])


def test_gt_keys_follow_each_clips_ground_truth_not_the_file_path(project, capsys):
    assert run("gt_keypoints") == 0
    keys = lambda: {
        r["sample_id"]: r["gt_keypoints_key"] for r in read_view(Path("manifests"), "gt_keypoints")[0].to_pylist()
    }  # noqa: E731
    first = keys()
    Path("elsewhere").mkdir()
    shutil.copy("data/sample/keypoints.h5", "elsewhere/renamed.h5")
    assert run("gt_keypoints", "--set", "select.gt_file=elsewhere/renamed.h5") == 0
    assert "0 computed, 12 reused" in last_summary(capsys)
    with h5py.File("elsewhere/renamed.h5", "a") as gt:
        gt["sample000_0-1-rgb_front/scores"][0, 0] = 0.5
    assert run("gt_keypoints", "--set", "select.gt_file=elsewhere/renamed.h5") == 0
    assert "1 computed, 11 reused" in last_summary(capsys)  # only the clip whose ground truth changed
    changed = {sid for sid, key in keys().items() if key != first[sid]}
    assert changed == {"sample000_0-1-rgb_front"}
    assert main(["run", "gt_keypoints", "--set", "select.gt_file=nowhere.h5"]) == 2
    assert "nowhere.h5 does not exist" in capsys.readouterr().err


def test_select_over_gt_keypoints_through_the_runner(project, capsys):
    assert run("gt_keypoints") == 0
    assert run("select", *GT) == 0
    gt = items("gt_keypoints")
    chosen = selection()
    selected = items("select")
    assert len(selected) == 12
    for sid, (arrays, attrs, row) in selected.items():
        source = gt[sid][0]
        t = len(source["frames"])
        assert arrays["keypoints"].shape == (t, 49, 2) and arrays["keypoints"].dtype == np.float32
        assert arrays["scores"].shape == arrays["mask"].shape == (t, 49) and arrays["mask"].dtype == np.uint8
        assert arrays["frames"].tolist() == source["frames"].tolist()  # every frame has its hands
        assert attrs["parts"] == ["body", "left_hand", "right_hand"] and attrs["normalisation"] == "seds"
        assert (attrs["kept_frames"], attrs["dropped_frames"]) == (t, 0) == (row["kept_frames"], row["dropped_frames"])
        assert attrs["hand_boxes"]["left_hand"] == {"joints": t, "arm": 0, "none": 0}
        assert arrays["mask"].all()  # ground truth: every joint seen
        expected = seds_normalise(source["keypoints"], source["scores"], chosen, (160, 120), SedsRules())
        np.testing.assert_array_equal(arrays["keypoints"], expected.keypoints)
        np.testing.assert_array_equal(arrays["scores"], source["scores"][:, chosen.indices])
        assert 0 <= arrays["keypoints"].min() and arrays["keypoints"][:, :7].max() <= 256

    assert run("select", *GT) == 0
    assert "0 computed, 12 reused" in last_summary(capsys)
    with_select(project, parts=["hand", "body"])  # same columns: same key
    assert run("select") == 0
    assert "0 computed, 12 reused" in last_summary(capsys)
    assert run("select", *GT, "--set", "select.normalisation=none") == 0
    assert "12 computed" in last_summary(capsys)
    for sid, (arrays, attrs, _) in items("select").items():
        np.testing.assert_array_equal(arrays["keypoints"], gt[sid][0]["keypoints"][:, chosen.indices])
        assert attrs["units"] == "pixels"


def test_select_face_and_mouth_groups(project):
    with_select(project, parts=["body", "hand", "mouth"])
    assert run("gt_keypoints") == 0
    assert run("select") == 0
    gt = items("gt_keypoints")
    for sid, (arrays, attrs, _) in items("select").items():
        assert arrays["keypoints"].shape[1] == 69 and attrs["parts"][-1] == "mouth"
        lips = gt[sid][0]["keypoints"][:, 71:91] / np.array([160, 120]) * 256  # on the 256 frame, like the body
        np.testing.assert_allclose(arrays["keypoints"][:, 49:], lips, rtol=1e-6)


@pytest.fixture
def clip_project(project) -> Path:
    """The tiny project re-manifested from a CSV: a clip with bounds (frames 10-24 of a sample video), a
    sample the ground truth lacks, one whose hands and arms are unseen and one whose truth is cut short."""
    rows = [
        ("sample000_0-1-rgb_front", "sample000_0-1-rgb_front", "0.4", "1.0"),
        ("stranger", "sample001_0-1-rgb_front", "", ""),
        ("sample002_0-1-rgb_front", "sample002_0-1-rgb_front", "", ""),
        ("sample003_0-1-rgb_front", "sample003_0-1-rgb_front", "", ""),
    ]
    lines = ["sample_id,video_path,text,split,start_s,end_s"]
    lines += [f"{sid},sentence_clips/{name}.mp4,a clip,test,{start},{end}" for sid, name, start, end in rows]
    Path("clips.csv").write_text("\n".join(lines) + "\n")
    shutil.copy("data/sample/keypoints.h5", "truth.h5")
    with h5py.File("truth.h5", "a") as gt:
        scores = gt["sample002_0-1-rgb_front/scores"]
        unseen = scores[...]
        unseen[:, [5, 6, 7, 8, 9, 10]] = 0.0
        unseen[:, 91:133] = 0.0
        scores[...] = unseen
        cut = gt["sample003_0-1-rgb_front/keypoints"][...][:-2]
        del gt["sample003_0-1-rgb_front/keypoints"]
        gt["sample003_0-1-rgb_front/keypoints"] = cut
    write_params(
        project,
        {
            "runtime": dict(BASE_RUNTIME),
            "data": {"root": "data/sample", "annotations": [{"format": "csv", "file": "clips.csv", "split": "test"}]},
            "select": {"source": "gt_keypoints", "gt_file": "truth.h5"},
        },
    )
    assert main(["manifest"]) == 0 and run("probe") == 0
    return project


def test_gt_keypoints_follow_clip_bounds_and_record_failures(clip_project):
    assert run("gt_keypoints", "--max-failures", "-1") == 0
    rows = view_rows("gt_keypoints")
    assert {sid: r["gt_keypoints_reason"] for sid, r in rows.items()} == {
        "sample000_0-1-rgb_front": None,
        "stranger": "no_ground_truth",
        "sample002_0-1-rgb_front": None,
        "sample003_0-1-rgb_front": "gt_mismatch",
    }
    arrays, _, row = items("gt_keypoints")["sample000_0-1-rgb_front"]
    assert (row["first_frame"], row["num_frames"]) == (10, 15)
    assert arrays["frames"].tolist() == list(range(15))  # clip frames, 0 = the clip's first
    with h5py.File("truth.h5", "r") as gt:
        np.testing.assert_array_equal(arrays["keypoints"], gt["sample000_0-1-rgb_front/keypoints"][10:25])

    assert run("select", "--max-failures", "-1") == 0
    rows = view_rows("select")
    assert rows["sample000_0-1-rgb_front"]["select_status"] == "ok"
    assert (rows["sample002_0-1-rgb_front"]["select_status"], rows["sample002_0-1-rgb_front"]["select_reason"]) == (
        "failed",
        "no_hands",
    )
    assert rows["stranger"]["select_status"] == rows["sample003_0-1-rgb_front"]["select_status"] == "upstream_failed"
    assert run("select") == 1  # max_failures 0: the failure counts
