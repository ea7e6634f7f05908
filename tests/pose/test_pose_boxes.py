"""Signer box rules: keypoint boxes of the two-pass rule, one tracked signer among several people, NMS."""

from __future__ import annotations

import numpy as np

from pipeline.pose.boxes import SignerTrack, box_iou, keypoint_boxes, prominence, whole_frame_box
from pipeline.pose.detector import nms


def test_keypoint_box_is_the_tight_box_of_confident_body_keypoints():
    keypoints = np.zeros((2, 133, 2), np.float32)
    scores = np.zeros((2, 133), np.float32)
    keypoints[0, :5] = [[100, 50], [120, 40], [80, 60], [110, 200], [90, 150]]
    scores[0, :5] = [0.9, 0.8, 0.7, 0.6, 0.5]
    keypoints[0, 5], scores[0, 5] = [5, 5], 0.1  # below the threshold: ignored
    keypoints[0, 100], scores[0, 100] = [500, 500], 0.99  # a hand keypoint: not a body keypoint
    keypoints[1, :3], scores[1, :3] = [[1, 1], [2, 2], [3, 3]], 0.9  # too few confident keypoints
    boxes, fallback = keypoint_boxes(keypoints, scores, np.array([[640, 480], [640, 480]]), 0.3, 4)
    np.testing.assert_array_equal(boxes[0], [80, 40, 120, 200])
    np.testing.assert_array_equal(boxes[1], whole_frame_box(640, 480))
    assert fallback.tolist() == [False, True]
    assert boxes.dtype == np.float32


def test_keypoint_box_is_clipped_to_the_frame():
    keypoints = np.array([[[-30, -10], [700, 20], [300, 500], [100, 100]] + [[0, 0]] * 129], np.float32)
    scores = np.array([[0.9] * 4 + [0.0] * 129], np.float32)
    boxes, fallback = keypoint_boxes(keypoints, scores, np.array([[640, 480]]), 0.3, 4)
    np.testing.assert_array_equal(boxes[0], [0, 0, 640, 480])
    assert not fallback[0]


def detections(*boxes_and_scores):
    return np.array(boxes_and_scores, np.float32).reshape(-1, 5)


def test_the_largest_most_central_person_is_chosen_and_kept():
    track = SignerTrack(960, 540, smoothing=0.0)
    signer = [400, 100, 560, 540, 0.6]  # central and large
    passer = [20, 300, 60, 400, 0.99]  # small, at the edge, more confident
    big_edge = [700, 0, 960, 540, 0.9]  # large but at the edge
    assert prominence(detections(signer, big_edge)[:, :4], 960, 540).argmax() == 0
    np.testing.assert_array_equal(track.update(detections(passer, signer, big_edge)), signer[:4])
    # next frames: the signer moved a little; the detection order changed; the others are still there
    moved = [410, 100, 570, 540, 0.5]
    np.testing.assert_array_equal(track.update(detections(big_edge, moved, passer)), moved[:4])
    # a frame without detections keeps the last box
    np.testing.assert_array_equal(track.update(detections()), moved[:4])
    assert track.reselections == 0 and track.fallback_frames == 0


def test_lost_track_is_chosen_afresh_and_counted():
    track = SignerTrack(960, 540, smoothing=0.0)
    track.update(detections([400, 100, 560, 540, 0.6]))
    other = [700, 100, 800, 300, 0.8]
    np.testing.assert_array_equal(track.update(detections(other)), other[:4])
    assert track.reselections == 1


def test_frames_before_the_first_detection_get_the_whole_frame():
    track = SignerTrack(320, 240, smoothing=0.5)
    np.testing.assert_array_equal(track.update(detections()), [0, 0, 320, 240])
    assert track.fallback_frames == 1


def test_smoothing_is_an_exponential_moving_average_and_causal():
    boxes = [[100, 100, 200, 300, 0.9], [110, 100, 210, 300, 0.9], [130, 100, 230, 300, 0.9]]
    track = SignerTrack(640, 480, smoothing=0.5)
    out = [track.update(detections(b)) for b in boxes]
    np.testing.assert_allclose(out[1], [105, 100, 205, 300])
    np.testing.assert_allclose(out[2], [117.5, 100, 217.5, 300])
    # causal: the same frames fed in two pieces (as two units of a long clip) give the same boxes
    split = SignerTrack(640, 480, smoothing=0.5)
    pieces = [split.update(detections(b)) for b in boxes[:1]] + [split.update(detections(b)) for b in boxes[1:]]
    np.testing.assert_array_equal(np.stack(pieces), np.stack(out))


def test_box_iou():
    np.testing.assert_allclose(
        box_iou(np.array([0, 0, 10, 10.0]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30.0]])),
        [1, 1 / 3, 0],
    )


def reference_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    order = list(np.argsort(-scores, kind="stable"))
    keep = []
    while order:
        best = order.pop(0)
        keep.append(best)
        order = [i for i in order if box_iou(boxes[best], boxes[i : i + 1])[0] <= threshold]
    return keep


def test_opencv_nms_equals_greedy_nms():
    rng = np.random.default_rng(3)
    corners = rng.uniform(0, 200, (120, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(5, 80, (120, 2))], axis=1).astype(np.float32)
    scores = rng.uniform(0.05, 1, 120).astype(np.float32)
    for threshold in (0.3, 0.6, 0.65):
        assert nms(boxes, scores, threshold).tolist() == reference_nms(boxes, scores, threshold)
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []
