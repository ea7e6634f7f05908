"""The stages' NVDEC path (runtime.decoder resolving to nvdec), run on the CPU over the real test clips.

PyNvVideoCodec cannot run here (no GPU), so a stand-in sits at that boundary and nowhere else:
tests/stand_ins/PyNvVideoCodec (the `nvdec_stand_in` fixture) decodes with PyAV on the CPU, and the real
NvdecReader reads through it onto device cpu (SEDS_NVDEC_ON_CPU=1). Everything after it is the stages'
device path (pose crops by grid_sample, RTMPose-m with random weights, the I3D resize/crop/normalise as
torch ops, the tiny I3D). Because the stand-in's frames are the CPU decoder's pixels (PyAV's, byte for
byte decord's on these clips), the outputs differ from the CPU path only by the device preprocessing,
whose tolerance docs/gpu.md gives: I3D features within 1% of their scale, RTMPose keypoints identical for
more than 90% (median 0 px). The MPEG-4 clip is one NVDEC declines, and a clip NVDEC fails on is decoded
on the CPU: both take the CPU path, so their items are the CPU path's exactly.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.runner.plan import read_view
from pipeline.runner.runlog import RUNS_FOLDER, read_runs
from pipeline.store.layout import StageDir
from pipeline.store.reader import StageReader
from pipeline.video import nvdec
from tests_support import needs_no_gpu, view_rows, write_csv_manifest

H264 = ("slp-pose__test_video.mp4", "mmpose__demo.mp4")  # 540x720 and 960x540: NVDEC takes them

NVDEC = ("--set", "runtime.decoder=nvdec")  # auto means cpu: the NVDEC path is asked for by name
DECLINED = "mmaction2__test.avi"  # MPEG-4 Part 2: the CPU decoder's
POSE = {
    "model": "rtmpose-m_8xb64-270e_coco-wholebody-256x192",
    "checkpoint": "random",
    "frames": "uniform",
    "frames_value": 6,
    "flip_test": False,
    "batch_size": 4,
    "chunk_frames": 4,
}
RGB = {"size": 64, "resize": 64, "window": 4, "num_windows": 3, "batch_size": 4}
STAGES = ("pose", "rgb")


@pytest.fixture(scope="module")
def clips_template(tmp_path_factory, testdata) -> Path:
    """A project over the three real clips (read in place), manifest and probe done."""
    import os

    project = tmp_path_factory.mktemp("nvdec_clips")
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in (*H264, DECLINED)]
    params = {
        "runtime": {"device": "cpu"},  # device cpu: the stand-in PyNvVideoCodec's frames are host frames
        "pose": copy.deepcopy(POSE),
        "rgb": copy.deepcopy(RGB),
    }
    write_csv_manifest(project, rows, root=str(testdata / "videos"), extra_params=params)
    old = os.getcwd()
    os.chdir(project)
    try:
        assert main(["manifest"]) == 0
        assert main(["run", "probe", "--no-progress"]) == 0
    finally:
        os.chdir(old)
    return project


def _copy(template: Path, dest: Path, chdir) -> Path:
    shutil.copytree(template, dest, symlinks=True)
    return chdir(dest)


def _items(project: Path, stage: str) -> dict[str, tuple[dict, dict]]:
    """sample_id -> (arrays, provenance) of the stage's items named by its view."""
    _, fingerprints = read_view(project / "manifests", stage)
    out = {}
    with StageReader(StageDir(project / "cache", stage, fingerprints[stage])) as reader:
        for sample_id, row in view_rows(stage).items():
            assert row[f"{stage}_status"] == "ok", row
            key = row[f"{stage}_key"]
            out[sample_id] = (reader.read(key), reader.row(key).provenance)
    return out


@pytest.fixture(scope="module")
def cpu_reference(clips_template, tmp_path_factory) -> dict[str, dict]:
    """Both stages' items on the CPU path (runtime.decoder: cpu), and the run record's decoder."""
    import os

    project = tmp_path_factory.mktemp("cpu") / "project"
    shutil.copytree(clips_template, project, symlinks=True)
    old = os.getcwd()
    os.chdir(project)
    try:
        assert main(["run", "pose", "rgb", "--no-progress", "--set", "runtime.decoder=cpu"]) == 0
        _, fingerprints = read_view(project / "manifests", "rgb")
        runs = read_runs(StageDir(project / "cache", "rgb", fingerprints["rgb"]).path / RUNS_FOLDER)
        assert runs[-1]["decoder"] == "cpu"
        return {stage: _items(project, stage) for stage in STAGES}
    finally:
        os.chdir(old)


