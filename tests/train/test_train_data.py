"""Reading clips from the store views: alignment rule, temporal sampling, skipping, RGB mixing, batching."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.store.layout import StoreError
from pipeline.train.data import (ClipDataset, EpochBatches, RgbSource, align_to_windows, choose_steps, load_clips,
                                 random_swap, read_clip)

from train_support import build_store


def test_alignment_takes_the_pose_frame_nearest_each_window_centre():
    pose_frames = np.array([0, 4, 8, 12])
    windows = np.array([[0, 1, 2, 3],      # centre 1.5 -> frame 0
                        [1, 2, 3, 4],      # centre 2.5 -> frame 4 (|2.5-4| < |2.5-0|)
                        [4, 5, 6, 7],      # centre 5.5 -> frame 4
                        [5, 6, 7, 8],      # centre 6.5 -> frame 8
                        [4, 5, 6, 8]])     # centre 6.0 -> tie between 4 and 8: the earlier, 4
    assert align_to_windows(pose_frames, windows).tolist() == [0, 1, 1, 2, 1]
    far = np.array([[100, 101]])
    assert align_to_windows(pose_frames, far).tolist() == [3]


def test_temporal_sampling():
    assert choose_steps(5, 8, None).tolist() == [0, 1, 2, 3, 4]           # fewer: all (then padded)
    assert choose_steps(10, 4, None).tolist() == [0, 3, 6, 9]             # evaluation: evenly spaced
    picked = choose_steps(100, 8, np.random.default_rng(1))
    assert len(picked) == 8 and len(set(picked.tolist())) == 8 and (np.diff(picked) > 0).all()
    again = choose_steps(100, 8, np.random.default_rng(1))
    assert picked.tolist() == again.tolist()


def test_random_swap_permutes_words_reproducibly():
    text = "the quick brown fox jumps over the lazy dog today"
    out = random_swap(text, 0.2, np.random.default_rng(3))
    assert sorted(out.split()) == sorted(text.split()) and out != text
    assert out == random_swap(text, 0.2, np.random.default_rng(3))
    assert random_swap("hello", 0.5, np.random.default_rng(0)) == "hello"


def test_epoch_batches_are_seeded_and_skip_done_batches():
    assert EpochBatches.count(10, 4) == 3      # 4 + 4 + 2
    assert EpochBatches.count(9, 4) == 2       # a last batch of one clip is dropped
    full = list(EpochBatches(10, 4, seed=5, epoch=2))
    assert sorted(i for b in full for i in b) == list(range(10))
    assert list(EpochBatches(10, 4, seed=5, epoch=2, start=1)) == full[1:]
    assert full != list(EpochBatches(10, 4, seed=5, epoch=3))


def test_load_clips_skips_failed_items_and_reads_aligned_arrays(tmp_path):
    build_store(tmp_path, sentences=3, splits=("train", "test"), fail=("s001_r0",))
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    assert [c.sample_id for c in clips.clips] == ["s000_r0", "s002_r0"]
    assert clips.skipped == {"select not ok": 1}
    assert clips.spans == {"body": (0, 7), "left_hand": (7, 28), "right_hand": (28, 49)}
    clip = read_clip(clips, clips.clips[0], with_scores=True, alpha=0.0)
    windows = clips.rgb_readers[0].read(clips.clips[0].rgb_keys[0], ["windows"])["windows"]
    assert clip.keypoints.shape == (len(windows), 49, 3) and clip.rgb.shape == (len(windows), 1024)
    dataset = ClipDataset(clips, steps=8, train=False, seed=0)
    item = dataset[0]
    assert item["keypoints"].shape == (8, 49, 2) and item["step_mask"].all()
    with pytest.raises(StoreError, match="no usable clips of split 'nope'"):
        load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "nope")


def test_two_rgb_views_are_mixed_with_alpha(tmp_path):
    build_store(tmp_path, sentences=2, splits=("train",), rgb_stages=("rgb", "rgb_agnostic"))
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb", str(tmp_path / "manifests" / "rgb_agnostic.parquet")],
                       "train")
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


def test_padding_when_a_clip_has_fewer_steps(tmp_path):
    build_store(tmp_path, sentences=2, splits=("train",))
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    dataset = ClipDataset(clips, steps=200, train=True, seed=0)
    item = dataset[0]
    n = int(item["step_mask"].sum())
    assert 0 < n < 200 and not item["joint_mask"][n:].any() and float(item["rgb"][n:].abs().sum()) == 0.0
