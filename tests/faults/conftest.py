"""Fixtures of the fault-injection suite: small videos encoded on the spot (PyAV), never checked in."""

from __future__ import annotations

import fractions
from pathlib import Path
from typing import Callable

import numpy as np
import pytest


def encode_video(
    path: Path,
    frames: int = 8,
    width: int = 32,
    height: int = 24,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    pts_ms: list[int] | None = None,
    rotation: int | None = None,
    faststart: bool = False,
) -> Path:
    """Encode `frames` noise frames (noise, so byte offsets spread over the frames and a cut file loses
    frames, not only its index). `pts_ms` gives each frame's time in ms (variable frame rate),
    `rotation` sets the display matrix (degrees counterclockwise), `faststart` puts the index first."""
    import av

    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        rng = np.random.default_rng(frames * 1000 + width)
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def make_video() -> Callable[..., Path]:
    """`make_video(path, **options)`: see encode_video."""
    return encode_video
