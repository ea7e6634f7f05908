"""Streaming clips through the model in fixed-size pieces, with decode running ahead of inference.

The sampled frames of all clips in a request list are cut into *units* of at most `chunk_frames`
frames: a long clip spans several units (so a 300-frame 1080p clip is never held at full size all at
once: 64 frames are ~400 MB), and short clips share one unit (so their crops fill whole batches).
Each unit's frames are asked of the DecodeService (a child process) one unit ahead: while the model
runs on unit i, the child decodes unit i+1. A clip whose decode fails is reported once, and its
remaining pieces are drained and dropped.

A job may carry `extra_sets`: other consumers' frames of the same clip (the rgb stage's, resized),
decoded in the same requests as the pose frames (one decode per clip, pipeline/extract). Each extra
frame rides with the piece whose frame range holds it; `ClipJob.extra(k)` gives set k's frames once
the job is finished.

With NVDEC (runtime.decoder), `stream_on_device` decodes each clip once on the GPU instead (the union of
its pose frames and extra sets, pipeline.video.nvdec.nvdec_frame_sets) and runs the same units on
slices of that tensor: pieces then hold device tensors, not host arrays, and extra sets come back full
size (their consumer resizes on the device). Clips NVDEC declines or fails on are left for
`stream_units`; each job's `state["decoded_by"]` holds what its items' provenance says about the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from pipeline.runner.stage import ItemRequest
from pipeline.store.records import ItemFailed
from pipeline.video.nvdec import NVDEC_DECODED, NvdecReader, OnCpu, nvdec_frame_sets
from pipeline.video.service import DecodeService


@dataclass
class ClipJob:
    """One clip's sampled frames and the results gathered for them, piece by piece, in order."""

    request: ItemRequest
    frames: np.ndarray  # clip frame indices (0 = the clip's first frame)
    first_frame: int  # video frame number of clip frame 0
    pieces: list[dict[str, np.ndarray]] = field(default_factory=list)
    done: int = 0  # frames with results so far
    failure: ItemFailed | None = None
    state: dict[str, Any] = field(default_factory=dict)  # per-clip state of the box rule (a signer track)
    extra_sets: list[tuple[np.ndarray, int | None]] = field(default_factory=list)  # (clip frames, short side)
    extra_pieces: list[list[np.ndarray]] = field(default_factory=list)  # per decoded piece: its part of each set

    @property
    def finished(self) -> bool:
        return self.failure is not None or self.done == len(self.frames)

    def result(self, name: str) -> np.ndarray:
        return np.concatenate([piece[name] for piece in self.pieces])

    def extra(self, k: int) -> "np.ndarray | torch.Tensor":  # noqa: F821
        """Extra set k's frames in its order ((n, H, W, 3) uint8), gathered from every piece (one device
        tensor when the clip was decoded by NVDEC)."""
        parts = [piece[k] for piece in self.extra_pieces if len(piece[k])]
        if parts and not isinstance(parts[0], np.ndarray):
            return parts[0]  # NVDEC: one piece holds the whole set
        return np.concatenate(parts) if parts else np.zeros((0, 0, 0, 3), dtype=np.uint8)


@dataclass
class Piece:
    """Frames [start, stop) of one job's frame list, decoded as one request."""

    job: ClipJob
    start: int
    stop: int
    ticket: int | None = None
    images: "np.ndarray | torch.Tensor | None" = None  # (n, H, W, 3) RGB uint8 once decoded  # noqa: F821

    def extra_frames(self) -> list[np.ndarray]:
        """The clip frames of each of the job's extra sets that this piece decodes: those from this piece's
        first pose frame (the clip's start, for the first piece) up to the next piece's first frame."""
        frames = self.job.frames
        low = frames[self.start] if self.start > 0 else np.iinfo(np.int64).min
        high = frames[self.stop] if self.stop < len(frames) else np.iinfo(np.int64).max
        return [indices[(indices >= low) & (indices < high)] for indices, _ in self.job.extra_sets]


def plan_units(jobs: list[ClipJob], chunk_frames: int) -> list[list[Piece]]:
    """Cut the jobs' frame lists into units of at most chunk_frames frames, in job order."""
    units: list[list[Piece]] = []
    current: list[Piece] = []
    room = chunk_frames
    for job in jobs:
        start = 0
        while start < len(job.frames):
            stop = min(len(job.frames), start + room)
            current.append(Piece(job, start, stop))
            room -= stop - start
            start = stop
            if room == 0:
                units.append(current)
                current, room = [], chunk_frames
    if current:
        units.append(current)
    return units


