"""Decoding ahead of the model: several decoder children, results in order, failures in place, frames exact."""

from __future__ import annotations

import numpy as np

from pipeline.rgb.loader import PrefetchingDecoder
from pipeline.store.records import ItemFailed
from pipeline.video.decode import read_frames


def test_clips_come_back_in_order_with_failures_in_place(testdata, tmp_path):
    avi = testdata / "videos" / "mmaction2__test.avi"  # 320x240, 164 frames
    mp4 = testdata / "videos" / "slp-pose__test_video.mp4"  # 540x720 portrait, 58 frames
    jobs = [
        ("a", avi, np.array([0, 1, 2, 40])),
        ("gone", tmp_path / "missing.mp4", np.array([0])),
        ("b", mp4, np.array([5, 6, 57])),
        ("c", avi, np.array([100, 150])),
    ]
    with PrefetchingDecoder(decoders=2, prefetch=1, short_side=64, timeout_s=60) as decoder:
        results = list(decoder.run(jobs))
    assert [tag for tag, _ in results] == ["a", "gone", "b", "c"]
    gone = results[1][1]
    assert isinstance(gone, ItemFailed) and gone.reason == "missing_file"
    for (tag, path, indices), (_, frames) in zip(jobs, results):
        if tag == "gone":
            continue
        assert frames.dtype == np.uint8 and len(frames) == len(indices) and min(frames.shape[1:3]) == 64
        np.testing.assert_array_equal(frames, read_frames(path, indices, short_side=64))
    assert results[2][1].shape[1:] == (85, 64, 3)  # portrait: width is the short side


def test_stopping_early_takes_every_answer_it_asked_for(testdata):
    """Each answer holds a shared-memory block that only taking it frees: a consumer that stops early must
    not leave answers behind (checked on the services, since /dev/shm is shared with other processes)."""
    avi = testdata / "videos" / "mmaction2__test.avi"
    with PrefetchingDecoder(decoders=1, prefetch=3, short_side=32, timeout_s=60) as decoder:
        run = decoder.run([(i, avi, np.arange(i, i + 8)) for i in range(5)])
        assert next(run)[0] == 0
        service = decoder.services[0]
        assert len(service._pending) + len(service._done) == 3  # three more clips were asked for
        run.close()
        assert not service._pending and not service._done
