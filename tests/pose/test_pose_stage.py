"""The pose stage through the runner: the tiny sample project and the three real test videos.

Random weights (`checkpoint: random`, explicit) of the -m 256x192 model, few frames per clip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.cli import main
from pipeline.config import ParamError, load_params
from pipeline.pose.stage import PoseStage
from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir
from pipeline.store.reader import StageReader
from pipeline.video.sampling import thin_frames, uniform_frames
from pose_support import MODEL_M, inside_padded_crops
from tests_support import write_csv_manifest

TINY_POSE = {
    "model": MODEL_M,
    "checkpoint": "random",
    "frames": "uniform",
    "frames_value": 2,
    "flip_test": False,
    "batch_size": 4,
    "chunk_frames": 8,
}


def run(*args: str) -> int:
    return main(["run", "pose", "--no-progress", *args])


def set_params(**sections) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())
    for section, values in sections.items():
        params.setdefault(section, {}).update(values)
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def items() -> dict[str, tuple[dict[str, np.ndarray], dict, dict]]:
    """sample_id -> (arrays, attrs, view row) of every item of the pose view."""
    table, fingerprints = read_view(Path("manifests"), "pose")
    reader = StageReader(StageDir(Path("cache"), "pose", fingerprints["pose"]))
    return {r["sample_id"]: (reader.read(r["pose_key"]), reader.attrs(r["pose_key"]), r) for r in table.to_pylist()}


def check_item(arrays: dict[str, np.ndarray], attrs: dict, frames: np.ndarray) -> None:
    t = len(frames)
    assert arrays["keypoints"].shape == (t, 133, 2) and arrays["keypoints"].dtype == np.float32
    assert arrays["scores"].shape == (t, 133) and arrays["scores"].dtype == np.float32
    assert arrays["boxes"].shape == (t, 4) and arrays["boxes"].dtype == np.float32
    assert arrays["frames"].dtype == np.int64 and arrays["frames"].tolist() == frames.tolist()
    assert np.isfinite(arrays["keypoints"]).all() and np.isfinite(arrays["scores"]).all()
    width, height = attrs["width"], attrs["height"]
    boxes = arrays["boxes"]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= width).all() and (boxes[:, 3] <= height).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
    assert inside_padded_crops(arrays["keypoints"], boxes)


def test_tiny_project_writes_every_clip_and_reuses_it(project, capsys):
    set_params(runtime={"threads_per_worker": 1}, pose=TINY_POSE)
    assert run() == 0
    summary = capsys.readouterr().out
    assert "12 items: 12 computed, 0 reused, 0 failed" in summary
    assert "random (explicit, checkpoint: random)" in summary
    got = items()
    assert len(got) == 12
    for sample_id, (arrays, attrs, row) in got.items():
        assert row["pose_status"] == "ok"
        check_item(arrays, attrs, uniform_frames(row["num_frames"], 2))
        assert (attrs["width"], attrs["height"]) == (160, 120) == (row["width"], row["height"])
        np.testing.assert_array_equal(arrays["boxes"], np.tile([0, 0, 160, 120], (2, 1)))
        assert attrs["box_rule"].startswith("whole_frame") and attrs["frames_sampled"] == 2
    first = next(iter(got.values()))[0]["keypoints"]
    assert any(np.abs(arrays["keypoints"] - first).max() > 1 for arrays, _, _ in got.values())

    # a rerun, and one with other batch/chunk/thread settings, reuse everything
    assert run() == 0
    assert "12 items: 0 computed, 12 reused, 0 failed" in capsys.readouterr().out
    assert run("--set", "pose.batch_size=3", "--set", "pose.chunk_frames=5", "--set", "pose.precision=fp32") == 0
    assert "12 items: 0 computed, 12 reused, 0 failed" in capsys.readouterr().out


def test_pose_splits_leaves_the_other_clips_out_without_failing_them(project, capsys):
    set_params(runtime={"threads_per_worker": 1}, pose={**TINY_POSE, "splits": ["test"]})
    assert run() == 0
    summary = capsys.readouterr().out
    assert "12 items: 4 computed, 0 reused, 0 failed" in summary and "8 left out by its params" in summary
    table, _ = read_view(Path("manifests"), "pose")
    rows = table.to_pylist()
    assert {r["split"] for r in rows if r["pose_status"] == "ok"} == {"test"}
    left_out = [r for r in rows if r["pose_status"] != "ok"]
    assert len(left_out) == 8 and {r["pose_status"] for r in left_out} == {"skipped"}
    assert all(r["pose_reason"] == f"split {r['split']!r} is not in pose.splits ['test']" for r in left_out)
    assert all(r["pose_key"] is None for r in left_out)
    # the same fingerprint with every split: the 4 test clips are reused, the other 8 computed
    assert run("--set", "pose.splits=null") == 0
    assert "12 items: 8 computed, 4 reused, 0 failed" in capsys.readouterr().out
    # a downstream stage reading the narrowed view sees the left-out clips as upstream_failed, not as failures
    assert run("--set", "pose.splits=[test]") == 0
    capsys.readouterr()
    assert main(["run", "select", "--no-progress", "--set", "select.source=pose"]) == 0
    selected, _ = read_view(Path("manifests"), "select")
    statuses = {r["sample_id"]: r["select_status"] for r in selected.to_pylist()}
    assert sorted(statuses.values()).count("ok") == 4
    assert sorted(statuses.values()).count("upstream_failed") == 8


def test_output_changing_params_change_the_fingerprint(project):
    set_params(pose=TINY_POSE)

    def digest(device="cpu", **overrides) -> str:
        params = load_params(
            "params.yaml", {"runtime.device": device, **{f"pose.{k}": v for k, v in overrides.items()}}
        )
        return PoseStage(params).fingerprint(None).digest

    base = digest()
    assert digest(batch_size=64, chunk_frames=1, precision="bf16") == base  # the CPU computes fp32 whatever is asked
    # On a GPU the backbone's precision changes the keypoints, so it changes the key (fp32 shares the CPU's).
    assert digest("cuda", precision="fp32") == base
    assert len({base, digest("cuda", precision="bf16"), digest("cuda", precision="fp16")}) == 3
    assert digest("cuda", precision="bf16", backend="mmpose") == digest(backend="mmpose")  # mmpose: always fp32
    for change in (
        {"backend": "mmpose"},
        {"model": "rtmpose-l_8xb64-270e_coco-wholebody-256x192"},
        {"frames_value": 3},
        {"frames": "all"},
        {"flip_test": True},
        {"box": "two_pass"},
    ):
        assert digest(**change) != base, change
    assert digest(box_threshold=0.9) == base  # only read by the two_pass rule
    assert digest(box="two_pass", box_threshold=0.9) != digest(box="two_pass")


def test_bad_pose_params_stop_the_run_before_any_work(project, capsys):
    set_params(pose={**TINY_POSE, "checkpoint": "weights/none.pth"})
    assert run() == 2
    err = capsys.readouterr().err
    assert "pose.checkpoint" in err and "weights/none.pth does not exist" in err
    assert not Path("manifests/pose.parquet").exists()
    with pytest.raises(ParamError, match="pose.bach_size"):
        load_params("params.yaml", {"pose.bach_size": 4})
    with pytest.raises(ParamError, match="pose.detector_checkpoint"):
        load_params("params.yaml", {"pose.box": "mmdet", "pose.detector_config": "my_detector.py"})


@pytest.fixture
def real_videos(tmp_path, testdata, chdir):
    """A project of the three real test videos (portrait H.264, MPEG-4 AVI, 5 frames of pedestrians)."""
    root = tmp_path / "data"
    root.mkdir()
    for video in sorted((testdata / "videos").iterdir()):
        os.symlink(video, root / video.name)
    write_csv_manifest(
        tmp_path,
        [{"video_path": v.name, "text": "a real clip"} for v in sorted(root.iterdir())],
        extra_params={"pose": {**TINY_POSE, "frames": "thin", "frames_value": 3}},
    )
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress"]) == 0
    return tmp_path


SIZES = {"slp-pose__test_video.mp4": (540, 720), "mmaction2__test.avi": (320, 240), "mmpose__demo.mp4": (960, 540)}


@pytest.mark.slow
def test_real_videos_native_and_mmpose_backends_write_the_same_keypoints(real_videos, capsys):
    assert run() == 0
    native = items()
    assert run("--set", "pose.backend=mmpose") == 0
    assert "3 items: 3 computed, 0 reused" in capsys.readouterr().out
    reference = items()
    assert set(native) == set(reference) == set(SIZES)
    for sample_id, (arrays, attrs, row) in native.items():
        check_item(arrays, attrs, thin_frames(row["num_frames"], 3))
        assert (attrs["width"], attrs["height"]) == SIZES[sample_id]
        ref = reference[sample_id][0]
        np.testing.assert_array_equal(arrays["frames"], ref["frames"])
        np.testing.assert_array_equal(arrays["boxes"], ref["boxes"])
        assert np.abs(arrays["keypoints"] - ref["keypoints"]).max() <= 1e-3
        assert np.abs(arrays["scores"] - ref["scores"]).max() <= 1e-4
    assert reference["mmpose__demo.mp4"][1]["backend"] == "mmpose"


@pytest.mark.slow
def test_real_videos_two_pass_boxes_come_from_the_first_pass(real_videos):
    # the seeded random weights score body keypoints about 0.09-0.15 on these frames: at 0.11 some
    # frames have 4 such keypoints and some do not, so both outcomes occur
    assert run("--set", "pose.box=two_pass", "--set", "pose.box_threshold=0.11") == 0
    fallbacks, keypoint_boxes = 0, 0
    for sample_id, (arrays, attrs, row) in items().items():
        check_item(arrays, attrs, thin_frames(row["num_frames"], 3))
        whole = np.all(arrays["boxes"] == [0, 0, attrs["width"], attrs["height"]], axis=1)
        assert attrs["whole_frame_fallbacks"] <= int(whole.sum())  # a keypoint box may also span the frame
        assert attrs["box_rule"].startswith("two_pass") and "0.11" in attrs["box_rule"]
        fallbacks += attrs["whole_frame_fallbacks"]
        keypoint_boxes += int((~whole).sum())
    assert fallbacks > 0 and keypoint_boxes > 0


def person_sized_random_detector(path: Path) -> Path:
    """Seeded random RTMDet-nano weights whose box regression is biased to about 4 strides per side.

    Plain random weights regress sub-pixel boxes (every distance ~0), which no crop can use; with
    this bias every anchor proposes a person-sized box, so NMS, the signer choice and the tracking
    run on real boxes. Saved as a checkpoint file: the detector's strict loading is exercised too."""
    import torch

    from pipeline.models.checkpoints import resolve_checkpoint
    from pipeline.pose.detector import PersonDetector

    detector = PersonDetector("rtmdet_nano_320-8xb32_coco-person", resolve_checkpoint("random", "k"))
    state = detector.model.state_dict()
    bias = float(np.log(4.0)) if detector.model.bbox_head.exp_on_reg else 4.0
    for key in state:
        if key.startswith("bbox_head.rtm_reg.") and key.endswith(".bias"):
            state[key] = torch.full_like(state[key], bias)
    torch.save({"state_dict": state}, path)
    return path


