"""Each speed-up of the native backend leaves its output equal to the plain network's, on real frames.

The reference is the network as loaded from the checkpoint (BatchNorm separate, NCHW weights, the
flip test as a second forward call as mmpose makes it, the full logits decoded on the host); each
test changes one thing. The checkpoint has non-trivial BatchNorm statistics, so folding is exercised.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from pipeline.models.rtmpose.codec import decode_simcc, input_to_frame
from pipeline.models.rtmpose.cspnext import ConvBNAct
from pipeline.models.rtmpose.model import load_rtmpose, with_flipped
from pipeline.pose.topdown import crop_inputs
from pose_support import MODEL_M, whole

LOGIT_TOL = 1e-4  # SimCC logits of a random net are ~0.01..1; float rounding moves them ~1e-7
KEYPOINT_TOL_PX = 1e-3


@pytest.fixture(scope="module")
def reference(backend_pair):
    """(the unprepared network, normalised real crops (B, 3, H, W)): 4 whole images + 4 person boxes."""
    pair = backend_pair(MODEL_M)
    model = load_rtmpose(pair.spec, pair.checkpoint)
    return model, pair


def real_crops(coco, spec) -> torch.Tensor:
    frames = [image for _, image, _ in coco] + [image for _, image, people in coco]
    boxes = np.stack([whole(image) for _, image, _ in coco] + [people[0] for _, _, people in coco])
    crops, _, _ = crop_inputs(frames, boxes, spec.input_size, spec.bbox_padding)
    return torch.from_numpy(crops)


def logits(model, crops: torch.Tensor, flip_test: bool = True):
    with torch.inference_mode():
        return model(model.normalize(crops), flip_test)


def test_folding_batchnorm_leaves_the_logits(reference, coco):
    model, pair = reference
    crops = real_crops(coco, pair.spec)
    folded = copy.deepcopy(model).prepare_for_inference(channels_last=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert all(m.conv.bias is not None for m in folded.modules() if isinstance(m, ConvBNAct))
    ref_x, ref_y = logits(model, crops)
    out_x, out_y = logits(folded, crops)
    assert torch.abs(out_x - ref_x).max() <= LOGIT_TOL and torch.abs(out_y - ref_y).max() <= LOGIT_TOL
    assert ref_x.std() > 10 * LOGIT_TOL  # the logits vary far more than the tolerance: a real comparison
    # Folding must use the checkpoint's statistics: a network with identity BatchNorm differs.
    identity = copy.deepcopy(model)
    for module in identity.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_parameters()
    assert torch.abs(logits(identity.prepare_for_inference(False), crops)[0] - ref_x).max() > 100 * LOGIT_TOL


def test_channels_last_leaves_the_logits(reference, coco):
    model, pair = reference
    crops = real_crops(coco, pair.spec)
    nchw = copy.deepcopy(model).prepare_for_inference(channels_last=False)
    nhwc = copy.deepcopy(model).prepare_for_inference(channels_last=True)
    assert nhwc.backbone.stem[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not nchw.backbone.stem[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    for a, b in zip(logits(nchw, crops), logits(nhwc, crops)):
        assert torch.abs(a - b).max() <= LOGIT_TOL


def test_flip_in_one_batch_equals_two_forward_calls(reference, coco):
    """mmpose runs the mirrored crops as a second forward call; we append them to the batch."""
    model, pair = reference
    crops = real_crops(coco, pair.spec)
    inputs = model.normalize(crops)
    with torch.inference_mode():
        x, y = model(inputs, flip_test=False)
        fx, fy = model(inputs.flip(-1), flip_test=False)
        separate = model.merge_flipped(torch.cat((x, fx)), torch.cat((y, fy)), len(crops))
        batched = model(inputs, flip_test=True)
    assert with_flipped(inputs).shape[0] == 2 * len(crops)
    for a, b in zip(separate, batched):
        assert torch.abs(a - b).max() <= LOGIT_TOL
    # The flip test changes the logits (else this comparison says nothing): mirrored crops differ.
    assert torch.abs(batched[0] - x).max() > 100 * LOGIT_TOL


def test_estimator_equals_the_plain_network_decoded_on_the_host(reference, coco):
    """All speed-ups at once (folded, NHWC, flip in the batch, maxima on the device) against the
    unprepared network whose full logits are decoded by mmpose's numpy rule."""
    model, pair = reference
    crops = real_crops(coco, pair.spec)
    frames = [image for _, image, _ in coco] + [image for _, image, people in coco]
    boxes = np.stack([whole(image) for _, image, _ in coco] + [people[0] for _, _, people in coco])
    ours, scores = pair.native.estimate(frames, boxes)
    x, y = logits(model, crops)
    points, values = decode_simcc(x.numpy(), y.numpy(), pair.spec.simcc_split_ratio)
    _, centers, scales = crop_inputs(frames, boxes, pair.spec.input_size, pair.spec.bbox_padding)
    expected = input_to_frame(points, pair.spec.input_size, centers, scales)
    assert np.abs(ours - expected).max() <= KEYPOINT_TOL_PX
    assert np.abs(scores - values).max() <= LOGIT_TOL


def test_bf16_autocast_path_runs_on_the_cpu(reference, coco):
    """The CUDA precision path (backbone under bf16 autocast, head float32) runs on the CPU too; its
    logits follow fp32's (bf16 keeps ~3 digits; a random net's deep features amplify that, measured
    correlation 0.9993 on these crops) and come back float32."""
    model, pair = reference
    crops = real_crops(coco, pair.spec)[:2]
    prepared = copy.deepcopy(model).prepare_for_inference()
    with torch.inference_mode():
        ref_x, _ = prepared(prepared.normalize(crops), True)
        low_x, low_y = prepared(prepared.normalize(crops), True, torch.bfloat16)
    assert low_x.dtype == low_y.dtype == torch.float32
    assert np.corrcoef(low_x.flatten().numpy(), ref_x.flatten().numpy())[0, 1] > 0.99
    assert torch.abs(low_x - ref_x).max() > 0  # it did run in bf16


def test_compiled_network_gives_the_same_keypoints(coco):
    """pose.compile (torch.compile; meant for CUDA) runs on the CPU too, on a tiny RTMPose of the same
    architecture (compiling a full-size one takes a minute here), and changes nothing but speed."""
    from pipeline.models.checkpoints import resolve_checkpoint
    from pipeline.models.rtmpose.spec import RTMPoseSpec
    from pipeline.pose.native import NativeEstimator

    tiny = RTMPoseSpec("tiny-test", (64, 64), 0.33, 0.25, official_checkpoint="")
    checkpoint = resolve_checkpoint("random", "pose.checkpoint")
    frames = [image for _, image, _ in coco]
    boxes = np.stack([whole(image) for image in frames])
    eager_kp, eager_sc = NativeEstimator(tiny, checkpoint, batch_size=2).estimate(frames, boxes)
    compiled = NativeEstimator(tiny, checkpoint, batch_size=2, compile=True)
    assert compiled.network is not compiled.model  # the compiled wrapper is what runs
    kp, sc = compiled.estimate(frames, boxes)
    assert np.abs(kp - eager_kp).max() <= KEYPOINT_TOL_PX and np.abs(sc - eager_sc).max() <= LOGIT_TOL
