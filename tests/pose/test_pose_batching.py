"""Units of frames across clips, decoded one unit ahead by the real DecodeService."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.pose.batching import ClipJob, plan_units, stream_units
from pipeline.runner.stage import ItemRequest
from pipeline.video.decode import read_frames
from pipeline.video.service import DecodeService


def job(path: Path, frames, first_frame: int = 0, sample_id: str | None = None) -> ClipJob:
    request = ItemRequest(sample_id or path.name, "key-" + (sample_id or path.name), path, None, None, "hash", {})
    return ClipJob(request, np.asarray(frames, dtype=np.int64), first_frame)


def test_long_clips_are_cut_and_short_clips_share_units(tmp_path):
    jobs = [job(tmp_path / "a", range(5)), job(tmp_path / "b", range(130)), job(tmp_path / "c", range(3))]
    units = plan_units(jobs, 64)
    layout = [[(p.job.request.sample_id, p.start, p.stop) for p in unit] for unit in units]
    assert layout == [[("a", 0, 5), ("b", 0, 59)], [("b", 59, 123)], [("b", 123, 130), ("c", 0, 3)]]
    assert all(sum(p.stop - p.start for p in unit) <= 64 for unit in units)


class RecordingDecoder(DecodeService):
    """The real decoder, noting the order of requests and answers taken."""

    def __init__(self, log: list, **kwargs):
        super().__init__(**kwargs)
        self.log = log

    def submit_frames(self, path, indices, short_side=None):
        ticket = super().submit_frames(path, indices, short_side)
        self.log.append(("submit", ticket))
        return ticket

    def frames(self, ticket):
        self.log.append(("take", ticket))
        return super().frames(ticket)


def test_stream_decodes_ahead_keeps_order_and_isolates_a_failed_clip(testdata):
    videos = testdata / "videos"
    portrait, avi = videos / "slp-pose__test_video.mp4", videos / "mmaction2__test.avi"
    missing = videos / "missing.mp4"
    jobs = [
        job(portrait, [0, 10, 20, 57]),
        job(missing, [0, 1], sample_id="missing"),
        job(avi, np.arange(0, 24, 3), first_frame=100, sample_id="late-clip"),
    ]
    log: list = []
    seen = []

    def run_unit(pieces):
        log.append(("run", len(log)))
        for piece in pieces:
            seen.append((piece.job.request.sample_id, piece.start, piece.stop, piece.images.copy()))
            piece.job.pieces.append({"n": np.full(piece.stop - piece.start, piece.start)})
            piece.job.done += piece.stop - piece.start

    with RecordingDecoder(log, timeout_s=60) as decoder:
        finished = list(stream_units(jobs, 5, decoder, run_unit))
    assert [j.request.sample_id for j in finished] == ["slp-pose__test_video.mp4", "missing", "late-clip"]
    assert finished[1].failure is not None and finished[1].failure.reason == "missing_file"
    assert str(missing) in finished[1].failure.message
    assert all(j.failure is None and j.done == len(j.frames) for j in (finished[0], finished[2]))
    # frames are what a direct decode gives, at video frame first_frame + clip index, in order
    portrait_frames = np.concatenate([images for sid, _, _, images in seen if sid == portrait.name])
    np.testing.assert_array_equal(portrait_frames, read_frames(portrait, np.array([0, 10, 20, 57])))
    late = np.concatenate([images for sid, _, _, images in seen if sid == "late-clip"])
    np.testing.assert_array_equal(late, read_frames(avi, 100 + np.arange(0, 24, 3)))
    assert [(sid, a, b) for sid, a, b, _ in seen] == [(portrait.name, 0, 4), ("late-clip", 0, 4), ("late-clip", 4, 8)]
    # decode runs one unit ahead: every unit's frames were asked for before the previous unit ran
    events = [e for e, _ in log]
    runs = [i for i, e in enumerate(events) if e == "run"]
    submits = [i for i, e in enumerate(events) if e == "submit"]
    assert len(runs) == 3
    assert submits[-1] < runs[1]  # the last unit was submitted before the second one ran
