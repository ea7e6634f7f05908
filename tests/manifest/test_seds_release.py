"""The SEDS release's split files as an annotation source (pipeline/manifest/seds_release.py), on the
byte copies in ../shared/reference/seds_release_splits: their clip and sentence counts, How2Sign's
sentence ids kept apart where texts repeat, the clip paths the release reads, and every refusal
naming the file and key."""

from __future__ import annotations

import argparse
import pickle
from collections import Counter
from pathlib import Path

import pytest

from pipeline.manifest.build import build_manifest
from pipeline.manifest.importers import import_phoenix_parallel
from pipeline.manifest.params import DataParams
from pipeline.manifest.schema import ManifestError, validate_rows
from pipeline.manifest.seds_release import ReleaseClipDirs, import_seds_release
from pipeline.train.groups import sentence_groups
from tests_support import RELEASE_SPLITS, TESTDATA, shared_file

PHOENIX_DEV = TESTDATA / "annotations/phoenix2014T/phoenix2014T.dev"


def split_file(name: str) -> Path:
    return shared_file(
        RELEASE_SPLITS / f"{name}.pkl",
        f"the SEDS release's {name}.pkl",
        RELEASE_SPLITS,
        "byte copies of longtaojiang/SEDS's split files ship with the team's shared folder",
    )


def test_how2sign_test_split_keeps_its_sentence_ids():
    """1,964 sentence ids over 2,342 clips (How2Sign's CSV lists 2,357); 19 texts such as "Hi!" under 58 ids
    stay 58 sentences, where text grouping would merge them into 19."""
    rows = validate_rows(*import_seds_release(split_file("data_h2/test"), "test"))
    assert len(rows) == 2342 and len({r["sentence_id"] for r in rows}) == 1964
    assert Counter(Counter(r["sentence_id"] for r in rows).values()) == {1: 1619, 2: 312, 3: 33}
    first = rows[0]
    assert first["sample_id"] == "-fZc293MpJk_0-1-rgb_front" and first["sentence_id"] == "-fZc293MpJk_0"
    assert first["video_path"] == "sentence_clips/-fZc293MpJk_0-1-rgb_front.mp4" and first["text"] == "Hi!"
    assert first["release_video_name"] == "-fZc293MpJk-1-rgb_front_clip0" and first["release_num_frames"] == 328
    texts, ids = [r["text"] for r in rows], [r["sentence_id"] for r in rows]
    by_id, by_text = sentence_groups(texts, ids), sentence_groups(texts, ids, "text")
    assert (len(by_id.heads), len(by_text.heads)) == (1964, 1925) and by_id.by == "sentence_id"
    ids_of_text: dict[str, set[str]] = {}
    for text, sentence_id in zip(texts, ids):
        ids_of_text.setdefault(text, set()).add(sentence_id)
    shared = {t: s for t, s in ids_of_text.items() if len(s) > 1}
    assert len(shared) == 19 and sum(len(s) for s in shared.values()) == 58
    hi = [i for i, t in enumerate(texts) if t == "Hi!"]
    assert len({by_id.group[i] for i in hi}) == 7 and len({by_text.group[i] for i in hi}) == 1
    assert sum(r["release_num_frames"] < 16 for r in rows) == 50  # the clips shorter than one window


@pytest.mark.parametrize("name, entries", [("data_ph/train", 7096), ("data_ph/dev", 7615), ("data_ph/test", 642)])
def test_phoenix_splits_are_one_clip_per_sentence(name, entries):
    rows, _ = import_seds_release(split_file(name), "x")
    assert len(rows) == entries and len({r["sentence_id"] for r in rows}) == entries
    split_dir = name.split("/")[1]
    assert all(r["video_path"] == f"features/fullFrame-210x260px/{split_dir}/{r['sample_id']}" for r in rows)
    assert rows[0]["text"][0].isupper() and rows[0]["ori_text"] == rows[0]["ori_text"].lower()  # English; German