def _assert_rgb_close(got: dict, reference: dict, on_cpu: dict[str, dict] | None = None) -> None:
    """rgb items within the tolerance of the CPU path's; `on_cpu`: sample id -> the provenance entries of
    a clip the CPU decoder decoded (the declined MPEG-4 clip: none), whose features are the CPU path's bytes."""
    on_cpu = on_cpu or {DECLINED: {}}
    assert got.keys() == reference.keys() == {*H264, DECLINED}
    for sample_id, (arrays, provenance) in got.items():
        expected, expected_provenance = reference[sample_id]
        np.testing.assert_array_equal(arrays["windows"], expected["windows"])
        features, cpu = arrays["features"].astype(np.float32), expected["features"].astype(np.float32)
        if sample_id in on_cpu:  # the CPU path: the same bytes, provenance as said
            assert provenance == {**expected_provenance, **on_cpu[sample_id]}
            np.testing.assert_array_equal(arrays["features"], expected["features"])
        else:
            assert provenance == {**expected_provenance, "decoder": "nvdec"}
            assert np.abs(features - cpu).max() <= 0.01 * np.abs(cpu).max(), sample_id


def _assert_pose_close(got: dict, reference: dict, on_cpu: dict[str, dict] | None = None) -> None:
    """pose items within the tolerance of the CPU path's; `on_cpu` as for _assert_rgb_close."""
    on_cpu = on_cpu or {DECLINED: {}}
    assert got.keys() == reference.keys() == {*H264, DECLINED}
    moved = []
    for sample_id, (arrays, provenance) in got.items():
        expected, expected_provenance = reference[sample_id]
        for name in ("frames", "boxes"):  # whole-frame boxes of the same frames
            np.testing.assert_array_equal(arrays[name], expected[name])
        if sample_id in on_cpu:
            assert provenance == {**expected_provenance, **on_cpu[sample_id]}
            for name in ("keypoints", "scores"):
                np.testing.assert_array_equal(arrays[name], expected[name])
        else:
            assert provenance == {**expected_provenance, "decoder": "nvdec"}
            moved.append(np.linalg.norm(arrays["keypoints"] - expected["keypoints"], axis=-1).ravel())
    moved = np.concatenate(moved)
    assert (moved == 0).mean() > 0.9 and np.median(moved) == 0, f"{(moved == 0).mean():.3f} identical"


def test_rgb_alone_on_device_frames_matches_the_cpu_path(
    clips_template, cpu_reference, tmp_path, chdir, nvdec_stand_in
):
    project = _copy(clips_template, tmp_path / "p", chdir)
    assert main(["run", "rgb", "--no-progress", *NVDEC]) == 0
    assert sorted(nvdec_stand_in.OPENED) == sorted(H264)  # the MPEG-4 clip never reached NVDEC
    _assert_rgb_close(_items(project, "rgb"), cpu_reference["rgb"])
    _, fingerprints = read_view(project / "manifests", "rgb")
    runs = read_runs(StageDir(project / "cache", "rgb", fingerprints["rgb"]).path / RUNS_FOLDER)
    assert runs[-1]["decoder"] == "nvdec"


def test_pose_alone_on_device_frames_matches_the_cpu_path(
    clips_template, cpu_reference, tmp_path, chdir, nvdec_stand_in
):
    project = _copy(clips_template, tmp_path / "p", chdir)
    assert main(["run", "pose", "--no-progress", *NVDEC]) == 0
    assert sorted(nvdec_stand_in.OPENED) == sorted(H264)
    _assert_pose_close(_items(project, "pose"), cpu_reference["pose"])


def test_two_pass_boxes_run_their_first_pass_on_the_device_too(clips_template, tmp_path, chdir, nvdec_stand_in):
    two_pass = ["--set", "pose.box=two_pass"]
    cpu = _copy(clips_template, tmp_path / "cpu", chdir)
    assert main(["run", "pose", "--no-progress", "--set", "runtime.decoder=cpu", *two_pass]) == 0
    reference = _items(cpu, "pose")
    assert nvdec_stand_in.OPENED == []
    device = _copy(clips_template, tmp_path / "device", chdir)
    assert main(["run", "pose", "--no-progress", *NVDEC, *two_pass]) == 0
    assert sorted(nvdec_stand_in.OPENED) == sorted(H264)
    _assert_pose_close(_items(device, "pose"), reference)


