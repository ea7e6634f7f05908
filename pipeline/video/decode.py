"""Decoding in this process: decord first, PyAV when decord cannot, frame folders for PHOENIX, Pillow for
animated GIF and WebP (`pipeline/video/animated.py`).

These functions may hang or crash on hostile files (decord can deadlock holding the GIL), so stages
never call them directly: `pipeline.video.service.DecodeService` runs them in a child process with a
timeout. Frames are RGB uint8, (T, H, W, 3).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from pipeline.store.records import ItemFailed
from pipeline.video.animated import ANIMATED_FORMATS, AnimatedImage, still_image_error
from pipeline.video.info import VideoInfo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
FRAME_FOLDER_FPS = 25.0  # PHOENIX-2014T is recorded at 25 fps; a frame folder carries no rate


def frame_order(name: str) -> tuple[list[str | int], str]:
    """Sort key of a frame file name: its runs of digits compared as numbers (images2.png before
    images10.png), then the name. The SEDS release orders a clip's frames by the number in their names
    (PHOENIX-2014T's `images0001.png` by the digits after `images`, dataloader_ph_retrieval_pose.py:403;
    CSL-Daily's and How2Sign's by those after the last `_`, dataloader_csl_retrieval_pose.py:407); where
    the numbers are padded to one width, as in both datasets, this is plain name order."""
    parts = re.split(r"([0-9]+)", name)
    return [int(part) if i % 2 else part for i, part in enumerate(parts)], name


def frame_folder_images(path: Path) -> list[Path]:
    """A frame folder's images in frame order (`frame_order`). The content hash lists them in this order
    (pipeline/hashmemo.py), so a folder is keyed by the frame sequence its stages decode."""
    return sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=lambda p: frame_order(p.name))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ItemFailed("missing_file", f"{path} does not exist")
    if path.is_file() and path.stat().st_size == 0:
        raise ItemFailed("empty_file", f"{path} has zero bytes")


# ffmpeg's demuxers for single pictures: they "play" an image as a one-frame video at a made-up 25 fps.
STILL_IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "tiff_pipe", "gif")


@dataclass(frozen=True)
class ContainerFacts:
    """What the container and its first frame say before any decoder is chosen (see _container_facts)."""

    quarter_turns: int = 0  # counterclockwise turns the first frame's display matrix asks for
    still: str | None = None  # the still-image demuxer's name, for a picture given as a clip
    codec: str = ""
    profile: str = ""
    pix_fmt: str = ""


def _container_facts(path: Path) -> ContainerFacts:
    """Read with PyAV before any decoder is chosen. Why: decord ignores rotation metadata (at 90 and 270
    degrees it returns 4-channel garbage frames), a picture given as a clip is a manifest mistake that
    decoders would otherwise accept as a 25 fps video, and the stream's codec, profile and pixel format
    (the first frame's, as decoded) are what NVDEC's per-clip choice needs from the probe. Unreadable
    files return empty facts: the decoders then report what is wrong with them."""
    try:
        import av

        with av.open(os.fspath(path)) as container:
            if container.format.name in STILL_IMAGE_FORMATS:
                return ContainerFacts(still=container.format.name)
            if not container.streams.video:
                return ContainerFacts()
            stream = container.streams.video[0]
            codec = stream.codec_context
            frame = next(container.decode(stream), None)
            pix_fmt = frame.format.name if frame is not None else (codec.pix_fmt or "")
            return ContainerFacts(
                round(frame.rotation / 90) % 4 if frame is not None else 0,
                None,
                codec.name,
                codec.profile or "",
                pix_fmt,
            )
    except Exception:  # advisory only, as above
        return ContainerFacts()


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(w, h) after scaling the short side to `short_side`: the one rounding rule of the CPU resize below
    and of the GPU one (pipeline/rgb/gpu_frames.py), so both give frames of the same size."""
    scale = short_side / min(height, width)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(frame: np.ndarray, short_side: int | None) -> np.ndarray:
    if not short_side:
        return frame
    import cv2

    h, w = frame.shape[:2]
    size = resized_size(w, h, short_side)
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if short_side < min(h, w) else cv2.INTER_LINEAR)


def import_decord():
    """decord, imported after OpenCV. decord's wheel carries its own libpng/zlib; loaded before cv2, they
    win the symbol lookup and cv2.imread fails on every PNG ("libpng error: bad parameters to zlib"), so
    frame folders of PNGs (PHOENIX-2014T) would fail as not_a_video in the decoder child."""
    import cv2  # noqa: F401
    import decord

    return decord


