"""Fixtures of the pose tests: the real COCO-WholeBody images and their person boxes, and the two
backends built once per session (building mmpose's model costs seconds; importing mmpose more)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pipeline.models.checkpoints import Checkpoint, resolve_checkpoint
from pipeline.models.rtmpose.spec import MODELS


@pytest.fixture(scope="session")
def coco(testdata) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(file name, RGB image, xyxy float32 boxes of its annotated people) per image, sorted by name."""
    folder = testdata / "coco_wholebody"
    annotations = json.loads((folder / "test_coco_wholebody.json").read_text())
    out = []
    for image in sorted(annotations["images"], key=lambda im: im["file_name"]):
        rgb = cv2.cvtColor(cv2.imread(str(folder / image["file_name"])), cv2.COLOR_BGR2RGB)
        assert rgb.shape[:2] == (image["height"], image["width"])
        boxes = [
            [x, y, x + w, y + h]
            for a in annotations["annotations"]
            if a["image_id"] == image["id"]
            for x, y, w, h in [a["bbox"]]
        ]
        out.append((image["file_name"], rgb, np.array(boxes, dtype=np.float32)))
    return out


@pytest.fixture(scope="session")
def random_checkpoint():
    return resolve_checkpoint("random", "pose.checkpoint")


def checkpoint_with_batchnorm(name: str, folder) -> Checkpoint:
    """A checkpoint file of the seeded random weights with non-trivial BatchNorm statistics and affine
    terms (random init leaves them at identity), so folding BatchNorm into the convs is exercised."""
    import torch

    from pipeline.models.rtmpose.model import RTMPose, random_init

    model = RTMPose(MODELS[name])
    random_init(model)
    generator = torch.Generator().manual_seed(7)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.05)
            module.running_var.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
            module.weight.data.copy_(torch.rand(c, generator=generator) * 0.5 + 0.75)
            module.bias.data.copy_(torch.randn(c, generator=generator) * 0.05)
    path = folder / f"{name}-batchnorm.pth"
    torch.save(model.state_dict(), path)
    return resolve_checkpoint(str(path), "pose.checkpoint")


class BackendPair:
    """A native and an mmpose estimator of one model, both loaded from one and the same checkpoint file."""

    def __init__(self, name: str, checkpoint: Checkpoint, batch_size: int = 8):
        from pipeline.pose.mmpose_backend import MmposeEstimator
        from pipeline.pose.native import NativeEstimator

        self.spec = MODELS[name]
        self.checkpoint = checkpoint
        self.native = NativeEstimator(self.spec, checkpoint, batch_size=batch_size)
        self.mmpose = MmposeEstimator(self.spec, checkpoint, batch_size=batch_size)


_PAIRS: dict[str, BackendPair] = {}


@pytest.fixture(scope="session")
def backend_pair(tmp_path_factory):
    def get(name: str) -> BackendPair:
        if name not in _PAIRS:
            _PAIRS[name] = BackendPair(name, checkpoint_with_batchnorm(name, tmp_path_factory.mktemp("checkpoint")))
        return _PAIRS[name]

    return get


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread: on a busy 2-core machine, 2 OpenMP threads that wait on each other made the
    RTMPose forward 5-15x slower (measured), and results do not depend on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
