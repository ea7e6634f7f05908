"""probe on the real test videos and on broken copies: metadata right, failures recorded with reasons."""

from __future__ import annotations

import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.cli import main
from pipeline.store.records import ItemFailed
from pipeline.video.decode import frame_folder_images, frame_order
from pipeline.video.service import DecodeService
from tests_support import write_csv_manifest

EXPECTED = {  # from ../shared/testdata/SOURCES.md
    "slp-pose__test_video.mp4": dict(width=540, height=720, num_frames=58, fps=359 / 12),
    "mmaction2__test.avi": dict(width=320, height=240, num_frames=164, fps=25.0),
    "mmpose__demo.mp4": dict(width=960, height=540, num_frames=5, fps=5.0),
}
STREAM_FORMAT = {  # (codec, profile, pix_fmt, chroma, bit_depth, rotation), as FFmpeg reads the files
    "slp-pose__test_video.mp4": ("h264", "High", "yuvj420p", "4:2:0", 8, 0),
    "mmaction2__test.avi": ("mpeg4", "Advanced Simple Profile", "yuv420p", "4:2:0", 8, 0),
    "mmpose__demo.mp4": ("h264", "High", "yuv420p", "4:2:0", 8, 0),
}


@pytest.fixture
def broken_videos_project(tmp_path, testdata, chdir):
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for name in EXPECTED:
        os.symlink(testdata / "videos" / name, root / name)
        rows.append({"video_path": name, "text": f"real clip {name}"})
    (root / "empty.mp4").write_bytes(b"")
    original = (testdata / "videos" / "slp-pose__test_video.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(original[: len(original) // 2])
    (root / "notes.mp4").write_text("this is a text file, not a video\n" * 20)
    for name in ("empty.mp4", "truncated.mp4", "notes.mp4", "missing.mp4"):
        rows.append({"video_path": name, "text": f"broken {name}"})
    rows.append(
        {
            "video_path": "mmaction2__test.avi",
            "text": "a range past the end",
            "sample_id": "late",
            "start_s": "6.0",
            "end_s": "9.0",
        }
    )
    rows.append(
        {
            "video_path": "mmaction2__test.avi",
            "text": "starts after the end",
            "sample_id": "after",
            "start_s": "8.0",
            "end_s": "9.0",
        }
    )
    write_csv_manifest(tmp_path, rows, root="data")
    return chdir(tmp_path)


def test_probe_records_metadata_and_failures(broken_videos_project):
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1"]) == 0
    view = {r["sample_id"]: r for r in pq.read_table("manifests/probe.parquet").to_pylist()}
    for name, expected in EXPECTED.items():
        row = view[name]
        assert row["probe_status"] == "ok", row
        assert (row["width"], row["height"], row["num_frames"]) == (
            expected["width"],
            expected["height"],
            expected["num_frames"],
        )
        assert row["fps"] == pytest.approx(expected["fps"], rel=1e-4)
        assert row["duration_s"] == pytest.approx(expected["num_frames"] / expected["fps"], rel=1e-4)
        columns = ("codec", "profile", "pix_fmt", "chroma", "bit_depth", "rotation")
        assert tuple(row[c] for c in columns) == STREAM_FORMAT[name]  # what NVDEC's per-clip choice reads
    reasons = {
        sid: view[sid]["probe_reason"] for sid in ("empty.mp4", "truncated.mp4", "notes.mp4", "missing.mp4", "after")
    }
    assert reasons == {
        "empty.mp4": "empty_file",
        "truncated.mp4": "truncated",
        "notes.mp4": "not_a_video",
        "missing.mp4": "missing_file",
        "after": "clip_out_of_range",
    }
    late = view["late"]  # 6.0-9.0 s of a 6.56 s video: clamped and flagged (probe.out_of_range: clamp)
    assert late["probe_status"] == "ok" and late["clamped"] and late["first_frame"] == 150 and late["num_frames"] == 14


def test_probe_exit_code_follows_max_failures(broken_videos_project, capsys):
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "4"]) == 1  # 5 of 9 fail here
    err = capsys.readouterr().err
    assert "5 of 9 item(s) failed (" in err and "empty_file: 1" in err and "more than runtime.max_failures = 4" in err
    assert "seds cache failures probe lists each" in err
    assert main(["run", "probe", "--no-progress", "--max-failures", "4"]) == 1  # failures are remembered
    assert main(["run", "probe", "--no-progress", "--max-failures", "5"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "0.5"]) == 1  # a fraction: 4 of 9 allowed
    assert "more than runtime.max_failures = 0.5 (4 of 9)" in capsys.readouterr().err
    assert main(["run", "probe", "--no-progress", "--max-failures", "0.6"]) == 0  # 5 of 9 allowed
    assert main(["run", "probe", "--no-progress", "--max-failures", "1.5"]) == 2
    assert "neither a whole number of items nor a fraction between 0 and 1" in capsys.readouterr().err


