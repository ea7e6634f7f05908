"""The torch resize/crop/normalise (for frames on a GPU) against the CPU reference (cv2 resize in the
decoder, then pipeline.rgb.frames), on real video frames, and I3D features from both.

Runs on the CPU: the ops are the same on any device. Tolerances are those documented in docs/gpu.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.i3d import random_i3d
from pipeline.rgb.frames import to_model_input
from pipeline.rgb.gpu_frames import area_weights, resize_crop, to_model_input_on_device
from pipeline.video.decode import _resize, read_frames

VIDEOS = ("slp-pose__test_video.mp4", "mmpose__demo.mp4", "mmaction2__test.avi")


@pytest.fixture(scope="module")
def clips(testdata) -> dict[str, np.ndarray]:
    return {
        name: read_frames(testdata / "videos" / name, np.arange(16)[: 5 if "demo" in name else 16]) for name in VIDEOS
    }


def _reference(frames: np.ndarray, short_side: int, size: int, family: str) -> torch.Tensor:
    """The CPU path: the decoder child's resize, then centre crop and normalisation."""
    return to_model_input(np.stack([_resize(frame, short_side) for frame in frames]), size, family, "cpu")


@pytest.mark.parametrize("short_side", [256, 224, 73])  # shrinks all three; 256 enlarges the 320x240 clip
def test_resize_crop_matches_the_cpu_path_within_one_level(clips, short_side):
    size = min(short_side, 224)
    for name, frames in clips.items():
        reference = _reference(frames, short_side, size, "bsl1k")
        got = to_model_input_on_device(torch.from_numpy(frames), short_side, size, "bsl1k")
        assert got.shape == reference.shape
        levels = (got - reference).abs().mul(255)
        assert levels.max() <= 1 + 1e-3, f"{name}: {levels.max():.3f} levels"
        assert levels.mean() < 0.1, f"{name}: mean {levels.mean():.4f} levels"


def test_area_weights_average_whole_pixels_on_integer_ratios():
    np.testing.assert_allclose(area_weights(6, 3), np.kron(np.eye(3), [[0.5, 0.5]]))
    assert np.allclose(area_weights(1280, 398).sum(axis=1), 1.0)


def test_a_crop_larger_than_the_resized_frame_is_refused(clips):
    with pytest.raises(ValueError, match="smaller than the 224 px crop"):
        resize_crop(torch.from_numpy(clips["mmaction2__test.avi"][:1]), 200, 224)


def test_i3d_features_from_both_paths(clips):
    """One 16-frame window per clip at the paper's 256 -> 224 through I3D (seeded random weights)."""
    model = random_i3d().eval()
    for name in ("slp-pose__test_video.mp4", "mmaction2__test.avi"):
        frames = clips[name]
        inputs = [
            _reference(frames, 256, 224, "bsl1k"),
            to_model_input_on_device(torch.from_numpy(frames), 256, 224, "bsl1k"),
        ]
        with torch.inference_mode():
            features = [model(x.permute(1, 0, 2, 3)[None]).numpy() for x in inputs]
        scale = np.abs(features[0]).max()
        difference = np.abs(features[0] - features[1]).max()
        assert difference <= 0.01 * scale, f"{name}: features differ by {difference:.3g} (max |x| {scale:.3g})"
