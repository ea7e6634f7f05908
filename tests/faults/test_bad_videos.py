"""Bad videos against the real probe, pose and rgb stages: every case is processed correctly or recorded
as a failure with its reason, the rest of the manifest completes, and the exit code follows
runtime.max_failures. The videos are encoded here (32x24, a few frames) except the size cases."""

from __future__ import annotations

import shutil
import struct
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.cli import main
from pipeline.video.service import DecodeService
from tests_support import view_rows, write_csv_manifest

pytestmark = pytest.mark.faults

# sample id -> the probe outcome asserted: a failure reason, or the metadata of a valid file
FAILED = {
    "missing.mp4": "missing_file",
    "empty.mp4": "empty_file",
    "cut10.mp4": "truncated",
    "cut50.mp4": "truncated",
    "cut90.mp4": "truncated",
    "random.mp4": "not_a_video",
    "audio_only.mp4": "not_a_video",
    "still.png": "not_a_video",
    "after_end": "clip_out_of_range",
}
VALID = {  # (width, height, frames, fps)
    "good.mp4": (32, 24, 8, 25.0),
    "one_frame.mp4": (32, 24, 1, 25.0),
    "header_0x0.mp4": (32, 24, 8, 25.0),
    "odd_321x241.mp4": (321, 241, 3, 25.0),
    "vfr.mp4": (32, 24, 12, 12 / 1.12),
    "rotated90.mp4": (24, 32, 8, 25.0),
    "ten_bit.mp4": (32, 24, 4, 25.0),
    "uhd_3840x2160.mp4": (3840, 2160, 2, 25.0),
    "past_end": (32, 24, 3, 25.0),
}