def test_a_run_in_which_every_item_failed_exits_non_zero_whatever_max_failures_says(tmp_path, chdir, capsys):
    """max_failures counts failures a run may tolerate; a stage that produced nothing at all is never a
    success (the next stage would stop with a message about its own input instead)."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "empty.mp4").write_bytes(b"")
    (tmp_path / "data" / "notes.mp4").write_text("not a video\n")
    write_csv_manifest(tmp_path, [{"video_path": n, "text": n} for n in ("empty.mp4", "notes.mp4")], root="data")
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1"]) == 1
    err = capsys.readouterr().err
    assert "probe produced no item: all 2 failed (empty_file: 1, not_a_video: 1)" in err


def test_without_a_bar_a_progress_line_comes_every_so_often(broken_videos_project, capsys):
    """Under DVC (`--no-progress`) or in a batch log there is no bar; a line says how far the run is."""
    assert main(["manifest"]) == 0
    assert main(["run", "probe", "--no-progress", "--max-failures", "-1", "--set", "runtime.progress_every_s=0.1"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("probe: ")]
    assert lines, "no progress line"
    done, total = map(int, lines[-1].split(" items")[0].split(": ")[1].split("/"))
    assert total == 8 and 0 <= done <= 8  # the 9 rows but missing.mp4, recorded at planning, never computed
    assert " items/s, ETA " in lines[-1] and " failed, " in lines[-1] and lines[-1].endswith(" elapsed")


def test_out_of_range_fail_mode(broken_videos_project):
    assert main(["manifest"]) == 0
    main(["run", "probe", "--no-progress", "--max-failures", "-1", "--set", "probe.out_of_range=fail"])
    view = {r["sample_id"]: r for r in pq.read_table("manifests/probe.parquet").to_pylist()}
    assert view["late"]["probe_status"] == "failed" and view["late"]["probe_reason"] == "clip_out_of_range"


def test_decode_service_times_out_on_a_hanging_source(tmp_path, testdata):
    fifo = tmp_path / "hangs.mp4"
    os.mkfifo(fifo)  # opening a FIFO with no writer blocks forever: a stand-in for a decoder deadlock
    with DecodeService(timeout_s=3) as decoder:
        hanging = decoder.submit_probe(fifo)
        after = decoder.submit_frames(testdata / "videos" / "mmpose__demo.mp4", np.array([0, 4]))
        with pytest.raises(ItemFailed) as err:
            decoder.probe(hanging)
        assert err.value.reason == "decode_timeout"
        assert decoder.frames(after).shape == (2, 540, 960, 3)  # the next request gets a fresh decoder


def test_frames_are_decoded_once_and_returned_in_request_order(testdata):
    path = testdata / "videos" / "mmaction2__test.avi"
    with DecodeService() as decoder:
        frames = decoder.read_frames(path, np.array([10, 3, 10, 163]))
        single = decoder.read_frames(path, np.array([3]))
    assert frames.shape == (4, 240, 320, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(frames[1], single[0])
    np.testing.assert_array_equal(frames[0], frames[2])


def test_a_folder_of_png_frames_decodes_in_the_decoder_child(tmp_path):
    """PHOENIX-2014T clips are folders of PNGs. The decoder child imports decord, whose bundled libpng made
    cv2.imread fail on every PNG when it was loaded first: such clips failed as not_a_video."""
    import cv2

    folder = tmp_path / "01April_2010_Thursday_heute-6704"
    folder.mkdir()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 26, 21, 3), dtype=np.uint8)  # RGB, 210x260 scaled down
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / f"images{i + 1:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    with DecodeService() as decoder:
        info, error = decoder.probe(decoder.submit_probe(folder, True))
        decoded = decoder.read_frames(folder, np.array([2, 0]))
    assert error is None and info["video_frames"] == 3 and (info["width"], info["height"]) == (21, 26)
    np.testing.assert_array_equal(decoded, frames[[2, 0]])  # PNG is lossless: the very pixels


def test_frame_files_are_in_the_order_of_the_numbers_in_their_names(tmp_path):
    """The release sorts a clip's frames by their number: PHOENIX's `int(name.split('.')[0][6:])`
    (dataloader_ph_retrieval_pose.py:403), CSL-Daily's and How2Sign's `int(name.split('.')[0].split('_')[-1])`
    (dataloader_csl_retrieval_pose.py:407). Ours agrees with both, and with name order for padded numbers."""
    import cv2

    phoenix = [f"images{i}.png" for i in (10, 2, 1, 300, 30)]
    assert sorted(phoenix, key=frame_order) == sorted(phoenix, key=lambda x: int(x.split(".")[0][6:]))
    csl = [f"S000001_P0003_T00_{i}.jpg" for i in (11, 0, 9, 100)]
    assert sorted(csl, key=frame_order) == sorted(csl, key=lambda x: int(x.split(".")[0].split("_")[-1]))
    padded = [f"images{i:04d}.png" for i in (12, 3, 100, 1)] + [f"{i:06d}.jpg" for i in (7, 70, 0)]
    assert sorted(padded, key=frame_order) == sorted(padded)
    folder = tmp_path / "unpadded"
    folder.mkdir()
    for i in (1, 2, 10):  # name order would decode images10 second
        assert cv2.imwrite(str(folder / f"images{i}.png"), np.full((4, 4, 3), i, np.uint8))
    assert [p.name for p in frame_folder_images(folder)] == ["images1.png", "images2.png", "images10.png"]
    with DecodeService() as decoder:
        assert decoder.read_frames(folder, np.array([0, 1, 2]))[:, 0, 0, 0].tolist() == [1, 2, 10]
