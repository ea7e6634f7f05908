"""The native backend: RTMPose-WholeBody in plain PyTorch over batches of top-down crops.

Needs only torch, numpy and OpenCV, so it runs on GPU boxes where mmcv cannot be built. Per batch of
`batch_size` (frame, box) pairs: crops are warped on the CPU (uint8, so the host->GPU copy is a
quarter of float32's), normalised on the device, run through the network (backbone under autocast on
CUDA), and decoded on the CPU. The next batch's crops are warped while the GPU runs this one.
On the CPU the network runs in float32, the same function as mmpose's up to float rounding, which is
what makes the two backends agree: keypoints within 1e-3 px, scores within 1e-4 (tests/pose/test_pose_parity.py).

Speed-ups that leave the output alone (each tested equal on real frames, tests/pose/test_pose_speedups.py):
BatchNorm folded into the convs and the weights stored NHWC at load (RTMPose.prepare_for_inference),
the flip test as one batch with the crops, SimCC maxima taken on the device so only (N, 133) arrays
come back, and, with `compile`, torch.compile of the network (CUDA; speed only, the first batch of each
size pays the compilation).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.models.checkpoints import Checkpoint
from pipeline.models.precision import autocast_dtype, resolve_precision
from pipeline.models.rtmpose.codec import decode_maxima, input_to_frame
from pipeline.models.rtmpose.model import load_rtmpose
from pipeline.models.rtmpose.spec import NUM_KEYPOINTS, RTMPoseSpec
from pipeline.pose.topdown import crop_inputs


class NativeEstimator:
    backend = "native"

    def __init__(
        self,
        spec: RTMPoseSpec,
        checkpoint: Checkpoint,
        device: str = "cpu",
        batch_size: int = 32,
        precision: str = "auto",
        flip_test: bool = True,
        compile: bool = False,
    ):
        self.spec = spec
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.flip_test = flip_test
        self.precision = resolve_precision(device, precision)
        # NHWC suits both oneDNN (CPU) and cuDNN's tensor-core kernels; the crops arrive NHWC already.
        self.model = load_rtmpose(spec, checkpoint).prepare_for_inference(channels_last=True).to(self.device)
        self.network = torch.compile(self.model) if compile else self.model
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # every batch has the same shape: pick algorithms once

    def estimate(self, frames: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 133, 2) float32 in frame pixels and scores (N, 133) float32, for frames[i]
        (RGB uint8, any size) cropped at boxes[i] (xyxy frame pixels)."""
        count = len(frames)
        keypoints = np.empty((count, NUM_KEYPOINTS, 2), dtype=np.float32)
        scores = np.empty((count, NUM_KEYPOINTS), dtype=np.float32)
        pending = None
        for start in range(0, count, self.batch_size):
            stop = min(start + self.batch_size, count)
            crops, centers, scales = crop_inputs(
                frames[start:stop], boxes[start:stop], self.spec.input_size, self.spec.bbox_padding
            )
            maxima = self._forward(crops)  # queued on a GPU: the next crops are warped meanwhile
            if pending is not None:
                self._finish(*pending, keypoints, scores)
            pending = (start, maxima, centers, scales)
        if pending is not None:
            self._finish(*pending, keypoints, scores)
        return keypoints, scores

    def _forward(self, crops: np.ndarray) -> tuple[torch.Tensor, ...]:
        batch = torch.from_numpy(crops)
        if self.device.type == "cuda":
            batch = batch.pin_memory()
        return self.forward_crops(batch)

    def forward_crops(self, crops: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """uint8 RGB crops (B, h, w, 3) on any device (moved to the estimator's) -> the SimCC maxima
        (x value, x bin, y value, y bin), each (B, 133), left on the device (queued, on a GPU).
        The one forward of both input paths: host crops (`estimate`) and device crops (device_input.py)."""
        with torch.inference_mode():
            batch = self.model.normalize(crops.to(self.device, non_blocking=True))
            simcc_x, simcc_y = self.network(batch, self.flip_test, autocast_dtype(self.precision))
            return (*simcc_x.max(dim=2), *simcc_y.max(dim=2))  # torch.max: the first bin of equal maxima, as np.argmax

    def decode(
        self, maxima: tuple[torch.Tensor, ...], centers: np.ndarray, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """`forward_crops`' maxima and each crop's centre and scale (B, 2) -> keypoints (B, 133, 2) in frame
        pixels and scores (B, 133), float32."""
        x_max, x_locs, y_max, y_locs = (t.cpu().numpy() for t in maxima)
        points, values = decode_maxima(x_locs, x_max, y_locs, y_max, self.spec.simcc_split_ratio)
        return input_to_frame(points, self.spec.input_size, centers, scales), values

    def _finish(
        self,
        start: int,
        maxima: tuple[torch.Tensor, ...],
        centers: np.ndarray,
        scales: np.ndarray,
        keypoints: np.ndarray,
        scores: np.ndarray,
    ) -> None:
        points, values = self.decode(maxima, centers, scales)
        keypoints[start : start + len(points)] = points
        scores[start : start + len(points)] = values
