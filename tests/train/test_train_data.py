"""Reading clips from the store views: window frames (rgb-aligned and the release's kept-frame windows),
short clips padded with copies of their last frame, window thinning, padding, skipping (the release's
rules included), RGB mixing, the authors' one-clip-per-sentence epochs, text augmentation."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from train_support import WINDOW, build_store

from pipeline.store.layout import StoreError
from pipeline.train.data import (
    ClipDataset,
    EpochBatches,
    RgbSource,
    collate,
    load_clips,
    random_swap,
    read_clip,
    window_frames,
)
from pipeline.train.groups import sentence_groups
from pipeline.train.loop import _augmented
from pipeline.train.params import TrainParams


def test_window_frames_are_the_same_frames_or_the_nearest_kept_one():
    kept = np.array([0, 2, 4, 6, 10])
    windows = np.array(
        [
            [0, 1, 2, 3],  # 1 -> tie between 0 and 2: the earlier; 3 -> tie 2/4: 2
            [4, 5, 6, 7],  # 7 -> 6
            [8, 9, 10, 11],
        ]
    )  # 8 -> tie 6/10: 6; 9 -> 10; 11 -> 10 (the last)
    assert window_frames(kept, windows).tolist() == [[0, 0, 1, 1], [2, 2, 3, 3], [3, 4, 4, 4]]
    every = np.arange(20)
    assert window_frames(every, windows).tolist() == windows.tolist()  # nothing dropped: the frames themselves


def test_sentence_groups_pair_each_sentence_with_its_clips():
    texts = ["a b", "c", "a b ", "d", "c"]
    assert sentence_groups(texts).members == [[0, 2], [1, 4], [3]]
    assert sentence_groups(texts, ["s1", "s2", "s3", "s4", "s2"]).members == [[0], [1, 4], [2], [3]]


def test_epochs_visit_each_sentence_once_with_a_seeded_clip():
    groups = [[0, 1], [2, 3], [4], [5, 6, 7]]
    epoch = [i for b in EpochBatches(groups, 2, seed=5, epoch=2) for i in b]
    assert len(epoch) == 4 and sorted(next(g for g in groups if i in g)[0] for i in epoch) == [0, 2, 4, 5]
    assert epoch == [i for b in EpochBatches(groups, 2, seed=5, epoch=2) for i in b]  # seeded
    picks = {tuple(sorted(i for b in EpochBatches(groups, 4, seed=5, epoch=e) for i in b)) for e in range(12)}
    assert len(picks) > 1  # redrawn per epoch
    assert list(EpochBatches(groups, 2, seed=5, epoch=2, start=1)) == list(EpochBatches(groups, 2, 5, 2))[1:]
    assert EpochBatches.count(10, 4) == 3 and EpochBatches.count(9, 4) == 2  # a last batch of one is dropped


def test_random_swap_and_its_probability():
    text = "the quick brown fox jumps over the lazy dog today"
    once = random_swap(text, 1, np.random.default_rng(3))
    assert sorted(once.split()) == sorted(text.split())
    assert sum(a != b for a, b in zip(once.split(), text.split())) == 2  # one swap: exactly two positions
    assert random_swap("hello", 1, np.random.default_rng(0)) == "hello"
    # textaugment's swap_word gives up when its first three second draws all equal the first: a 2-word
    # sentence stays as it is with probability (1/2)^3 = 1/8 (4,000 draws: 500 expected, sd 21)
    rng = np.random.default_rng(11)
    kept = sum(random_swap("hello you", 1, rng) == "hello you" for _ in range(4000))
    assert 430 < kept < 570
    p = TrainParams(augment_p=0.5, swaps=1)
    texts = [f"w{i} x{i} y{i} z{i}" for i in range(400)]
    changed = sum(a != b for a, b in zip(_augmented(texts, p, step=7), texts))
    assert 160 < changed < 240  # about half, p = 0.5
    assert _augmented(texts, p, step=7) == _augmented(texts, p, step=7)
    assert _augmented(texts, TrainParams(text_augment="none"), step=7) == texts


def test_load_clips_reads_every_kept_frame_and_the_rgb_windows(tmp_path):
    build_store(tmp_path, sentences=3, splits=("train", "test"), fail=("s001_r0",))
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    assert [c.sample_id for c in clips.clips] == ["s000_r0", "s002_r0"]
    assert clips.skipped == {"select not ok": 1}
    assert clips.spans == {"body": (0, 7), "left_hand": (7, 28), "right_hand": (28, 49)}
    pose = clips.pose_reader.read(clips.clips[0].pose_key, ["keypoints", "frames"])
    rgb = clips.rgb_readers[0].read(clips.clips[0].rgb_keys[0], ["windows"])["windows"]
    clip = read_clip(clips, clips.clips[0], with_scores=True, alpha=0.0)
    assert clip.keypoints.shape == (len(pose["frames"]), 49, 3) and clip.windows.shape == (len(rgb), WINDOW)
    np.testing.assert_array_equal(clip.keypoints[..., :2], pose["keypoints"])
    # pose keeps every other clip frame; each window frame maps to the kept frame nearest it
    expected = window_frames(pose["frames"], rgb)
    np.testing.assert_array_equal(clip.windows, expected)
    assert np.abs(pose["frames"][clip.windows] - rgb).max() <= 1
    with pytest.raises(StoreError, match=r"holds no clip of split 'nope' \(its splits: test, train\)"):
        load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "nope")


def test_a_split_whose_clips_all_failed_upstream_says_which_stage_failed_and_why(tmp_path):
    """Not "check the split name": the clips are there, their select items failed; the message counts
    them by reason and says where each failure is listed."""
    build_store(tmp_path, sentences=3, splits=("train", "test"), fail=("s000_r0", "s001_r0", "s002_r0"))
    with pytest.raises(StoreError) as err:
        load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    assert (
        "no usable clip of split 'train'" in str(err.value)
        and "of its 3 clip(s), 3 have no select item (error: 3)" in str(err.value)
        and "seds cache failures select lists each clip" in str(err.value)
    )


def test_windows_beyond_steps_are_thinned_evenly_and_fewer_are_padded(tmp_path):
    build_store(tmp_path, sentences=2, splits=("train",))
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    clip = read_clip(clips, clips.clips[0], with_scores=False, alpha=0.0)
    n = len(clip.windows)
    thinned = ClipDataset(clips, steps=4)[0]
    keep = np.linspace(0, n - 1, 4, dtype=int)
    np.testing.assert_array_equal(thinned["windows"].numpy(), clip.windows[keep])
    padded = ClipDataset(clips, steps=n + 5)[0]
    assert (padded["windows"][n:] == -1).all() and float(padded["rgb"][n:].abs().sum()) == 0.0
    np.testing.assert_allclose(padded["rgb"][:n].numpy(), clip.rgb)


def test_collate_pads_frames_with_zeros_at_the_end(tmp_path):
    build_store(tmp_path, sentences=3, splits=("train",), seed=4)
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    dataset = ClipDataset(clips, steps=8)
    items = [dataset[i] for i in range(3)]
    batch = collate(items)
    lengths = [it["keypoints"].shape[0] for it in items]
    assert batch["keypoints"].shape[:2] == (3, max(lengths)) and len(set(lengths)) > 1
    for row, length in enumerate(lengths):
        assert torch.equal(batch["keypoints"][row, :length], items[row]["keypoints"])
        assert float(batch["keypoints"][row, length:].abs().sum()) == 0.0
    assert batch["index"].tolist() == [0, 1, 2]


def test_two_rgb_views_are_mixed_with_alpha(tmp_path):
    build_store(tmp_path, sentences=2, splits=("train",), rgb_stages=("rgb", "rgb_agnostic"))
    clips = load_clips(
        tmp_path / "manifests",
        tmp_path / "cache",
        "select",
        ["rgb", str(tmp_path / "manifests" / "rgb_agnostic.parquet")],
        "train",
    )
    clip = clips.clips[0]
    aware = clips.rgb_readers[0].read(clip.rgb_keys[0], ["features"])["features"].astype(np.float32)
    agnostic = clips.rgb_readers[1].read(clip.rgb_keys[1], ["features"])["features"].astype(np.float32)
    mixed = read_clip(clips, clip, with_scores=False, alpha=0.8).rgb
    np.testing.assert_allclose(mixed, 0.2 * aware + 0.8 * agnostic, rtol=1e-6)


def test_rgb_feature_sets_are_read_by_item_key(tmp_path):
    """`set:NAME` sources address items as pipeline.rgb.sets does: item_key(content hash, bounds, fingerprint)."""
    made = build_store(tmp_path, sentences=2, splits=("train",))
    by_view = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    reader = by_view.rgb_readers[0]
    source = RgbSource("set:default", reader, fingerprint=made["rgb_fingerprints"][0])
    pose_rows = pq.read_table(tmp_path / "manifests" / "select.parquet").to_pylist()
    assert [source.key(r) for r in pose_rows] == [c.rgb_keys[0] for c in by_view.clips]
    other = RgbSource("set:other", reader, fingerprint="0" * 32)
    assert other.key(pose_rows[0]) is None  # not computed for that set: the clip is left out
