"""Window placement of the rgb stage: the SEDS/CiCo rule, in exact clip frame indices."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.rgb.windows import choose_windows, plan_windows, window_starts


def test_every_window_when_there_are_few():
    plan = plan_windows(20, window=16, stride=1, max_frames=300, num_windows=64)
    assert plan.total_windows == 5 and plan.windows.shape == (5, 16) and not plan.padded
    assert plan.windows[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert plan.windows[4].tolist() == list(range(4, 20))
    assert plan.frames.tolist() == list(range(20))  # every needed frame once
    assert np.array_equal(plan.frames[plan.positions], plan.windows)
    assert plan.windows.dtype == np.int64 and plan.positions.dtype == np.int64


def test_linspace_choice_truncates_like_the_authors_loader():
    # 100 frames, window 16, stride 1 -> 85 windows; keep 64 by np.linspace(0, 84, 64, dtype=int).
    plan = plan_windows(100, window=16, stride=1, max_frames=300, num_windows=64)
    assert plan.total_windows == 85 and len(plan.windows) == 64
    step = 84 / 63
    expected = [int(np.floor(i * step + 1e-9)) for i in range(64)]  # floor, not round
    assert plan.windows[:, 0].tolist() == expected
    # i = 2: 2.667 -> 2 (rounding would give 3); the ends are exact
    assert expected[2] == 2 and expected[0] == 0 and expected[-1] == 84
    assert plan.windows[-1].tolist() == list(range(84, 100))


def test_centres_are_spread_uniformly_over_the_clip():
    plan = plan_windows(1000, window=16, stride=1, max_frames=300, num_windows=64)
    centres = plan.windows.mean(axis=1)
    gaps = np.diff(centres)
    assert plan.step == 4  # ceil(1000 / 300): the thinned list has 250 frames, 235 windows
    assert plan.total_windows == 235
    # uniform up to the truncation: consecutive centres 3 or 4 thinned frames (x4 clip frames) apart
    assert set(np.round(gaps).astype(int).tolist()) <= {12, 16}
    assert centres[0] == pytest.approx(4 * 7.5) and centres[-1] == pytest.approx(4 * (234 + 7.5))


def test_long_clip_is_thinned_before_windowing():
    plan = plan_windows(601, window=4, stride=1, max_frames=300, num_windows=None)
    # ceil(601/300) = 3: frames 0, 3, ..., 600 (201 of them), windows of 4 consecutive kept frames
    assert plan.step == 3 and plan.total_windows == 198 and len(plan.windows) == 198
    assert plan.windows[0].tolist() == [0, 3, 6, 9] and plan.windows[-1].tolist() == [591, 594, 597, 600]


def test_short_clip_is_padded_with_its_last_frame():
    plan = plan_windows(5, window=8, stride=1, max_frames=300, num_windows=64)
    assert plan.padded and plan.total_windows == 1
    assert plan.windows.tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    assert plan.frames.tolist() == [0, 1, 2, 3, 4]
    one = plan_windows(1, window=16, stride=1, max_frames=300, num_windows=64)
    assert one.windows.tolist() == [[0] * 16] and one.padded


def test_stride_clamps_the_last_window_to_the_end():
    # 20 frames, window 8, stride 5: ceil(12/5)+1 = 4 windows at 0, 5, 10 and 12 (not 15: it would overrun)
    assert window_starts(20, 8, 5).tolist() == [0, 5, 10, 12]
    plan = plan_windows(20, window=8, stride=5, max_frames=300, num_windows=None)
    assert plan.windows[-1].tolist() == list(range(12, 20))


def test_choose_windows_all_and_exact_count():
    assert choose_windows(10, None).tolist() == list(range(10))
    assert choose_windows(10, 10).tolist() == list(range(10))
    assert choose_windows(11, 4).tolist() == [0, 3, 6, 10]  # linspace(0, 10, 4) = 0, 3.33, 6.67, 10


def test_zero_frames_is_refused():
    with pytest.raises(ValueError, match="at least one frame"):
        plan_windows(0, window=16, stride=1, max_frames=300, num_windows=64)
