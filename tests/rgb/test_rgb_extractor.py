"""Batching windows across clips: same features whatever the batch, clips back in order, OOM halves the batch.

Tolerance: features are compared in float32 with atol 1e-5 + rtol 1e-4 (features are of order 1;
oneDNN may pick another convolution algorithm for another batch size, which changes the last bits),
far below the float16 step (~5e-4 at 1.0) the store keeps.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.i3d import random_i3d
from pipeline.rgb.extractor import WindowExtractor
from pipeline.rgb.windows import plan_windows

SIZE, WINDOW = 32, 8
TOL = dict(atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return random_i3d(seed=2).fold_batch_norm()


def _clip(num_frames: int, seed: int, num_windows: int = 4):
    plan = plan_windows(num_frames, window=WINDOW, stride=1, max_frames=300, num_windows=num_windows)
    frames = torch.rand(len(plan.frames), 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) - 0.5
    return frames, plan.positions


def _extract(model, clips: dict, batch_size: int) -> tuple[dict, WindowExtractor]:
    extractor = WindowExtractor(model, torch.device("cpu"), batch_size)
    out = {}
    for key, (frames, positions) in clips.items():
        extractor.submit(key, frames, positions)
        out.update(extractor.ready())
    out.update(extractor.finish())
    return out, extractor


@pytest.fixture(scope="module")
def clips():
    return {"a": _clip(30, 1), "b": _clip(6, 2), "c": _clip(40, 3, num_windows=3)}  # b: padded, one window


@pytest.fixture(scope="module")
def one_by_one(model, clips):
    return _extract(model, clips, batch_size=1)[0]


def test_batched_equals_one_window_per_forward(model, clips, one_by_one):
    batched, extractor = _extract(model, clips, batch_size=5)
    assert extractor.batch_sizes == [5, 3]  # 4 + 1 + 3 windows, across clip boundaries
    for key in clips:
        assert batched[key].shape == (len(clips[key][1]), 1024) and batched[key].dtype == np.float32
        np.testing.assert_allclose(batched[key], one_by_one[key], **TOL)
    with torch.inference_mode():  # and one window straight through the model, by hand
        frames, positions = clips["a"]
        direct = model(frames[positions[2]].permute(1, 0, 2, 3)[None]).numpy()[0]
    np.testing.assert_allclose(one_by_one["a"][2], direct, **TOL)


def test_a_clips_features_do_not_depend_on_its_batch_mates(model, clips, one_by_one):
    alone, _ = _extract(model, {"c": clips["c"]}, batch_size=4)
    crowded, _ = _extract(model, {"a": clips["a"], "b": clips["b"], "c": clips["c"]}, batch_size=4)  # c split 3/...
    np.testing.assert_allclose(alone["c"], crowded["c"], **TOL)
    np.testing.assert_allclose(alone["c"], one_by_one["c"], **TOL)
    assert not np.allclose(crowded["a"][0], crowded["c"][0], atol=1e-3)  # different clips stay different


def test_clips_come_back_in_order_once_complete(model, clips):
    extractor = WindowExtractor(model, torch.device("cpu"), batch_size=3)
    extractor.submit("a", *clips["a"])  # 4 windows: one batch of 3 runs, a is not complete
    assert list(extractor.ready()) == []
    extractor.submit("b", *clips["b"])  # 1 more: 2 queued, below a batch
    assert list(extractor.ready()) == []
    extractor.submit("c", *clips["c"])  # 3 more: a batch of 3 completes a and b
    assert [key for key, _ in extractor.ready()] == ["a", "b"]
    assert [key for key, _ in extractor.finish()] == ["c"]


class OutOfMemoryAbove(torch.nn.Module):
    """The model, except that a batch larger than `limit` raises CUDA's out-of-memory error."""

    def __init__(self, model: torch.nn.Module, limit: int):
        super().__init__()
        self.model, self.limit, self.calls = model, limit, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(len(x))
        if len(x) > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate for {len(x)} windows")
        return self.model(x)


def test_out_of_memory_halves_the_batch_and_loses_nothing(model, clips, one_by_one):
    flaky = OutOfMemoryAbove(model, limit=2)
    features, extractor = _extract(flaky, clips, batch_size=8)
    # 8 windows fail; the first half (4) fails too; its halves run, and so does the rest, 2 at a time
    assert flaky.calls == [8, 4, 2, 2, 2, 2]
    assert extractor.batch_size == 2
    for key in clips:
        np.testing.assert_allclose(features[key], one_by_one[key], **TOL)


def test_a_single_window_that_does_not_fit_is_an_error(model, clips):
    extractor = WindowExtractor(OutOfMemoryAbove(model, limit=0), torch.device("cpu"), batch_size=2)
    extractor.submit("a", *clips["a"])
    with pytest.raises(RuntimeError, match="one window .* does not fit"):
        list(extractor.finish())


def test_positions_outside_the_frames_are_refused(model):
    extractor = WindowExtractor(model, torch.device("cpu"), batch_size=2)
    with pytest.raises(ValueError, match="positions reach frame 9 of 4"):
        extractor.submit("x", torch.zeros(4, 3, SIZE, SIZE), np.array([[0, 9]]))
