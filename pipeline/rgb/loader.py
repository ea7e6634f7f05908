"""Decode ahead of the model: clips go round-robin to `decoders` child decoders, each kept `prefetch`
clips ahead, and come back in order. While the model runs on one clip's windows, the children decode
the next ones (decoding is the bottleneck on a GPU box, so add decoders there).

Each clip is one request for exactly the frames its windows need (sorted, unique video frame
numbers), resized in the child so its short side is `short_side` pixels: a frame shared by
overlapping windows is decoded once. A clip that fails to decode comes back as its ItemFailed.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Generic, Iterable, Iterator, TypeVar

import numpy as np

from pipeline.store.records import ItemFailed
from pipeline.video.service import DecodeService

T = TypeVar("T")


class PrefetchingDecoder(Generic[T]):
    """`run(jobs)` with jobs (tag, video path, video frame numbers) yields (tag, frames | ItemFailed) in order."""

    def __init__(self, decoders: int, prefetch: int, short_side: int | None, timeout_s: float):
        self.services = [DecodeService(timeout_s=timeout_s) for _ in range(max(1, decoders))]
        self.ahead = max(1, prefetch) * len(self.services)
        self.short_side = short_side

    def run(self, jobs: Iterable[tuple[T, Path, np.ndarray]]) -> Iterator[tuple[T, np.ndarray | ItemFailed]]:
        pending: deque = deque()
        jobs = iter(jobs)
        turn = 0
        try:
            while True:
                while len(pending) <= self.ahead:  # the clip to hand over next, plus `ahead` more
                    job = next(jobs, None)
                    if job is None:
                        break
                    tag, path, indices = job
                    service = self.services[turn % len(self.services)]
                    turn += 1
                    pending.append((tag, service, service.submit_frames(path, indices, self.short_side)))
                if not pending:
                    return
                tag, service, ticket = pending.popleft()
                try:
                    frames: np.ndarray | ItemFailed = service.frames(ticket)
                except ItemFailed as failed:
                    frames = failed
                yield tag, frames
        finally:  # the consumer stopped early: take what was asked for, so no shared memory is left behind
            for _, service, ticket in pending:
                try:
                    service.frames(ticket)
                except ItemFailed:
                    pass

    def close(self) -> None:
        for service in self.services:
            service.close()

    def __enter__(self) -> "PrefetchingDecoder[T]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