@pytest.mark.slow
def test_mmdet_box_runs_the_real_detector_on_the_crowded_clip(real_videos):
    checkpoint = person_sized_random_detector(real_videos / "detector.pth")
    assert (
        run(
            "--set",
            "pose.box=mmdet",
            "--set",
            "pose.detector_config=rtmdet_nano_320-8xb32_coco-person",
            "--set",
            f"pose.detector_checkpoint={checkpoint}",
            "--set",
            "pose.detector_min_score=0.0",
            "--set",
            "pose.frames_value=5",
            "--set",
            "pose.chunk_frames=2",
        )
        == 0
    )
    got = items()
    for sample_id, (arrays, attrs, row) in got.items():
        check_item(arrays, attrs, thin_frames(row["num_frames"], 5))
        assert attrs["box_rule"].startswith("mmdet") and attrs["whole_frame_fallbacks"] == 0
        assert isinstance(attrs["signer_reselections"], int)
        whole = np.all(arrays["boxes"] == [0, 0, attrs["width"], attrs["height"]], axis=1)
        assert not whole.any()
    arrays, attrs, _ = got["mmpose__demo.mp4"]
    assert len(arrays["frames"]) == 5  # all of its frames, decoded in units of 2: the track spans units


BACKGROUND = np.array([200, 200, 200])