def _zero_size_header(path: Path) -> None:
    """Set the width and height the mp4 header declares (tkhd and the avc1 sample entry) to 0x0."""
    data = bytearray(path.read_bytes())
    tkhd = data.find(b"tkhd")
    size_at = tkhd + 4 + 4 + (32 if data[tkhd + 4] == 1 else 20) + 16 + 36
    entry = data.find(b"avc1", data.find(b"stsd"))  # the sample entry, not the ftyp brand
    assert struct.unpack(">II", data[size_at : size_at + 8]) == (32 << 16, 24 << 16)
    assert struct.unpack(">HH", data[entry + 28 : entry + 32]) == (32, 24)
    data[size_at : size_at + 8] = bytes(8)
    data[entry + 28 : entry + 32] = bytes(4)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def bad_video_dir(tmp_path_factory, make_video) -> Path:
    import av

    root = tmp_path_factory.mktemp("bad_videos")
    make_video(root / "good.mp4")
    make_video(root / "one_frame.mp4", frames=1)
    _zero_size_header(make_video(root / "header_0x0.mp4"))
    make_video(root / "odd_321x241.mp4", frames=3, width=321, height=241, pix_fmt="yuv444p")  # 4:2:0 needs even sizes
    make_video(root / "vfr.mp4", frames=12, pts_ms=[0, 40, 80, 200, 240, 280, 600, 640, 680, 1000, 1040, 1080])
    make_video(root / "rotated90.mp4", rotation=90)
    make_video(root / "ten_bit.mp4", frames=4, pix_fmt="yuv420p10le")
    make_video(root / "uhd_3840x2160.mp4", frames=2, width=3840, height=2160)
    whole = make_video(root / "whole.mp4", frames=24, faststart=True).read_bytes()
    for percent in (10, 50, 90):
        (root / f"cut{percent}.mp4").write_bytes(whole[: len(whole) * percent // 100])
    (root / "whole.mp4").unlink()
    (root / "empty.mp4").write_bytes(b"")
    (root / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with av.open(str(root / "audio_only.mp4"), "w") as container:
        stream = container.add_stream("aac", rate=8000)
        for _ in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate = 8000
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    cv2.imwrite(str(root / "still.png"), np.full((24, 32, 3), 128, np.uint8))
    return root


FAST = {"runtime": {"chunk_items": 64}}  # one decoder child per run: a child start costs ~1 s on a busy machine


def _rows(files: list[str] | None = None) -> list[dict]:
    files = files or [name for name in (*FAILED, *VALID) if name.endswith((".mp4", ".png"))]
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in files]
    rows.append(
        {
            "sample_id": "past_end",
            "video_path": "good.mp4",
            "text": "ends past the end",  # 8 frames = 0.32 s
            "start_s": "0.2",
            "end_s": "5.0",
        }
    )
    rows.append(
        {
            "sample_id": "after_end",
            "video_path": "good.mp4",
            "text": "starts after the end",
            "start_s": "1.0",
            "end_s": "2.0",
        }
    )
    return rows


@pytest.fixture
def bad_project(tmp_path, bad_video_dir, chdir) -> Path:
    shutil.copytree(bad_video_dir, tmp_path / "data")
    write_csv_manifest(tmp_path, _rows(), root="data", extra_params=FAST)
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    return tmp_path


def test_probe_records_every_bad_video_and_processes_every_valid_one(bad_project, capsys):
    failures = len(FAILED)
    assert main(["run", "probe", "--no-progress", "--max-failures", str(failures - 1)]) == 1
    err = capsys.readouterr().err
    assert f"{failures} of {failures + len(VALID)} item(s) failed (" in err
    assert f"more than runtime.max_failures = {failures - 1}" in err
    view = view_rows("probe")
    assert len(view) == len(FAILED) + len(VALID)  # the rest of the manifest completed
    assert {sid: view[sid]["probe_reason"] for sid in FAILED} == FAILED
    assert all(view[sid]["probe_status"] == "failed" for sid in FAILED)
    for sid, (width, height, frames, fps) in VALID.items():
        row = view[sid]
        assert row["probe_status"] == "ok", row
        assert (row["width"], row["height"], row["num_frames"]) == (width, height, frames), sid
        assert row["fps"] == pytest.approx(fps, rel=1e-3), sid  # VFR: the average rate, frames / duration
    assert view["past_end"]["clamped"] and view["past_end"]["first_frame"] == 5  # probe.out_of_range: clamp
    assert (view["rotated90.mp4"]["rotation"], view["good.mp4"]["rotation"]) == (90, 0)  # NVDEC's choice reads these
    assert (view["ten_bit.mp4"]["pix_fmt"], view["ten_bit.mp4"]["bit_depth"]) == ("yuv420p10le", 10)
    assert (view["odd_321x241.mp4"]["chroma"], view["good.mp4"]["chroma"]) == ("4:4:4", "4:2:0")
    assert not view["good.mp4"]["clamped"]
    assert main(["cache", "failures", "probe"]) == 0
    listed = capsys.readouterr().out
    for sid, reason in FAILED.items():
        assert sid in listed and reason in listed
    assert main(["run", "probe", "--no-progress", "--max-failures", str(failures)]) == 0  # failures are remembered


def test_clip_past_the_end_fails_with_its_reason_when_asked(bad_project, capsys):
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1", "--set", "probe.out_of_range=fail"]) == 0
    view = view_rows("probe")
    assert view["past_end"]["probe_status"] == "failed" and view["past_end"]["probe_reason"] == "clip_out_of_range"
    assert main(["cache", "failures", "probe"]) == 0
    assert "clip ends at 5.0 s (frame 125) but the video has 8 frames" in capsys.readouterr().out


def test_rotated_and_ten_bit_frames_decode_upright_as_8_bit_rgb(bad_video_dir):
    import av

    with av.open(str(bad_video_dir / "rotated90.mp4")) as container:
        stored = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with DecodeService(timeout_s=60) as decoder:
        rotated = decoder.read_frames(bad_video_dir / "rotated90.mp4", np.array([0, 7]))
        ten_bit = decoder.read_frames(bad_video_dir / "ten_bit.mp4", np.arange(4))
    assert rotated.shape == (2, 32, 24, 3)
    np.testing.assert_array_equal(rotated[0], np.rot90(stored[0]))  # the display matrix turns it 90 degrees left
    np.testing.assert_array_equal(rotated[1], np.rot90(stored[7]))
    assert ten_bit.shape == (4, 24, 32, 3) and ten_bit.dtype == np.uint8 and ten_bit.std() > 30  # noise, not black


def test_finalize_fails_loudly_when_an_item_is_neither_stored_nor_failed(bad_project, capsys):
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1"]) == 0
    for part in Path("cache/probe").glob("*/failures/*.parquet"):
        part.unlink()  # the failures table is lost: those items are now unaccounted for
    capsys.readouterr()
    assert main(["finalize", "probe"]) == 3
    err = capsys.readouterr().err
    assert f"{len(FAILED) - 1} item(s) are neither in the store nor in the failures table" in err  # missing.mp4
    assert "after_end" in err or "..." in err


DEADLOCK = textwrap.dedent('''
    """Test stand-in for decord's deadlock (dmlc/decord#373): get_batch blocks in C, holding the GIL,
    on files named deadlock*. Only on PYTHONPATH in the decoder children of one test."""
    import ctypes
    import os

    import decord

    _init, _get_batch = decord.VideoReader.__init__, decord.VideoReader.get_batch


    def __init__(self, uri, *args, **kwargs):
        self.seds_test_name = os.path.basename(str(uri))
        _init(self, uri, *args, **kwargs)


    def get_batch(self, indices):
        if self.seds_test_name.startswith("deadlock"):
            ctypes.PyDLL(None).pause()  # PyDLL keeps the GIL: no Python-level timeout could end this
        return _get_batch(self, indices)


    decord.VideoReader.__init__, decord.VideoReader.get_batch = __init__, get_batch
''')


def test_a_decoder_that_deadlocks_holding_the_gil_becomes_a_decode_timeout(
    tmp_path, bad_video_dir, make_video, chdir, monkeypatch, capsys
):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(DEADLOCK)
    monkeypatch.setenv("PYTHONPATH", str(shim))  # the decoder children are the only Python started below
    data = tmp_path / "data"
    data.mkdir()
    make_video(data / "deadlock.mp4", frames=5)  # its own content: a copy of good.mp4 would share its key
    for name in ("good.mp4", "one_frame.mp4"):
        shutil.copy(bad_video_dir / name, data / name)
    rows = [{"video_path": name, "text": name} for name in ("good.mp4", "deadlock.mp4", "one_frame.mp4")]
    write_csv_manifest(
        tmp_path, rows, root="data", extra_params={"runtime": {"decode_timeout_s": 2, "chunk_items": 64}}
    )
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress"]) == 1  # runtime.max_failures: 0
    assert "3 items: 2 computed, 0 reused, 1 failed (decode_timeout: 1)" in capsys.readouterr().out
    view = view_rows("probe")
    assert view["deadlock.mp4"]["probe_reason"] == "decode_timeout"
    assert view["good.mp4"]["num_frames"] == 8 and view["one_frame.mp4"]["num_frames"] == 1  # after the kill


POSE = {
    "checkpoint": "random",
    "frames": "uniform",
    "frames_value": 2,
    "flip_test": False,
    "batch_size": 8,
    "chunk_frames": 8,
}
RGB = {"size": 32, "resize": 32, "window": 4, "num_windows": 2, "batch_size": 8}


@pytest.mark.slow
def test_pose_and_rgb_survive_a_manifest_of_good_bad_and_changed_clips(tmp_path, bad_video_dir, chdir, capsys):
    files = [
        "good.mp4",
        "one_frame.mp4",
        "odd_321x241.mp4",
        "rotated90.mp4",
        "vfr.mp4",
        "ten_bit.mp4",
        "cut50.mp4",
        "random.mp4",
        "missing.mp4",
    ]
    shutil.copytree(bad_video_dir, tmp_path / "data")
    write_csv_manifest(tmp_path, _rows(files), root="data", extra_params={**FAST, "pose": POSE, "rgb": RGB})
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1"]) == 0
    probe_failed = {"cut50.mp4", "random.mp4", "missing.mp4", "after_end"}
    # Accepted by probe, changed afterwards: cut short, and replaced by bytes that are no video.
    good = Path("data/good.mp4").read_bytes()
    Path("data/good.mp4").write_bytes(good[: len(good) // 3])
    Path("data/ten_bit.mp4").write_bytes(b"\0" * 999)
    changed = {"good.mp4", "past_end", "ten_bit.mp4"}  # past_end is a range of good.mp4
    decodable = {"one_frame.mp4", "odd_321x241.mp4", "rotated90.mp4", "vfr.mp4"}
    for stage in ("pose", "rgb"):
        assert main(["run", stage, "--no-progress"]) == 1  # runtime.max_failures: 0
        assert main(["run", stage, "--no-progress", "--max-failures", str(len(changed))]) == 0  # remembered
        view = view_rows(stage)
        assert len(view) == len(files) + 2
        assert {sid for sid, r in view.items() if r[f"{stage}_status"] == "ok"} == decodable, stage
        assert {sid for sid, r in view.items() if r[f"{stage}_status"] == "upstream_failed"} == probe_failed, stage
        failed = {sid: r[f"{stage}_reason"] for sid, r in view.items() if r[f"{stage}_status"] == "failed"}
        assert failed == dict.fromkeys(changed, "changed_since_probe"), stage  # refused before decoding
    assert view_rows("pose")["rotated90.mp4"]["width"] == 24  # frames reach pose upright (24 wide, 32 high)
