"""Top-down crops and SimCC decoding against mmpose's own transforms and codec, value for value."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.rtmpose.codec import decode_simcc, input_to_frame
from pipeline.pose.topdown import box_center_scale, crop_inputs, fix_aspect_ratio
from pose_support import whole


@pytest.fixture(scope="module")
def mmpose_transforms():
    from pipeline.pose.openmmlab import import_registries

    import_registries()
    from mmpose.datasets.transforms import GetBBoxCenterScale, TopdownAffine

    return GetBBoxCenterScale(), {size: TopdownAffine(input_size=size) for size in ((192, 256), (288, 384))}


def test_box_center_scale_and_aspect():
    centers, scales = box_center_scale(np.array([[10, 20, 110, 60]], dtype=np.float32), 1.25)
    np.testing.assert_array_equal(centers, [[60, 40]])
    np.testing.assert_array_equal(scales, [[125, 50]])
    # wide box: height grows to width / aspect; tall box: width grows to height * aspect
    np.testing.assert_allclose(fix_aspect_ratio(np.array([[120, 40]], np.float32), 0.75), [[120, 160]])
    np.testing.assert_allclose(fix_aspect_ratio(np.array([[30, 400]], np.float32), 0.75), [[300, 400]])


@pytest.mark.parametrize("size", [(192, 256), (288, 384)])
def test_crops_are_pixel_identical_to_mmpose(coco, mmpose_transforms, size):
    center_scale, affines = mmpose_transforms
    _, image, people = coco[3]
    height, width = image.shape[:2]
    boxes = np.concatenate(
        [
            whole(image)[None],
            people,
            np.array(
                [
                    [-40.5, -10.25, 120.75, 300.5],  # reaches outside the frame
                    [width - 30, height - 80, width + 50, height + 7],
                    [100.3, 200.7, 101.1, 201.2],
                ],
                dtype=np.float32,
            ),
        ]
    )  # about one pixel
    crops, centers, scales = crop_inputs([image] * len(boxes), boxes, size, 1.25)
    assert crops.shape == (len(boxes), size[1], size[0], 3) and crops.dtype == np.uint8
    for i, box in enumerate(boxes):
        result = affines[size].transform(center_scale.transform({"img": image, "bbox": box[None].copy()}))
        np.testing.assert_array_equal(crops[i], result["img"])
        np.testing.assert_array_equal(centers[i], result["input_center"])
        np.testing.assert_array_equal(scales[i], result["input_scale"])


def test_decode_matches_mmpose_simcc_codec(mmpose_transforms):
    from mmpose.codecs import SimCCLabel

    codec = SimCCLabel(input_size=(192, 256), sigma=(4.9, 5.66), simcc_split_ratio=2.0, normalize=False, use_dark=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 133, 384)).astype(np.float32)
    y = rng.normal(size=(3, 133, 512)).astype(np.float32)
    x[0, :10] -= 10  # all-negative logits: mmpose marks such keypoints -1 (score <= 0)
    ours_kp, ours_sc = decode_simcc(x, y, 2.0)
    ref_kp, ref_sc = codec.decode(x, y)
    np.testing.assert_array_equal(ours_kp, ref_kp)
    np.testing.assert_array_equal(ours_sc, ref_sc)
    assert (ours_kp[0, :10] == -0.5).all()


def test_decode_reads_the_argmax_bin_and_the_weaker_axis():
    x = np.zeros((1, 133, 384), np.float32)
    y = np.zeros((1, 133, 512), np.float32)
    x[0, 5, 101], y[0, 5, 300] = 0.9, 0.4
    keypoints, scores = decode_simcc(x, y, 2.0)
    np.testing.assert_array_equal(keypoints[0, 5], [50.5, 150.0])
    assert scores[0, 5] == np.float32(0.4)


def test_input_pixels_map_back_to_the_frame():
    centers = np.array([[300.0, 200.0]], np.float32)
    scales = np.array([[150.0, 200.0]], np.float32)
    points = np.array([[[96.0, 128.0], [0.0, 0.0], [192.0, 256.0]]], np.float32)
    mapped = input_to_frame(points, (192, 256), centers, scales)
    np.testing.assert_allclose(mapped[0], [[300, 200], [225, 100], [375, 300]])
    assert mapped.dtype == np.float32
