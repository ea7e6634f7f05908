"""The release's loader rules in our data path, on hand-made clips whose keypoints name their frames
(train_support.write_clips: every keypoint of kept frame f is f + 1): last-frame copies for short clips,
kept-frame windows beside rgb-aligned ones, clips left out as the release's loaders would refuse them.
Expected values are worked by hand from dataloader_H2_retrieval_train_pose.py `_get_pose_clips`."""

from __future__ import annotations

import numpy as np
import pytest
from train_support import write_clips

from pipeline.rgb.windows import plan_windows
from pipeline.train.data import ClipDataset, ClipRules, collate, load_clips, read_clip

KEPT = ClipRules("kept_frames")
ALIGNED = ClipRules("rgb_aligned")


def _frames_read(root, rules: ClipRules, sample_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(window indices, the clip frame + 1 each index reads) of one clip."""
    clips = load_clips(root / "manifests", root / "cache", "select", ["rgb"], "train", rules=rules)
    clip = read_clip(clips, next(c for c in clips.clips if c.sample_id == sample_id), False, 0.0)
    return clip.windows, clip.keypoints[clip.windows][..., 0, 0]


def test_a_clip_shorter_than_a_window_gets_copies_of_its_last_frame(tmp_path):
    """3 frames, windows of 4: the rgb stage repeats frame 2 (window [0, 1, 2, 2]); the release appends a
    copy of the last frame and its window runs into it: indices [0, 1, 2, 3], frame 3 = frame 2's keypoints.
    The copy, not the batch's zeros, is what the temporal blocks see after the clip's end."""
    window = plan_windows(3, window=4, stride=1, max_frames=300, num_windows=4).windows
    assert window.tolist() == [[0, 1, 2, 2]]
    write_clips(
        tmp_path,
        [
            {"sample_id": "short", "frames": [0, 1, 2], "windows": window},
            {"sample_id": "long", "frames": np.arange(8), "windows": [[0, 1, 2, 3]]},
        ],
    )
    for rules in (KEPT, ALIGNED):
        index, read = _frames_read(tmp_path, rules, "short")
        assert index.tolist() == [[0, 1, 2, 3]] and read.tolist() == [[1, 2, 3, 3]]
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train", rules=ALIGNED)
    batch = collate([ClipDataset(clips, steps=2)[i] for i in range(2)])  # long (8 frames), short (4)
    short = batch["keypoints"][1, :, 0, 0].tolist()
    assert short == [1, 2, 3, 3, 0, 0, 0, 0]  # copies, then the batch's zeros


def test_kept_frame_windows_slide_over_the_kept_frames(tmp_path):
    """10 thinned frames, frame 3 dropped (9 kept), windows of 4 at stride 1, 4 rgb windows of the 7
    (linspace: starts 0, 2, 4, 6). The release slides over the 9 kept frames: starts 0..5, linspace to 4:
    0, 1, 3, 5, i.e. clip frames [0 1 2 4] [1 2 4 5] [4 5 6 7] [6 7 8 9]. rgb-aligned reads each rgb
    window's frames, the dropped frame 3 from frame 2 (the nearer, earlier on a tie)."""
    rgb = plan_windows(10, window=4, stride=1, max_frames=300, num_windows=4).windows
    assert rgb[:, 0].tolist() == [0, 2, 4, 6]
    kept = [0, 1, 2, 4, 5, 6, 7, 8, 9]
    write_clips(tmp_path, [{"sample_id": "dropped", "frames": kept, "windows": rgb}])
    index, read = _frames_read(tmp_path, KEPT, "dropped")
    assert index[:, 0].tolist() == [0, 1, 3, 5]
    assert (read - 1).tolist() == [[0, 1, 2, 4], [1, 2, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]
    _, read = _frames_read(tmp_path, ALIGNED, "dropped")
    assert (read - 1).tolist() == [[0, 1, 2, 2], [2, 2, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]


def test_no_dropped_frame_gives_the_same_windows_both_ways(tmp_path):
    rgb = plan_windows(40, window=4, stride=1, max_frames=300, num_windows=8).windows
    write_clips(tmp_path, [{"sample_id": "whole", "frames": np.arange(40), "windows": rgb}])
    assert np.array_equal(_frames_read(tmp_path, KEPT, "whole")[0], _frames_read(tmp_path, ALIGNED, "whole")[0])


def test_fewer_pose_windows_than_rgb_windows_is_left_out_with_kept_frames(tmp_path):
    """9 kept of 10 frames, all 7 rgb windows kept: 6 pose windows. The release's loaders assert equal
    counts (dataloader_H2_retrieval_train_pose.py:118), so the clip cannot enter a release run."""
    rgb = plan_windows(10, window=4, stride=1, max_frames=300, num_windows=None).windows
    write_clips(
        tmp_path,
        [
            {"sample_id": "dropped", "frames": [0, 1, 2, 4, 5, 6, 7, 8, 9], "windows": rgb},
            {"sample_id": "whole", "frames": np.arange(10), "windows": rgb},
        ],
    )
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train", rules=KEPT)
    assert [c.sample_id for c in clips.clips] == ["whole"]
    assert clips.skipped == {"with fewer pose windows (kept frames) than rgb windows": 1}
    assert "1 with fewer pose windows (kept frames) than rgb windows left out" in clips.describe()
    aligned = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train", rules=ALIGNED)
    assert len(aligned.clips) == 2


@pytest.mark.parametrize("drop", [True, False])
def test_a_hand_never_boxed_is_dropped_as_the_release_raises_or_kept_and_counted(tmp_path, drop):
    boxes = {"left_hand": {"joints": 0, "arm": 0, "none": 6}, "right_hand": {"joints": 5, "arm": 1, "none": 0}}
    arm_only = {"left_hand": {"joints": 0, "arm": 2, "none": 4}, "right_hand": {"joints": 6, "arm": 0, "none": 0}}
    windows = [[0, 1, 2, 3]]
    write_clips(
        tmp_path,
        [
            {"sample_id": "no_left", "frames": np.arange(6), "windows": windows, "attrs": {"hand_boxes": boxes}},
            {"sample_id": "arm_box", "frames": np.arange(6), "windows": windows, "attrs": {"hand_boxes": arm_only}},
            {"sample_id": "other_normalisation", "frames": np.arange(6), "windows": windows},
        ],
    )
    clips = load_clips(
        tmp_path / "manifests",
        tmp_path / "cache",
        "select",
        ["rgb"],
        "train",
        rules=ClipRules("rgb_aligned", drop_unboxed_hand=drop),
    )
    ids = [c.sample_id for c in clips.clips]
    if drop:
        assert ids == ["arm_box", "other_normalisation"]
        assert clips.describe() == "2 clips (1 with a hand never boxed left out)"
    else:
        assert ids == ["arm_box", "no_left", "other_normalisation"]
        assert clips.describe() == "3 clips (1 with a hand never boxed (kept, that hand zero))"


def test_clips_carry_their_sentence_id_and_source(tmp_path):
    write_clips(
        tmp_path,
        [
            {"sample_id": "a", "frames": np.arange(6), "windows": [[0, 1, 2, 3]], "sentence_id": "s_0"},
            {"sample_id": "b", "frames": np.arange(6), "windows": [[0, 1, 2, 3]]},
        ],
    )
    clips = load_clips(tmp_path / "manifests", tmp_path / "cache", "select", ["rgb"], "train")
    assert [c.sentence_id for c in clips.clips] == ["s_0", None]
    assert clips.source_note() == "csv clips.csv (2 clips)"