def test_phoenix_dev_pkl_is_the_train_split_followed_by_the_official_dev_split():
    """data_ph/dev.pkl holds 7,615 entries: train.pkl's 7,096, identical and in its order, then the 519
    clips of PHOENIX-2014T's official dev split (the names of the shared nslt dev files, their German
    sentences without the final " ."). The release's loaders never read it (docs/datasets.md)."""
    train, dev = (import_seds_release(split_file(f"data_ph/{s}"), s)[0] for s in ("train", "dev"))
    fields = ("sample_id", "sentence_id", "text", "ori_text", "release_num_frames")
    assert [[r[f] for f in fields] for r in dev[:7096]] == [[r[f] for f in fields] for r in train]
    shared_file(
        Path(f"{PHOENIX_DEV}.sign"),
        "PHOENIX-2014T's dev annotations",
        PHOENIX_DEV.parent,
        "the shared testdata (scripts/fetch_testdata.sh)",
    )
    official = validate_rows(*import_phoenix_parallel(PHOENIX_DEV, "dev"))
    extra = dev[7096:]
    assert len(extra) == 519 and sorted(r["sample_id"] for r in extra) == sorted(r["sample_id"] for r in official)
    german = {r["sample_id"]: r["text"] for r in official}
    assert all(german[r["sample_id"]] == r["ori_text"] + " ." for r in extra)
    test = {r["sample_id"] for r in import_seds_release(split_file("data_ph/test"), "test")[0]}
    assert not test & {r["sample_id"] for r in dev}


@pytest.mark.parametrize("name, sentences, clips", [("data_csl/train", 6598, 18401), ("data_csl/test", 798, 1176)])
def test_csl_splits_group_clips_by_sentence_and_choose_their_text(name, sentences, clips):
    rows, _ = import_seds_release(split_file(name), "x", dirs=ReleaseClipDirs(csl="frames"))
    assert len(rows) == clips and len({r["sentence_id"] for r in rows}) == sentences
    assert rows[0]["video_path"] == f"frames/{rows[0]['sample_id']}"
    assert all(r["sentence_id"] == r["sample_id"].split("_")[0] for r in rows)  # as the csl_daily format groups
    chinese, _ = import_seds_release(split_file(name), "x", "ori_text")
    assert [r["text"] for r in chinese] == [r["ori_text"] for r in rows] and chinese[0]["text"] != rows[0]["text"]


def test_build_manifest_records_the_annotation_source():
    file = str(split_file("data_h2/test"))
    data = DataParams(root="data", annotations=[{"format": "seds_release", "file": file, "split": "test"}], limit=5)
    table = build_manifest(data)
    assert table.column("annotation_source").to_pylist() == [f"seds_release {file}"] * 5
    assert table.column("sentence_id").to_pylist()[0] == "-fZc293MpJk_0"
    with pytest.raises(ManifestError, match="data.how2sign_clips: ranges cannot serve them"):
        build_manifest(DataParams(root="data", how2sign_clips="ranges", annotations=data.annotations))


def test_refusals_name_the_file_and_key(tmp_path):
    def write(name: str, value: object) -> Path:
        path = tmp_path / name
        path.write_bytes(pickle.dumps(value))
        return path

    with pytest.raises(ManifestError, match=r"evil.pkl: not a SEDS release split file .*refused global argparse"):
        import_seds_release(write("evil.pkl", {"k": [argparse.Namespace(text="Hi!")]}), "test")
    with pytest.raises(ManifestError, match=r"list.pkl: expected a non-empty dict"):
        import_seds_release(write("list.pkl", [1, 2]), "test")
    clip = {"text": "Hi!", "num_frames": 9, "video_name": "v", "new_video_name": "n"}
    with pytest.raises(ManifestError, match=r"mixed.pkl, key 'b': expected a list of clip dicts"):
        import_seds_release(write("mixed.pkl", {"a": [clip], "b": clip}), "test")
    with pytest.raises(ManifestError, match=r"short.pkl, key 'a': a clip has no 'new_video_name'"):
        import_seds_release(write("short.pkl", {"a": [clip, {"text": "Hi!", "video_name": "w"}]}), "test")
    with pytest.raises(ManifestError, match=r"h2.pkl: How2Sign's release split has English text only"):
        import_seds_release(write("h2.pkl", {"a": [clip]}), "test", "ori_text")
    with pytest.raises(ManifestError, match=r"absent.pkl: annotation file does not exist"):
        import_seds_release(tmp_path / "absent.pkl", "test")