def two_people(frames: int = 24, width: int = 320, height: int = 240) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A two-person clip: RGB frames (T, H, W, 3) and each person's true xyxy box per frame (T, 4).

    The signer (red) stands left of centre, swaying a few pixels. Another person (blue) walks in from
    the right edge toward the camera, growing until, in the last third, they are the more prominent
    of the two (larger x more central, the rule that picks the signer on the first frame). Neither
    ever overlaps the other."""
    t = np.linspace(0.0, 1.0, frames)
    sway = 3 * np.sin(2 * np.pi * 2 * t)
    signer = np.stack([90 + sway, np.full(frames, 80.0), 150 + sway, np.full(frames, 190.0)], axis=1)
    w, h, cx, cy = 30 + 70 * t, 50 + 100 * t, 290 - 45 * t, 150 - 25 * t
    other = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    video = np.empty((frames, height, width, 3), dtype=np.uint8)
    video[:] = BACKGROUND
    for i in range(frames):
        for box, colour in ((signer[i], (200, 40, 40)), (other[i], (40, 40, 200))):
            x0, y0, x1, y1 = np.round(box).astype(int)
            video[i, y0:y1, x0:x1] = colour
    return video, signer.astype(np.float32), other.astype(np.float32)


class SolidFigureDetector:
    """Stands in for mmdet's network, whose weights cannot be downloaded here (a true boundary): the
    people of the two-person clip are solid figures on a plain background, so each person's detection
    is the bounding box of one non-background region. Same constructor and `detect` as PersonDetector."""

    def __init__(self, config, checkpoint, device="cpu", batch_size=8):
        self.calls = 0

    def detect(self, frames):
        import cv2

        found = []
        for frame in frames:
            mask = (np.abs(frame.astype(np.int32) - BACKGROUND).sum(axis=-1) > 90).astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
            boxes = [[x, y, x + w, y + h, 0.9] for x, y, w, h, area in stats[1:count] if area > 100]
            found.append(np.asarray(boxes, dtype=np.float32).reshape(-1, 5))
        return found


def test_mmdet_box_follows_one_signer_when_another_person_becomes_more_prominent(tmp_path, chdir, monkeypatch):
    """Through the stage, frames in chunks of 4 (the track is carried across them): every stored box is
    on the signer chosen on the first frame, none on the person who later outranks them."""
    from pipeline.pose.boxes import box_iou, prominence
    from pipeline.sample.layouts import write_mp4

    video, signer, other = two_people()
    (tmp_path / "data").mkdir()
    write_mp4(tmp_path / "data" / "two_people.mp4", video, fps=25)
    assert (
        prominence(other[-6:], 320, 240) > prominence(signer[-6:], 320, 240)
    ).all()  # from frame 18: the last chunk (20-23) starts so
    assert prominence(signer[:1], 320, 240)[0] > prominence(other[:1], 320, 240)[0]
    write_csv_manifest(
        tmp_path,
        [{"video_path": "two_people.mp4", "text": "two people"}],
        extra_params={
            "pose": {
                **TINY_POSE,
                "frames": "all",
                "chunk_frames": 4,
                "box": "mmdet",
                "detector_config": "rtmdet_nano_320-8xb32_coco-person",
                "detector_checkpoint": "random",
                "box_smoothing": 0.5,
            }
        },
    )
    chdir(tmp_path)
    monkeypatch.setattr("pipeline.pose.detector.PersonDetector", SolidFigureDetector)
    assert main(["manifest"]) == 0 and main(["run", "probe", "--no-progress"]) == 0
    assert run() == 0
    ((arrays, attrs, _),) = items().values()
    boxes = arrays["boxes"]
    assert arrays["frames"].tolist() == list(range(len(video)))
    on_signer = np.array([box_iou(b, signer[i : i + 1])[0] for i, b in enumerate(boxes)])
    on_other = np.array([box_iou(b, other[i : i + 1])[0] for i, b in enumerate(boxes)])
    assert on_signer.min() > 0.8 and on_other.max() == 0.0, (on_signer.round(2), on_other.round(2))
    assert attrs["signer_reselections"] == 0 and attrs["whole_frame_fallbacks"] == 0
