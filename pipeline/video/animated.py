"""Animated GIF and WebP files as clips, decoded with Pillow.

Why: sign-language dictionaries publish signs as animated GIFs (and WebPs). ffmpeg reads a GIF as a
video but cannot decode animated WebP, and treats both formats as still pictures elsewhere, so both
go through Pillow: one way, with each frame composited as a browser shows it and each frame's own
display time. A file of one frame stays a still image, refused like a PNG.

Timing: `fps` is frames / total display time, the average rate (as for variable-rate video: clip
bounds in seconds are placed at i / fps, exact when every frame shows equally long). A frame delay of
10 ms or less counts as 100 ms, as browsers show it (GIF writers use 0 for "as fast as possible").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.store.records import ItemFailed
from pipeline.video.info import VideoInfo

# ffmpeg's demuxer names (what the container check sees) for the formats decoded here, and Pillow's
ANIMATED_FORMATS = {"gif": "GIF", "webp_pipe": "WEBP"}
_BROWSER_MIN_DELAY_MS = 10  # delays up to this are shown as _BROWSER_DEFAULT_DELAY_MS
_BROWSER_DEFAULT_DELAY_MS = 100


def still_image_error(path: Path, format_name: str) -> ItemFailed:
    return ItemFailed(
        "not_a_video",
        f"{path} is a still image ({format_name}), not a video; a clip is a video file, "
        "an animated GIF or WebP, or a folder of frames",
    )


class AnimatedImage:
    """A decoder over an animated image: `info` (VideoInfo) and `frames(indices)` like the video decoders."""

    name = "pillow"

    def __init__(self, path: Path, format_name: str):
        from PIL import Image

        self.path = path
        try:
            image = Image.open(os.fspath(path))
        except (OSError, SyntaxError) as err:  # Pillow's "cannot identify image file" is an OSError
            raise ItemFailed("not_a_video", f"{path} does not open as an image ({err})") from None
        with image:
            if image.format != ANIMATED_FORMATS.get(format_name):
                raise still_image_error(path, format_name)
            count = getattr(image, "n_frames", 1)
            if count < 2:
                raise still_image_error(path, format_name)
            delays_ms = []
            for i in _decoded(path, image, range(count)):
                delay = float(image.info.get("duration") or 0)  # WebP sets it when the frame is decoded
                delays_ms.append(delay if delay > _BROWSER_MIN_DELAY_MS else _BROWSER_DEFAULT_DELAY_MS)
            width, height = image.size
        self.count = count
        self.info = VideoInfo(
            count * 1000.0 / sum(delays_ms), count, width, height, self.name, format_name.removesuffix("_pipe"), count
        )

    def frames(self, indices: np.ndarray | None) -> Iterator[tuple[int, np.ndarray]]:
        from PIL import Image

        wanted = (
            range(self.count) if indices is None else [i for i in np.unique(indices).tolist() if 0 <= i < self.count]
        )
        with Image.open(os.fspath(self.path)) as image:  # frames outside the clip: the caller reports them missing
            for i in _decoded(self.path, image, wanted):
                yield i, np.asarray(image.convert("RGB"))


def _decoded(path: Path, image, frames) -> Iterator[int]:
    """Seek `image` to each of `frames` (ascending: each frame is composited onto the one before) and
    decode it; a frame that does not decode (a cut file) fails the item as `truncated`."""
    for i in frames:
        try:
            image.seek(i)
            image.load()
        except (OSError, EOFError, ValueError) as err:
            raise ItemFailed("truncated", f"{path}: frame {i} does not decode ({type(err).__name__}: {err})") from None
        yield i
