"""The sample renderer in each dataset's own files (`sample.layout`): the real importers read them, and
the frame folders decode to the frames whose keypoints the ground truth holds."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline.config import ParamError, build_section
from pipeline.manifest.build import build_manifest
from pipeline.manifest.params import DataParams
from pipeline.sample.generate import SampleParams, generate
from pipeline.sample.glosses import GLOSSES
from pipeline.sample.layouts import CHINESE
from pipeline.video.decode import frame_folder_images
from pipeline.video.service import DecodeService

TINY = dict(
    sentences=2, renders=["train", "dev", "test"], width=64, height=80, gloss_frames=4, min_glosses=1, max_glosses=2
)


def _render(tmp_path, layout: str) -> tuple[dict, object]:
    out = tmp_path / layout
    return generate(SampleParams(out=str(out), layout=layout, **TINY)), out


def test_phoenix_layout_is_png_frame_folders_and_official_corpus_files(tmp_path):
    summary, out = _render(tmp_path, "phoenix2014t")
    assert summary["splits"] == {"train": 2, "dev": 2, "test": 2}
    corpus = out / "annotations/manual/PHOENIX-2014-T.dev.corpus.csv"
    assert corpus.read_text().splitlines()[1].startswith("sample000_1|sample000_1/1/*.png|-1|-1|Signer02|")
    data = DataParams(
        root=str(out),
        annotations=[
            {
                "format": "phoenix_corpus",
                "file": str(out / f"annotations/manual/PHOENIX-2014-T.{s}.corpus.csv"),
                "split": s,
            }
            for s in ("train", "dev", "test")
        ],
    )
    rows = build_manifest(data).to_pylist()
    assert [r["video_path"] for r in rows][:3] == [
        "features/fullFrame-210x260px/train/sample000_0",
        "features/fullFrame-210x260px/train/sample001_0",
        "features/fullFrame-210x260px/dev/sample000_1",
    ]
    folder = out / rows[0]["video_path"]
    names = [p.name for p in frame_folder_images(folder)]
    with h5py.File(out / "keypoints.h5") as gt:
        assert len(names) == len(gt["sample000_0/keypoints"]) and names[0] == "images0001.png"
    with DecodeService() as decoder:
        info, error = decoder.probe(decoder.submit_probe(folder, True))
    assert error is None and (info["width"], info["height"], info["video_frames"]) == (64, 80, len(names))


def test_csl_daily_layout_is_jpeg_frame_folders_and_official_sentence_labels(tmp_path):
    summary, out = _render(tmp_path, "csl_daily")
    assert summary["clips"] == 6
    labels = out / "sentence_label"
    assert (labels / "split_1.txt").read_text().splitlines()[:2] == ["name|split", "S000000_P0000_T00|train"]
    data = DataParams(
        root=str(out),
        annotations=[
            {"format": "csl_daily", "file": str(labels / "split_1.txt"), "split": s} for s in ("train", "test")
        ],
    )
    rows = build_manifest(data).to_pylist()
    assert [r["sample_id"] for r in rows] == [
        "S000000_P0000_T00",
        "S000001_P0000_T00",
        "S000000_P0002_T00",
        "S000001_P0002_T00",
    ]
    first = rows[0]
    assert first["sentence_id"] == "S000000" and first["text"] == "".join(first["gloss"].split()) + "。"
    assert set(first["gloss"].split()) <= set(CHINESE.values())
    folder = out / first["video_path"]
    assert folder.parent.name == "frames_512x512" and frame_folder_images(folder)[0].name == "000000.jpg"
    with DecodeService() as decoder:
        frames = decoder.read_frames(folder, np.array([0]))
    assert frames.shape == (1, 80, 64, 3)


def test_the_how2sign_layout_is_unchanged_and_every_gloss_has_a_chinese_word(tmp_path):
    summary, out = _render(tmp_path, "how2sign")
    assert sorted(p.name for p in out.iterdir()) == [
        "SAMPLE.json",
        "how2sign_sample_dev.csv",
        "how2sign_sample_test.csv",
        "how2sign_sample_train.csv",
        "keypoints.h5",
        "sentence_clips",
    ]
    assert set(CHINESE) == set(GLOSSES)


def test_frame_folder_layouts_take_their_datasets_split_names():
    with pytest.raises(ParamError, match=r"sample.renders: phoenix2014t names its splits train, dev, test; got"):
        build_section(SampleParams, {"layout": "phoenix2014t", "renders": ["train", "val"]}, "sample")