class _Decord:
    name = "decord"

    def __init__(self, path: Path):
        decord = import_decord()

        self.path = path
        self.reader = decord.VideoReader(os.fspath(path), ctx=decord.cpu(0), num_threads=1)
        first = self.reader[0].shape
        self.info = VideoInfo(
            float(self.reader.get_avg_fps()),
            len(self.reader),
            int(first[1]),
            int(first[0]),
            self.name,
            "",
            len(self.reader),
        )

    def frames(self, indices: np.ndarray | None) -> Iterator[tuple[int, np.ndarray]]:
        # get_batch on sorted, de-duplicated indices decodes forward once; the caller re-emits repeats.
        last = len(self.reader) - 1
        reads = np.arange(last + 1) if indices is None else np.unique(indices)
        final = indices is not None and last > 0 and last in reads
        if final:
            # decord 0.6.0 bug: random access that reaches the very last frame sometimes returns a stale
            # buffer (another frame's pixels: 42 of 500 reads on mmaction2__test.avi, MPEG-4 with packed
            # B-frames, even when stepping onto it from the frame before). Only a full sequential read
            # is exact, so PyAV decodes the last frame: the final picture the decoder flushes.
            reads = reads[:-1]
        for start in range(0, len(reads), 32):
            chunk = reads[start : start + 32].tolist()
            yield from zip(chunk, self.reader.get_batch(chunk).asnumpy())
        if final:
            yield last, _final_frame(self.path)


def _final_frame(path: Path) -> np.ndarray:
    """The last picture of a video: decode forward from the keyframe before its end and keep the last
    frame out (identity by position, so no timestamp arithmetic)."""
    import av

    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        if stream.duration:
            container.seek((stream.start_time or 0) + stream.duration, stream=stream, backward=True)
        frame = None
        for frame in container.decode(stream):
            pass
        if frame is None:
            raise ItemFailed("truncated", f"{path}: the last frame does not decode")
        return frame.to_ndarray(format="rgb24")


