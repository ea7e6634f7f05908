"""Frame and window sampling: exact indices for the rules pose and rgb share."""

from __future__ import annotations

import math

import pytest

from pipeline.video.sampling import clip_frame_range, frame_list, linspace_choice, thin_frames, uniform_frames


def test_thin_keeps_every_ceil_t_over_max_frame():
    assert thin_frames(300, 300).tolist() == list(range(300))
    assert thin_frames(301, 300).tolist() == list(range(0, 301, 2))  # ceil(301/300) = 2
    assert len(thin_frames(1000, 300)) == 250 and thin_frames(1000, 300)[1] == 4
    assert thin_frames(0, 300).size == 0


def test_uniform_spreads_first_to_last_and_repeats_short_clips():
    assert uniform_frames(10, 4).tolist() == [0, 3, 6, 9]
    assert uniform_frames(2, 4).tolist() == [0, 0, 1, 1]


def test_linspace_choice_rounds_evenly_spaced_positions_half_to_even():
    # positions i * (total - 1) / (count - 1), worked out by hand
    assert linspace_choice(10, 4).tolist() == [0, 3, 6, 9]  # 0, 3, 6, 9 exactly
    assert linspace_choice(6, 3).tolist() == [0, 2, 5]  # 0, 2.5, 5: 2.5 rounds to even 2
    assert linspace_choice(10, 5).tolist() == [0, 2, 4, 7, 9]  # 0, 2.25, 4.5, 6.75, 9: 4.5 -> 4
    assert linspace_choice(8, 3).tolist() == [0, 4, 7]  # 0, 3.5, 7: 3.5 rounds to even 4
    assert linspace_choice(10, 64).tolist() == list(range(10))  # fewer items than asked: all of them


def test_clip_frame_range_half_open_in_seconds():
    assert clip_frame_range(100, 25.0, None, None) == (0, 100)
    assert clip_frame_range(100, 25.0, 1.0, 2.0) == (25, 50)
    assert clip_frame_range(100, 25.0, 1.01, 2.0) == (26, 50)
    assert clip_frame_range(100, 25.0, 3.5, 5.0) == (88, 125)  # not clamped: the probe decides


def test_frame_list_rules():
    assert frame_list(10, "all").tolist() == list(range(10))
    assert frame_list(10, "every", 3).tolist() == [0, 3, 6, 9]
    assert frame_list(10, "uniform", 3).tolist() == [0, 4, 9]
    with pytest.raises(ValueError, match="unknown frame rule"):
        frame_list(10, "random")


def test_phoenix_interval_rule_is_the_thin_rule():
    """PHOENIX-2014T's loaders thin with `interval = max(args.interval, ceil(T / 300))` (--interval 2,
    main_task_retrieval.py:102), but only for T > 300 (dataloader_ph_retrieval_pose.py:271-272, :388-389),
    where ceil(T / 300) is already at least 2: the same frames as every loader's ceil(T / 300) and our thin 300."""
    for frames in range(1, 3001):
        interval = max(2, math.ceil(frames / 300)) if frames > 300 else 1
        assert thin_frames(frames, 300).tolist() == list(range(0, frames, interval)), frames
