"""The torch top-down crops (for frames on a GPU) against the cv2 reference, on real video frames.

Runs on the CPU: the ops are the same on any device. Tolerances are those documented in docs/gpu.md."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.rtmpose.codec import decode_simcc, input_to_frame
from pipeline.models.rtmpose.model import load_rtmpose
from pipeline.models.rtmpose.spec import MODELS
from pipeline.pose.gpu_crops import crop_inputs_on_device, warp_crops
from pipeline.pose.topdown import crop_inputs
from pipeline.video.decode import read_frames

VIDEOS = ("slp-pose__test_video.mp4", "mmpose__demo.mp4", "mmaction2__test.avi")


def _boxes(width: int, height: int) -> np.ndarray:
    """Whole frame, inside, spilling over the top-left and bottom-right borders, fractional corners."""
    return np.array(
        [
            [0, 0, width, height],
            [width * 0.2, height * 0.1, width * 0.7, height * 0.9],
            [-30, -20, width * 0.5, height * 0.6],
            [width * 0.4, height * 0.3, width * 1.1, height * 1.05],
            [10.3, 5.7, width - 3.1, height - 8.9],
        ],
        dtype=np.float32,
    )


@pytest.fixture(scope="module")
def clips(testdata) -> dict[str, np.ndarray]:
    return {name: read_frames(testdata / "videos" / name, np.arange(5)) for name in VIDEOS}


@pytest.mark.parametrize(
    "model", ["rtmpose-m_8xb64-270e_coco-wholebody-256x192", "rtmpose-l_8xb32-270e_coco-wholebody-384x288"]
)
def test_crops_match_cv2_within_one_level(clips, model):
    spec = MODELS[model]
    for name, frames in clips.items():
        boxes = _boxes(frames.shape[2], frames.shape[1])
        reference, ref_centers, ref_scales = crop_inputs(list(frames), boxes, spec.input_size, spec.bbox_padding)
        crops, centers, scales = crop_inputs_on_device(
            torch.from_numpy(frames), boxes, spec.input_size, spec.bbox_padding
        )
        assert crops.dtype == torch.uint8 and crops.shape == reference.shape
        np.testing.assert_array_equal(centers, ref_centers)
        np.testing.assert_array_equal(scales, ref_scales)
        diff = np.abs(crops.numpy().astype(np.int16) - reference.astype(np.int16))
        assert diff.max() <= 1, f"{name}: a crop pixel differs by {diff.max()} levels"
        assert diff.mean() < 0.01, f"{name}: mean difference {diff.mean():.4f} levels"


def test_warp_outside_the_frame_is_black_and_identity_is_exact(clips):
    frames = torch.from_numpy(clips["mmpose__demo.mp4"][:2])
    height, width = frames.shape[1:3]
    identity = np.tile(np.array([[1.0, 0, 0], [0, 1.0, 0]]), (2, 1, 1))
    assert torch.equal(warp_crops(frames, identity, (width, height)), frames)
    far = np.tile(np.array([[1.0, 0, -10 * width], [0, 1.0, 0]]), (2, 1, 1))  # reads 10 frames to the right
    assert not warp_crops(frames, far, (64, 48)).any()


def test_keypoints_after_the_full_model(clips, random_checkpoint):
    """Crops from both paths through one RTMPose-m (explicit random weights: no checkpoint offline): the
    keypoints agree except where a one-level pixel change moves a near-flat random SimCC argmax."""
    spec = MODELS["rtmpose-m_8xb64-270e_coco-wholebody-256x192"]
    model = load_rtmpose(spec, random_checkpoint)
    frames = clips["slp-pose__test_video.mp4"]
    boxes = _boxes(frames.shape[2], frames.shape[1])
    results = []
    for crops, centers, scales in (
        crop_inputs(list(frames), boxes, spec.input_size, spec.bbox_padding),
        crop_inputs_on_device(torch.from_numpy(frames), boxes, spec.input_size, spec.bbox_padding),
    ):
        with torch.inference_mode():
            x, y = model(model.normalize(torch.as_tensor(crops)), True)
        points, _ = decode_simcc(x.numpy(), y.numpy(), spec.simcc_split_ratio)
        results.append(input_to_frame(points, spec.input_size, centers, scales))
    distance = np.linalg.norm(results[0] - results[1], axis=-1)
    assert np.median(distance) == 0.0
    assert (distance == 0).mean() > 0.9
