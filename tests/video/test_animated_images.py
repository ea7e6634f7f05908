"""Animated GIF and WebP files are clips (sign-language dictionaries publish signs this way): probe,
pose and rgb decode them with their frame timing; a single-frame image is still refused. The images
are written here with Pillow: flat colours, so GIF's palette and lossless WebP keep every pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.cli import main
from pipeline.video.service import DecodeService
from tests_support import view_rows, write_csv_manifest

WIDTH, HEIGHT = 32, 24


def frames(n: int) -> list[np.ndarray]:
    """n distinct flat-colour RGB frames, each with a lighter square that moves."""
    out = []
    for i in range(n):
        frame = np.full((HEIGHT, WIDTH, 3), (i * 20 % 256, 255 - i * 20 % 256, i * 57 % 256), np.uint8)
        frame[4:12, i % 20 : i % 20 + 8] = 250
        out.append(frame)
    return out


def write_animation(path, n: int, durations_ms, **options) -> list[np.ndarray]:
    images = [Image.fromarray(f) for f in frames(n)]
    images[0].save(path, save_all=n > 1, append_images=images[1:], duration=durations_ms, loop=0, **options)
    return frames(n)


@pytest.fixture
def animations(tmp_path, chdir):
    data = tmp_path / "data"
    data.mkdir()
    write_animation(data / "sign.gif", 10, 40)  # 25 fps
    write_animation(data / "sign.webp", 10, 40, lossless=True)  # 25 fps
    write_animation(data / "uneven.gif", 10, [40] * 5 + [120] * 5)  # 10 frames in 0.8 s
    write_animation(data / "still.gif", 1, 40)
    write_animation(data / "still.webp", 1, 40, lossless=True)
    names = ["sign.gif", "sign.webp", "uneven.gif", "still.gif", "still.webp"]
    rows = [{"sample_id": name, "video_path": name, "text": name} for name in names]
    rows.append(
        {"sample_id": "sign.gif@0.1-0.3", "video_path": "sign.gif", "text": "part", "start_s": "0.1", "end_s": "0.3"}
    )
    write_csv_manifest(
        tmp_path,
        rows,
        root="data",
        extra_params={
            "runtime": {"chunk_items": 64},
            "pose": {"checkpoint": "random", "frames": "all", "flip_test": False, "batch_size": 8, "chunk_frames": 8},
            "rgb": {"size": 32, "resize": 32, "window": 4, "num_windows": 2, "batch_size": 8},
        },
    )
    chdir(tmp_path)
    assert main(["manifest"]) == 0
    return data


def test_animated_gif_and_webp_are_probed_with_their_timing_and_still_images_refused(animations, capsys):
    assert main(["run", "probe", "--no-progress", "--max-failures", "2"]) == 0
    view = view_rows("probe")
    for name, fps in (("sign.gif", 25.0), ("sign.webp", 25.0), ("uneven.gif", 12.5)):
        row = view[name]
        assert row["probe_status"] == "ok", row
        assert (row["video_frames"], row["num_frames"], row["width"], row["height"]) == (10, 10, WIDTH, HEIGHT), name
        assert row["fps"] == pytest.approx(fps) and row["duration_s"] == pytest.approx(10 / fps), name
        assert row["decoder"] == "pillow", name
    part = view["sign.gif@0.1-0.3"]
    assert (part["first_frame"], part["num_frames"]) == (3, 5)  # 0.1 s .. 0.3 s at 25 fps: frames 3..7 (0.12-0.28 s)
    assert {view[s]["probe_reason"] for s in ("still.gif", "still.webp")} == {"not_a_video"}
    assert main(["cache", "failures", "probe"]) == 0
    listed = capsys.readouterr().out
    assert "still.gif is a still image (gif), not a video" in listed
    assert "still.webp is a still image (webp_pipe), not a video" in listed


def test_animated_frames_decode_exactly_in_request_order(animations):
    expected = frames(10)
    with DecodeService(timeout_s=60) as decoder:
        for name in ("sign.gif", "sign.webp"):
            got = decoder.read_frames(animations / name, np.array([9, 0, 5, 5]))
            assert got.shape == (4, HEIGHT, WIDTH, 3) and got.dtype == np.uint8
            for frame, i in zip(got, (9, 0, 5, 5)):
                np.testing.assert_array_equal(frame, expected[i], err_msg=f"{name} frame {i}")


@pytest.mark.slow
def test_pose_and_rgb_compute_animated_clips(animations):
    assert main(["run", "probe", "--no-progress", "--max-failures", "2"]) == 0
    for stage in ("pose", "rgb"):
        assert main(["run", stage, "--no-progress"]) == 0
        view = view_rows(stage)
        assert {s for s, r in view.items() if r[f"{stage}_status"] == "ok"} == {
            "sign.gif",
            "sign.webp",
            "uneven.gif",
            "sign.gif@0.1-0.3",
        }, stage
        assert {s for s, r in view.items() if r[f"{stage}_status"] == "upstream_failed"} == {"still.gif", "still.webp"}
    pose = view_rows("pose")
    assert pose["sign.webp"]["width"] == WIDTH and pose["sign.gif"]["frames_sampled"] == 10