def test_together_one_device_decode_per_clip_gives_what_each_stage_gives_alone(
    clips_template, cpu_reference, tmp_path, chdir, nvdec_stand_in
):
    alone = _copy(clips_template, tmp_path / "alone", chdir)
    assert main(["run", "pose", "--no-progress", *NVDEC]) == 0
    pose_done = tmp_path / "pose_done"
    shutil.copytree(alone, pose_done, symlinks=True)
    assert main(["run", "rgb", "--no-progress", *NVDEC]) == 0
    separate = {stage: _items(alone, stage) for stage in STAGES}

    together = _copy(clips_template, tmp_path / "together", chdir)
    nvdec_stand_in.OPENED.clear()
    assert main(["run", "pose", "rgb", "--no-progress", *NVDEC]) == 0
    assert sorted(nvdec_stand_in.OPENED) == sorted(H264)  # ONE decode per clip for both stages
    for stage in STAGES:
        got = _items(together, stage)
        assert got.keys() == separate[stage].keys()
        for sample_id, (arrays, provenance) in got.items():
            assert provenance == separate[stage][sample_id][1]
            for name, array in arrays.items():
                np.testing.assert_array_equal(array, separate[stage][sample_id][0][name], err_msg=f"{stage} {name}")
    _assert_pose_close(_items(together, "pose"), cpu_reference["pose"])
    _assert_rgb_close(_items(together, "rgb"), cpu_reference["rgb"])

    # pose has every clip: the shared run decodes each clip for rgb alone, still on the device
    chdir(pose_done)
    nvdec_stand_in.OPENED.clear()
    assert main(["run", "pose", "rgb", "--no-progress", *NVDEC]) == 0
    assert sorted(nvdec_stand_in.OPENED) == sorted(H264)
    for sample_id, (arrays, provenance) in _items(pose_done, "rgb").items():
        assert provenance == separate["rgb"][sample_id][1]
        np.testing.assert_array_equal(arrays["features"], separate["rgb"][sample_id][0]["features"])


def test_a_clip_nvdec_fails_on_is_decoded_on_the_cpu_for_every_member(
    clips_template, cpu_reference, tmp_path, chdir, nvdec_stand_in, caplog
):
    project = _copy(clips_template, tmp_path / "p", chdir)
    broken = H264[0]
    nvdec_stand_in.FAIL[broken] = "driver_error"
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert main(["run", "pose", "rgb", "--no-progress", *NVDEC]) == 0  # max_failures 0: nothing failed
    assert sorted(nvdec_stand_in.OPENED) == sorted(H264)  # NVDEC tried once; the retry was the CPU decoder's
    error = "RuntimeError: cuvidDecodePicture returned error 700 (CUDA_ERROR_ILLEGAL_ADDRESS): driver error"
    on_cpu = {DECLINED: {}, broken: {"decoder": "cpu", "nvdec_fallback": error}}
    _assert_pose_close(_items(project, "pose"), cpu_reference["pose"], on_cpu)
    _assert_rgb_close(_items(project, "rgb"), cpu_reference["rgb"], on_cpu)
    said = [r.getMessage() for r in caplog.records if "NVDEC failed" in r.getMessage()]
    assert len(said) == 1 and broken in said[0] and error in said[0]


@needs_no_gpu
@pytest.mark.parametrize("stages", [["rgb"], ["pose"], ["pose", "rgb"]])
def test_nvdec_without_a_gpu_stops_before_planning(clips_template, tmp_path, chdir, capsys, stages):
    project = _copy(clips_template, tmp_path / "p", chdir)
    assert main(["run", *stages, "--no-progress", "--set", "runtime.decoder=nvdec"]) == 2
    err = capsys.readouterr().err
    assert (
        "seds: error: runtime.decoder: nvdec cannot run on device 'cpu': no CUDA device. "
        "Use runtime.decoder: cpu (or auto)." in err
    )
    for stage in stages:  # nothing planned: no store folder, no view
        assert not (project / "cache" / stage).exists() and not (project / f"manifests/{stage}.parquet").exists()


def test_auto_decodes_on_the_cpu_with_one_line_and_records_it(clips_template, tmp_path, chdir, caplog, nvdec_stand_in):
    """Even where NVDEC could run (the stand-in), `auto` is the CPU for now (docs/gpu.md)."""
    project = _copy(clips_template, tmp_path / "p", chdir)
    with caplog.at_level(logging.WARNING, logger="pipeline.video.nvdec"):
        assert main(["run", "pose", "rgb", "--no-progress"]) == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"runtime.decoder auto: decoding on the CPU ({nvdec.AUTO_MEANS_CPU})"
    ]
    assert not nvdec_stand_in.OPENED
    for stage in STAGES:
        _, fingerprints = read_view(project / "manifests", stage)
        runs = read_runs(StageDir(project / "cache", stage, fingerprints[stage]).path / RUNS_FOLDER)
        assert runs[-1]["decoder"] == "cpu"
