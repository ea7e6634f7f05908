"""The sample generator at How2Sign's format: 1280x720, 24 fps, clips as long as `sample.seconds` asks."""

from __future__ import annotations

import csv
import json

import h5py
import pytest

from pipeline.sample.generate import HOW2SIGN_LIKE, SampleParams, generate
from pipeline.video.decode import count_decodable

SECONDS = 3.0  # short, to keep the render cheap; the benchmarks use HOW2SIGN_LIKE's 7 s


@pytest.fixture(scope="module")
def clips_720p(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample720") / "sample"
    params = SampleParams(
        out=str(out),
        sentences=2,
        renders=["test"],
        min_glosses=3,
        max_glosses=3,
        **{**HOW2SIGN_LIKE, "seconds": SECONDS},
    )
    return out, generate(params)


def test_how2sign_like_clips_probe_as_720p_24fps(clips_720p):
    out, summary = clips_720p
    assert summary["clips"] == 2
    with open(out / "how2sign_sample_test.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    with h5py.File(out / "keypoints.h5") as gt:
        for row in rows:
            path = out / "sentence_clips" / f"{row['SENTENCE_NAME']}.mp4"
            info, error = count_decodable(path)
            assert error is None, error
            assert (info.width, info.height, info.fps) == (1280, 720, 24.0)
            frames = len(gt[row["SENTENCE_NAME"]]["keypoints"])
            assert info.video_frames == frames
            assert float(row["END_REALIGNED"]) == pytest.approx(frames / 24, abs=0.01)
            # a signer's speed (0.8-1.25x) scales the clip around `seconds`
            assert SECONDS / 1.25 - 0.5 <= frames / 24 <= SECONDS / 0.8 + 0.5


def test_seconds_sets_the_length_and_is_recorded(clips_720p, tmp_path):
    out, summary = clips_720p
    assert json.loads((out / "SAMPLE.json").read_text())["params"]["seconds"] == SECONDS
    longer = generate(
        SampleParams(
            out=str(tmp_path / "long"),
            sentences=2,
            renders=["test"],
            min_glosses=3,
            max_glosses=3,
            width=64,
            height=64,
            fps=24,
            seconds=2 * SECONDS,
        )
    )
    assert longer["frames"] > 1.7 * summary["frames"]
