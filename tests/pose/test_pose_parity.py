"""The contract of the native backend: mmpose's own model and test pipeline give the same keypoints.

One set of (random, seeded) weights is copied into mmpose's RTMPose and into ours; both run on the
real COCO-WholeBody images, on the whole image and on the annotated person boxes.
"""

from __future__ import annotations

import numpy as np
import pytest

from pose_support import MODEL_L, MODEL_M, inside_padded_crops, whole

KEYPOINT_TOL_PX = 1e-3
SCORE_TOL = 1e-4


def inputs(coco, whole_images: int, boxes_per_image: int):
    frames, boxes = [], []
    for _, image, people in coco[:whole_images]:
        frames.append(image)
        boxes.append(whole(image))
    for _, image, people in coco:
        for box in people[:boxes_per_image]:
            frames.append(image)
            boxes.append(box)
    return frames, np.stack(boxes)


@pytest.mark.parametrize("name, whole_images, boxes_per_image", [(MODEL_M, 4, 1), (MODEL_L, 1, 0)])
def test_native_equals_mmpose_on_real_images(backend_pair, coco, name, whole_images, boxes_per_image):
    pair = backend_pair(name)
    frames, boxes = inputs(coco, whole_images, boxes_per_image)
    if name == MODEL_L:  # the -l 384x288 model is 3x the cost: one whole image and one given box
        frames.append(coco[2][1])
        boxes = np.concatenate([boxes, coco[2][2][3:4]])
    ours_kp, ours_sc = pair.native.estimate(frames, boxes)
    ref_kp, ref_sc = pair.mmpose.estimate(frames, boxes)
    assert ours_kp.shape == ref_kp.shape == (len(frames), 133, 2)
    assert ours_kp.dtype == np.float32 and ours_sc.dtype == np.float32
    assert np.abs(ours_kp - ref_kp).max() <= KEYPOINT_TOL_PX
    assert np.abs(ours_sc - ref_sc).max() <= SCORE_TOL
    # Not a vacuous agreement: keypoints spread over each crop and differ between inputs.
    assert (ours_kp.std(axis=1) > 5).all()
    assert np.abs(ours_kp[0] - ours_kp[-1]).mean() > 5
    assert inside_padded_crops(ours_kp, boxes)  # frame pixels, around the box each crop was cut from


@pytest.mark.parametrize("backend", ["native", "mmpose"])
def test_batched_equals_frame_by_frame(backend_pair, coco, backend):
    pair = backend_pair(MODEL_M)
    estimator = getattr(pair, backend)
    frames, boxes = inputs(coco, 2, 1)
    frames, boxes = frames[:5], boxes[:5]
    batched_kp, batched_sc = estimator.estimate(frames, boxes)
    single = [estimator.estimate(frames[i : i + 1], boxes[i : i + 1]) for i in range(len(frames))]
    single_kp = np.concatenate([kp for kp, _ in single])
    single_sc = np.concatenate([sc for _, sc in single])
    assert np.abs(batched_kp - single_kp).max() <= KEYPOINT_TOL_PX
    assert np.abs(batched_sc - single_sc).max() <= SCORE_TOL
