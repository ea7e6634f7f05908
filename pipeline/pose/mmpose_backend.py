"""The mmpose backend: mmpose's own RTMPose and the config's own test pipeline, called in batches.

This is the reference the native backend is tested against. It does what `inference_topdown` does
for one frame (LoadImage -> GetBBoxCenterScale -> TopdownAffine -> PackPoseInputs, then
`model.test_step`) but for `batch_size` (frame, box) pairs per call, and without `mmpose.apis`
(torchvision). Frames arrive RGB from the decoder and are handed over BGR, as mmpose's image loader
delivers them: the config's data preprocessor (bgr_to_rgb=True) turns them back. Always float32.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from pipeline.models.checkpoints import Checkpoint, check_state_dict, load_state_dict
from pipeline.models.rtmpose.model import RTMPose, random_init
from pipeline.models.rtmpose.spec import NUM_KEYPOINTS, RTMPoseSpec
from pipeline.pose.openmmlab import import_registries, rtmpose_config, wholebody_metainfo_file


class MmposeEstimator:
    backend = "mmpose"

    def __init__(
        self,
        spec: RTMPoseSpec,
        checkpoint: Checkpoint,
        device: str = "cpu",
        batch_size: int = 32,
        flip_test: bool = True,
    ):
        import_registries()
        from mmengine.config import Config
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope
        from mmpose.datasets.datasets.utils import parse_pose_metainfo
        from mmpose.models import build_pose_estimator

        init_default_scope("mmpose")
        cfg = Config.fromfile(rtmpose_config(spec.name))
        cfg.model.backbone.init_cfg = None  # no ImageNet-pretrained download: the weights come next
        cfg.model.test_cfg.flip_test = flip_test
        self.model = build_pose_estimator(cfg.model)
        self.model.cfg = cfg
        self.model.load_state_dict(self._weights(spec, checkpoint, self.model), strict=True)
        self.model.to(device).eval()
        self.dataset_meta = parse_pose_metainfo(dict(from_file=str(wholebody_metainfo_file())))
        self.model.dataset_meta = self.dataset_meta
        self.pipeline = Compose(cfg.test_dataloader.dataset.pipeline)
        self.spec = spec
        self.batch_size = batch_size
        self.precision = "fp32"

    @staticmethod
    def _weights(spec: RTMPoseSpec, checkpoint: Checkpoint, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The checkpoint's state dict, or the native backend's seeded random weights (same keys), so
        `checkpoint: random` means the same network in both backends."""
        if checkpoint.is_random:
            native = RTMPose(spec)
            random_init(native)
            return native.state_dict()
        state = load_state_dict(checkpoint.path)
        check_state_dict(model, state, str(checkpoint.path), f"mmpose's {spec.name}")
        return state

    def estimate(self, frames: Sequence[np.ndarray], boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 133, 2) float32 frame pixels and scores (N, 133), for RGB frames[i] at boxes[i] (xyxy)."""
        from mmengine.dataset import pseudo_collate

        boxes = np.asarray(boxes, dtype=np.float32)
        keypoints, scores = [], []
        for start in range(0, len(frames), self.batch_size):
            samples = [
                self.pipeline(
                    dict(
                        img=np.ascontiguousarray(frame[..., ::-1]),
                        bbox=box[None],
                        bbox_score=np.ones(1, dtype=np.float32),
                        **self.dataset_meta,
                    )
                )
                for frame, box in zip(frames[start : start + self.batch_size], boxes[start : start + self.batch_size])
            ]
            with torch.no_grad():
                results = self.model.test_step(pseudo_collate(samples))
            keypoints += [r.pred_instances.keypoints[0] for r in results]
            scores += [r.pred_instances.keypoint_scores[0] for r in results]
        if not keypoints:
            return np.zeros((0, NUM_KEYPOINTS, 2), dtype=np.float32), np.zeros((0, NUM_KEYPOINTS), dtype=np.float32)
        return np.stack(keypoints).astype(np.float32), np.stack(scores).astype(np.float32)