class _PyAV:
    """PyAV, forward decoding only; frames are turned upright by `quarter_turns` (np.rot90, counterclockwise)."""

    name = "pyav"

    def __init__(self, path: Path, quarter_turns: int = 0):
        import av

        self.path = path
        self.quarter_turns = quarter_turns
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise ItemFailed("not_a_video", f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 0
            width, height = int(stream.width), int(stream.height)
            if quarter_turns % 2:
                width, height = height, width
            self.info = VideoInfo(
                float(rate),
                int(stream.frames or 0),
                width,
                height,
                self.name,
                stream.codec_context.name,
                int(stream.frames or 0),
                90 * quarter_turns,
            )

    def frames(self, indices: np.ndarray | None) -> Iterator[tuple[int, np.ndarray]]:
        import av

        wanted = None if indices is None else set(np.unique(indices).tolist())
        last = (max(wanted) if wanted else -1) if wanted is not None else float("inf")
        with av.open(os.fspath(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            i = -1
            try:
                for i, frame in enumerate(container.decode(stream)):
                    if i > last:
                        break
                    if wanted is None or i in wanted:
                        image = frame.to_ndarray(format="rgb24")
                        yield (
                            i,
                            np.ascontiguousarray(np.rot90(image, self.quarter_turns)) if self.quarter_turns else image,
                        )
            except av.error.FFmpegError as err:
                raise ItemFailed("truncated", f"{self.path}: decoding stopped at frame {i + 1}: {err}") from None


class _FrameFolder:
    name = "frames"

    def __init__(self, path: Path):
        import cv2

        self.images = frame_folder_images(path)
        if not self.images:
            raise ItemFailed("no_frames", f"{path} is a folder with no images ({', '.join(IMAGE_SUFFIXES)})")
        first = cv2.imread(os.fspath(self.images[0]))
        if first is None:
            raise ItemFailed("not_a_video", f"{self.images[0]} is not a readable image")
        self.info = VideoInfo(
            FRAME_FOLDER_FPS, len(self.images), first.shape[1], first.shape[0], self.name, "image", len(self.images)
        )

    def frames(self, indices: np.ndarray | None) -> Iterator[tuple[int, np.ndarray]]:
        import cv2

        for i in range(len(self.images)) if indices is None else np.unique(indices).tolist():
            image = cv2.imread(os.fspath(self.images[i]))
            if image is None:
                raise ItemFailed("truncated", f"{self.images[i]} is not a readable image")
            yield i, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def open_source(path: Path, prefer: str = "decord"):
    """The first decoder that opens `path` (decord, then PyAV), the frame-folder reader, or Pillow for an
    animated GIF or WebP."""
    path = Path(path)
    _check_file(path)
    if path.is_dir():
        return _FrameFolder(path)
    facts = _container_facts(path)
    if facts.still in ANIMATED_FORMATS:
        return AnimatedImage(path, facts.still)  # one frame: refused as a still image
    if facts.still:
        raise still_image_error(path, facts.still)
    errors = []
    order = (_Decord, _PyAV) if prefer == "decord" else (_PyAV, _Decord)
    if facts.quarter_turns:
        order = (_PyAV,)  # decord ignores the display matrix
    for decoder in order:
        try:
            source = decoder(path, facts.quarter_turns) if decoder is _PyAV else decoder(path)
        except ItemFailed:
            raise
        except Exception as err:  # each library raises its own types for unreadable input
            errors.append(f"{decoder.name}: {type(err).__name__}: {err}")
            continue
        if source.info.video_frames <= 0 and decoder is _Decord:
            errors.append("decord: zero frames")
            continue
        source.info.set_stream_format(facts)
        return source
    raise ItemFailed("not_a_video", f"{path} does not decode as video ({'; '.join(errors)})")


def read_frames(path: Path, indices: np.ndarray, short_side: int | None = None, prefer: str = "decord") -> np.ndarray:
    """Frames at `indices` (video frame numbers, any order, repeats allowed), decoded once each.
    Falls back to PyAV when decord fails mid-way; a frame that no decoder delivers fails the item."""
    return read_frame_sets(path, [(indices, short_side)], prefer)[0]


def read_frame_sets(path: Path, sets: list[tuple[np.ndarray, int | None]], prefer: str = "decord") -> list[np.ndarray]:
    """One array per (indices, short_side) set, all from one decode of the union of their frames: the
    pose and rgb stages of one clip ask for their own frames (full size, resized) without decoding it
    twice. A frame is resized per set from the same decoded picture, so each array is byte for byte
    what `read_frames` gives for that set alone."""
    sets = [(np.asarray(indices, dtype=np.int64), short_side) for indices, short_side in sets]
    union = np.unique(np.concatenate([indices for indices, _ in sets])) if sets else np.zeros(0, dtype=np.int64)
    members = [set(indices.tolist()) for indices, _ in sets]
    got: list[dict[int, np.ndarray]] = [{} for _ in sets]

    def keep(i: int, frame: np.ndarray) -> None:
        for wanted, (_, short_side), out in zip(members, sets, got):
            if i in wanted:
                out[i] = _resize(frame, short_side)

    source = open_source(path, prefer)
    decoded: set[int] = set()
    try:
        for i, frame in source.frames(union):
            keep(i, frame)
            decoded.add(i)
    except ItemFailed:
        raise
    except Exception as err:
        if source.name != "decord":
            raise ItemFailed("truncated", f"{path}: {type(err).__name__}: {err}") from None
        fallback = _PyAV(Path(path))
        for i, frame in fallback.frames(np.array(sorted(set(union.tolist()) - decoded), dtype=np.int64)):
            keep(i, frame)
            decoded.add(i)
    missing = sorted(set(union.tolist()) - decoded)
    if missing:
        raise ItemFailed(
            "truncated",
            f"{path}: frames {missing[:5]}{'...' if len(missing) > 5 else ''} "
            f"({len(missing)} of {len(union)}) could not be decoded",
        )
    return [
        np.stack([out[i] for i in indices.tolist()]) if len(indices) else np.zeros((0, 0, 0, 3), dtype=np.uint8)
        for (indices, _), out in zip(sets, got)
    ]


def _walk(source) -> tuple[int, str | None]:
    """Decode every frame of `source`; (frames decoded, error or None)."""
    count = 0
    try:
        for count, _ in enumerate(source.frames(None), start=1):
            pass
    except ItemFailed as err:
        return count, err.message
    except Exception as err:  # decoders raise their own types on damaged streams
        return count, f"{source.name}: {type(err).__name__}: {err}"
    return count, None


def count_decodable(path: Path, prefer: str = "decord") -> tuple[VideoInfo, str | None]:
    """Decode every frame once; return (info with video_frames = frames that decoded, error or None).

    Keeps counting what did decode, so a truncated file says where it stopped. When decord fails
    part-way, PyAV gets a second try (it walks some damaged streams decord gives up on). A file cut
    short can also decode cleanly to fewer frames than its container announces (decord then simply
    reports fewer frames): that is reported as an error too, against the container's own count."""
    source = open_source(path, prefer)
    info = source.info
    count, error = _walk(source)
    if error is not None and source.name == "decord":
        try:
            pyav = _PyAV(Path(path))
            count2, error2 = _walk(pyav)
            if error2 is None or count2 > count:
                count, error = count2, error2
                info.decoder, info.codec = "pyav", pyav.info.codec
        except Exception as err:  # PyAV cannot open it either: keep decord's error, add PyAV's
            error += f"; pyav: {type(err).__name__}: {err}"
    if source.name not in ("frames", AnimatedImage.name):  # no container to announce a count
        announced = _container_frames(Path(path))
        if announced:
            info.announced_frames = announced
        # mp4 edit lists legitimately shift counts by a frame; more than that is missing data.
        if error is None and info.announced_frames > count + 1:
            error = f"the container announces {info.announced_frames} frames but only {count} decode"
    info.video_frames = count
    return info, error


def _container_frames(path: Path) -> int:
    """Frames the container metadata claims (0 when it does not say)."""
    try:
        import av

        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration and stream.time_base and stream.average_rate:
                return int(round(float(stream.duration * stream.time_base * stream.average_rate)))
    except Exception:  # metadata is advisory: an unreadable header leaves the decoded count alone
        return 0
    return 0
