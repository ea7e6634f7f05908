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

TINY_POSE = {"model": MODEL_M, "checkpoint": "random", "frames": "uniform", "frames_value": 2, "flip_test": False,
             "batch_size": 4, "chunk_frames": 8}


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


def test_output_changing_params_change_the_fingerprint(project):
    set_params(pose=TINY_POSE)

    def digest(device="cpu", **overrides) -> str:
        params = load_params("params.yaml", {"runtime.device": device, **{f"pose.{k}": v for k, v in overrides.items()}})
        return PoseStage(params).fingerprint(None).digest

    base = digest()
    assert digest(batch_size=64, chunk_frames=1, precision="bf16") == base  # the CPU computes fp32 whatever is asked
    # On a GPU the backbone's precision changes the keypoints, so it changes the key (fp32 shares the CPU's).
    assert digest("cuda", precision="fp32") == base
    assert len({base, digest("cuda", precision="bf16"), digest("cuda", precision="fp16")}) == 3
    assert digest("cuda", precision="bf16", backend="mmpose") == digest(backend="mmpose")  # mmpose: always fp32
    for change in ({"backend": "mmpose"}, {"model": "rtmpose-l_8xb64-270e_coco-wholebody-256x192"},
                   {"frames_value": 3}, {"frames": "all"}, {"flip_test": True}, {"box": "two_pass"}):
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
    write_csv_manifest(tmp_path, [{"video_path": v.name, "text": "a real clip"} for v in sorted(root.iterdir())],
                       extra_params={"pose": {**TINY_POSE, "frames": "thin", "frames_value": 3}})
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
def test_mmdet_box_tracks_one_signer_on_the_crowded_clip(real_videos):
    checkpoint = person_sized_random_detector(real_videos / "detector.pth")
    assert run("--set", "pose.box=mmdet", "--set", "pose.detector_config=rtmdet_nano_320-8xb32_coco-person",
               "--set", f"pose.detector_checkpoint={checkpoint}", "--set", "pose.detector_min_score=0.0",
               "--set", "pose.frames_value=5", "--set", "pose.chunk_frames=2") == 0
    got = items()
    for sample_id, (arrays, attrs, row) in got.items():
        check_item(arrays, attrs, thin_frames(row["num_frames"], 5))
        assert attrs["box_rule"].startswith("mmdet") and attrs["whole_frame_fallbacks"] == 0
        assert isinstance(attrs["signer_reselections"], int)
        whole = np.all(arrays["boxes"] == [0, 0, attrs["width"], attrs["height"]], axis=1)
        assert not whole.any()
    arrays, attrs, _ = got["mmpose__demo.mp4"]
    assert len(arrays["frames"]) == 5  # all of its frames, decoded in units of 2: the track spans units
