"""The native backend: RTMPose-WholeBody in plain PyTorch over batches of top-down crops.

Needs only torch, numpy and OpenCV, so it runs on GPU boxes where mmcv cannot be built. Per batch of
`batch_size` (frame, box) pairs: crops are warped on the CPU (uint8, so the host->GPU copy is a
quarter of float32's), normalised on the device, run through the network (backbone under autocast on
CUDA), and decoded on the CPU. The next batch's crops are warped while the GPU runs this one.
On the CPU the network runs in float32 with the same operations as mmpose's, which is what makes the
two backends agree: identical keypoints, scores within 1e-6 (tests/pose/test_pose_parity.py).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.models.checkpoints import Checkpoint
from pipeline.models.precision import autocast_dtype, resolve_precision
from pipeline.models.rtmpose.codec import decode_simcc, input_to_frame
from pipeline.models.rtmpose.model import load_rtmpose
from pipeline.models.rtmpose.spec import NUM_KEYPOINTS, RTMPoseSpec
from pipeline.pose.topdown import crop_inputs


class NativeEstimator:
    backend = "native"

    def __init__(self, spec: RTMPoseSpec, checkpoint: Checkpoint, device: str = "cpu", batch_size: int = 32,
                 precision: str = "auto", flip_test: bool = True):
        self.spec = spec
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.flip_test = flip_test
        self.precision = resolve_precision(device, precision)
        self.model = load_rtmpose(spec, checkpoint).to(self.device)
        if self.device.type == "cuda":
            # cuDNN's fastest (tensor-core) kernels want NHWC; the crops arrive NHWC already, and every
            # batch has the same shape, so let cuDNN pick its algorithms once.
            self.model.to(memory_format=torch.channels_last)
            torch.backends.cudnn.benchmark = True

    def estimate(self, frames: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 133, 2) float32 in frame pixels and scores (N, 133) float32, for frames[i]
        (RGB uint8, any size) cropped at boxes[i] (xyxy frame pixels)."""
        count = len(frames)
        keypoints = np.empty((count, NUM_KEYPOINTS, 2), dtype=np.float32)
        scores = np.empty((count, NUM_KEYPOINTS), dtype=np.float32)
        pending = None
        for start in range(0, count, self.batch_size):
            stop = min(start + self.batch_size, count)
            crops, centers, scales = crop_inputs(frames[start:stop], boxes[start:stop], self.spec.input_size,
                                                 self.spec.bbox_padding)
            logits = self._forward(crops)  # queued on a GPU: the next crops are warped meanwhile
            if pending is not None:
                self._finish(*pending, keypoints, scores)
            pending = (start, logits, centers, scales)
        if pending is not None:
            self._finish(*pending, keypoints, scores)
        return keypoints, scores

    def _forward(self, crops: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        batch = torch.from_numpy(crops)
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        with torch.inference_mode():
            return self.model(self.model.normalize(batch), self.flip_test, autocast_dtype(self.precision))

    def _finish(self, start: int, logits: tuple[torch.Tensor, torch.Tensor], centers: np.ndarray, scales: np.ndarray,
                keypoints: np.ndarray, scores: np.ndarray) -> None:
        simcc_x, simcc_y = (t.cpu().numpy() for t in logits)
        points, values = decode_simcc(simcc_x, simcc_y, self.spec.simcc_split_ratio)
        stop = start + len(points)
        keypoints[start:stop] = input_to_frame(points, self.spec.input_size, centers, scales)
        scores[start:stop] = values
