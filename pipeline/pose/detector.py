"""Person boxes from an mmdet RTMDet detector (config + checkpoint), with NMS done by OpenCV.

mmdet's own post-processing calls mmcv's compiled `batched_nms`, which mmcv-lite lacks. So the
detector runs mmdet's model and test pipeline as configured (Resize 640 keep-ratio, Pad 114,
DetDataPreprocessor), takes the head's candidates before NMS (`predict_by_feat(with_nms=False)`:
score threshold, top-k, boxes rescaled to the frame), and applies the config's NMS IoU threshold
and `max_per_img` with `cv2.dnn.NMSBoxes`, per class, person class only. INSTALL-NOTES records that
this matched compiled mmcv's boxes exactly on seeded random weights. Needs mmdet (not on GPU boxes).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

from pipeline.models.checkpoints import Checkpoint, check_state_dict, load_state_dict
from pipeline.models.rtmpose.model import random_init
from pipeline.pose.openmmlab import detector_config, import_registries

PERSON = 0  # class index of "person" in COCO and in the person-only configs


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first (xyxy boxes, pixels)."""
    if not len(boxes):
        return np.zeros(0, dtype=np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float64).tolist(), 0.0, iou_threshold)
    return np.asarray(keep, dtype=np.int64).reshape(-1)


class PersonDetector:
    def __init__(self, config: str, checkpoint: Checkpoint, device: str = "cpu", batch_size: int = 8):
        import_registries()
        from mmdet.registry import MODELS
        from mmengine.config import Config
        from mmengine.dataset import Compose
        from mmengine.registry import init_default_scope

        init_default_scope("mmdet")
        path = detector_config(config)
        if not path.is_file():
            raise FileNotFoundError(f"pose.detector_config: {path} does not exist")
        cfg = Config.fromfile(path)
        cfg.model.backbone.init_cfg = None  # no ImageNet-pretrained download: the weights come next
        self.model = MODELS.build(cfg.model)
        if checkpoint.is_random:
            random_init(self.model)
        else:
            state = load_state_dict(checkpoint.path)
            check_state_dict(self.model, state, str(checkpoint.path), f"mmdet's {path.stem}")
            self.model.load_state_dict(state, strict=True)
        self.model.to(device).eval()
        pipeline = cfg.test_dataloader.dataset.pipeline
        pipeline[0] = dict(type="mmdet.LoadImageFromNDArray")
        self.pipeline = Compose(pipeline)
        self.test_cfg = cfg.model.test_cfg
        self.batch_size = batch_size

    def detect(self, frames: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per RGB frame, its person detections (n, 5): xyxy in frame pixels + score, best first."""
        from mmengine.dataset import pseudo_collate

        found = []
        for start in range(0, len(frames), self.batch_size):
            samples = [
                self.pipeline(dict(img=np.ascontiguousarray(frame[..., ::-1]), img_id=0))
                for frame in frames[start : start + self.batch_size]
            ]
            with torch.no_grad():
                data = self.model.data_preprocessor(pseudo_collate(samples), False)
                outputs = self.model.bbox_head(self.model.extract_feat(data["inputs"]))
                metas = [sample.metainfo for sample in data["data_samples"]]
                candidates = self.model.bbox_head.predict_by_feat(
                    *outputs, batch_img_metas=metas, rescale=True, with_nms=False
                )
            found += [self._suppress(c) for c in candidates]
        return found

    def _suppress(self, candidates) -> np.ndarray:
        person = (candidates.labels == PERSON).cpu().numpy()
        boxes = candidates.bboxes.cpu().numpy()[person]
        scores = candidates.scores.cpu().numpy()[person]
        keep = nms(boxes, scores, self.test_cfg.nms.iou_threshold)[: self.test_cfg.max_per_img]
        return np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)
