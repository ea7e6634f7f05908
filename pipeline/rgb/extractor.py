"""Batched I3D over windows of many clips: fill every forward pass, whatever the clip boundaries.

A clip is submitted as its decoded frames (F, 3, S, S) on the device plus the (n, window) positions of
its windows in those frames; each frame is normalised once however many windows share it. Windows
queue up across clips and run `batch_size` at a time; a clip's (n, 1024) features are handed back as
soon as its last window has run, in submission order. A window's features do not depend on the other
windows in its batch (the network has no cross-sample operation in eval mode), which the tests check.

Channels-last-3d memory everywhere (oneDNN and cuDNN both have faster kernels for I3D's convolutions
and pools in that layout; benchmarks/rgb_bench.py times the stage as a whole). On CUDA also:
autocast in bf16/fp16, cuDNN autotuning, optional torch.compile, and batches padded to a constant
size so neither cuDNN nor compile sees a new shape per chunk. A CUDA out-of-memory error halves the batch size (for
the rest of the run) and retries the failed batch in halves instead of losing the run; only a single window that
does not fit is an error. On CPU: fp32, no padding, as many threads as torch is given (runtime.threads_per_worker).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterator

import numpy as np
import torch

from pipeline.models.precision import autocast_dtype

log = logging.getLogger(__name__)


@dataclass
class _Clip:
    key: Hashable
    frames: torch.Tensor  # (F, 3, S, S) normalised, on the device
    positions: torch.Tensor  # (n, window) int64 indices into frames, on the device
    features: np.ndarray  # (n, 1024) float32, filled as batches finish
    done: int = 0


@dataclass
class WindowExtractor:
    """`submit` clips, iterate `ready()`; `finish()` runs what is left. See the module docstring."""

    model: torch.nn.Module
    device: torch.device
    batch_size: int
    precision: str = "fp32"  # bf16 | fp16 | fp32 (CUDA only; CPU is always fp32)
    compile: bool = False
    batch_sizes: list[int] = field(default_factory=list)  # sizes of the forward passes run (for reports/tests)
    _queue: deque = field(default_factory=deque)  # (clip, window index) not yet run
    _clips: deque = field(default_factory=deque)  # submitted clips not yet handed back
    _forward: Any = None

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        self.cuda = self.device.type == "cuda"
        self.model = self.model.eval().to(self.device, memory_format=torch.channels_last_3d)
        if self.cuda:
            torch.backends.cudnn.benchmark = True
        self._forward = torch.compile(self.model, dynamic=False) if self.compile else self.model

    @property
    def feature_dim(self) -> int:
        return 1024

    def submit(self, key: Hashable, frames: torch.Tensor, positions: np.ndarray) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.ndim != 2 or not len(positions):
            raise ValueError(f"clip {key!r}: positions must be (n >= 1, window), got shape {positions.shape}")
        if positions.max() >= len(frames) or positions.min() < 0:
            raise ValueError(f"clip {key!r}: window positions reach frame {positions.max()} of {len(frames)}")
        clip = _Clip(
            key,
            frames,
            torch.from_numpy(positions).to(self.device),
            np.empty((len(positions), self.feature_dim), dtype=np.float32),
        )
        self._clips.append(clip)
        self._queue.extend((clip, i) for i in range(len(positions)))

    def ready(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Run full batches while there are enough queued windows; yield the clips they complete."""
        while len(self._queue) >= self.batch_size:
            self._run_batch()
            yield from self._completed()

    def finish(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        """Run every queued window (the last batch may be short); yield the remaining clips."""
        while self._queue:
            self._run_batch()
            yield from self._completed()
        yield from self._completed()

    # -- internals ---------------------------------------------------------------------------------
    def _completed(self) -> Iterator[tuple[Hashable, np.ndarray]]:
        while self._clips and self._clips[0].done == len(self._clips[0].features):
            clip = self._clips.popleft()
            yield clip.key, clip.features

    def _run_batch(self) -> None:
        take = [self._queue.popleft() for _ in range(min(self.batch_size, len(self._queue)))]
        segments: list[tuple[_Clip, int, int]] = []  # (clip, first window, count): consecutive windows per clip
        for clip, index in take:
            if segments and segments[-1][0] is clip and segments[-1][1] + segments[-1][2] == index:
                segments[-1] = (clip, segments[-1][1], segments[-1][2] + 1)
            else:
                segments.append((clip, index, 1))
        with torch.inference_mode():
            parts = [clip.frames[clip.positions[first : first + count]] for clip, first, count in segments]
            batch = torch.cat(parts) if len(parts) > 1 else parts[0]  # (B, window, 3, S, S)
            batch = batch.permute(0, 2, 1, 3, 4)  # (B, 3, window, S, S)
            batch = batch.contiguous(memory_format=torch.channels_last_3d)
            features = self._forward_safely(batch).float().cpu().numpy()
        row = 0
        for clip, first, count in segments:
            clip.features[first : first + count] = features[row : row + count]
            clip.done += count
            row += count

    def _forward_safely(self, batch: torch.Tensor) -> torch.Tensor:
        """The model on `batch`, halving on CUDA out-of-memory (see the module docstring)."""
        if len(batch) > self.batch_size:  # built before a halving: run it in pieces of the current size
            return torch.cat([self._forward_safely(part) for part in batch.split(self.batch_size)])
        try:
            return self._call(batch)
        except torch.OutOfMemoryError as err:
            if len(batch) == 1:
                raise RuntimeError(
                    f"one window ({tuple(batch.shape)}) does not fit in {self.device} memory; "
                    "lower rgb.size or use a larger device"
                ) from err
        # Outside the except block, so the failed attempt's activations are released before retrying.
        if self.cuda:
            torch.cuda.empty_cache()
        self.batch_size = max(1, len(batch) // 2)
        log.warning(
            "out of memory with %d windows per batch on %s: continuing with %d",
            len(batch),
            self.device,
            self.batch_size,
        )
        return self._forward_safely(batch)

    def _call(self, batch: torch.Tensor) -> torch.Tensor:
        count = len(batch)
        if self.cuda and count < self.batch_size:  # constant shapes for cuDNN autotuning and compile
            pad = batch.new_zeros((self.batch_size - count, *batch.shape[1:]))
            batch = torch.cat([batch, pad]).contiguous(memory_format=torch.channels_last_3d)
        self.batch_sizes.append(len(batch))
        dtype = autocast_dtype(self.precision) if self.cuda else None
        if dtype is not None:
            with torch.autocast("cuda", dtype=dtype):
                return self._forward(batch)[:count]
        return self._forward(batch)[:count]