def _submit(unit: list[Piece], decoder: DecodeService) -> None:
    for piece in unit:
        job = piece.job
        frames = job.first_frame + job.frames[piece.start : piece.stop]
        if job.extra_sets:
            sets = [(frames, None)] + [
                (job.first_frame + extra, side) for extra, (_, side) in zip(piece.extra_frames(), job.extra_sets)
            ]
            piece.ticket = decoder.submit_frame_sets(job.request.video_path, sets)
        else:
            piece.ticket = decoder.submit_frames(job.request.video_path, frames)


def _collect(unit: list[Piece], decoder: DecodeService) -> list[Piece]:
    """Take each piece's frames; a failed decode fails its job. Returns the pieces of live jobs."""
    live = []
    for piece in unit:
        try:
            if piece.job.extra_sets:
                images, *extras = decoder.frame_sets(piece.ticket)
            else:
                images, extras = decoder.frames(piece.ticket), []
        except ItemFailed as failed:
            piece.job.failure = piece.job.failure or failed
            continue
        if piece.job.failure is None:
            piece.images = images
            if extras:
                piece.job.extra_pieces.append(extras)
            live.append(piece)
    return live


def stream_units(
    jobs: list[ClipJob], chunk_frames: int, decoder: DecodeService, run_unit: Callable[[list[Piece]], None]
) -> Iterator[ClipJob]:
    """Run `run_unit` on every unit (it must append one result piece per Piece to its job and add the
    piece's frame count to job.done), decoding one unit ahead; yield each job once it is finished.
    Every job must have at least one frame."""
    units = plan_units(jobs, chunk_frames)
    reported: set[int] = set()
    if units:
        _submit(units[0], decoder)
    for i, unit in enumerate(units):
        if i + 1 < len(units):
            _submit(units[i + 1], decoder)  # decoded by the child while the model works on this unit
        live = _collect(unit, decoder)
        if live:
            run_unit(live)
        for piece in live:
            piece.images = None
        for job in {id(p.job): p.job for p in unit}.values():
            if job.finished and id(job) not in reported:
                reported.add(id(job))
                yield job


def unit_frames(pieces: list[Piece]) -> "list[np.ndarray] | torch.Tensor":  # noqa: F821
    """The frames of a unit's pieces in order: host arrays, or one device tensor (NVDEC-decoded pieces)."""
    if isinstance(pieces[0].images, np.ndarray):
        return [image for piece in pieces for image in piece.images]
    import torch

    return torch.cat([piece.images for piece in pieces]) if len(pieces) > 1 else pieces[0].images


def stream_on_device(
    jobs: list[ClipJob],
    chunk_frames: int,
    reader: NvdecReader | None,
    run_unit: Callable[[list[Piece]], None],
    declined: list[ClipJob],
) -> Iterator[ClipJob]:
    """`stream_units` for clips NVDEC decodes: per job one decode of its pose frames and extra sets, then
    its units of at most chunk_frames frames run on slices of the device tensor (a unit never spans two
    clips: each clip is decoded whole, so its frames are there at once). Yields each such job, finished.
    Jobs for the CPU decoder (no reader, a clip NVDEC declines or failed on) are appended to `declined`
    for `stream_units`, with their `state["decoded_by"]` set (nvdec_frame_sets: the one fallback rule)."""
    for job in jobs:
        sets = [job.first_frame + job.frames] + [job.first_frame + frames for frames, _ in job.extra_sets]
        decoded = nvdec_frame_sets(reader, job.request, sets)
        if isinstance(decoded, OnCpu):
            job.state["decoded_by"] = decoded.provenance
            declined.append(job)
            continue
        images, *extras = decoded
        if extras:
            job.extra_pieces.append(extras)
        job.state["decoded_by"] = dict(NVDEC_DECODED)
        for unit in plan_units([job], chunk_frames):
            for piece in unit:
                piece.images = images[piece.start : piece.stop]
            run_unit(unit)
            for piece in unit:
                piece.images = None
        yield job
