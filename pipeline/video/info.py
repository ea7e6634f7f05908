"""What a decoder learns about a clip (VideoInfo), in a module of its own: every decoder fills one (the
video decoders in decode.py, animated images in animated.py), and none of them imports another for it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.video.decode import ContainerFacts


@dataclass
class VideoInfo:
    fps: float
    video_frames: int  # frames the source decodes to (counted when a full decode was done)
    width: int
    height: int
    decoder: str  # "decord", "pyav" or "frames"
    codec: str
    announced_frames: int  # what the container claims; can be wrong
    rotation: int = 0  # degrees counterclockwise applied to every frame (the container's display matrix)
    # The coded stream's format, as FFmpeg reads it from the container and the first frame; empty (0) for
    # frame folders and animated images, and where it could not be read. NVDEC's per-clip choice reads
    # these from the probe view (pipeline/video/nvdec.py nvdec_declines), so no stage opens a file for it.
    profile: str = ""  # the codec profile as FFmpeg names it ("High", "Main", "High 4:2:2", ...)
    pix_fmt: str = ""  # the decoded pixel format ("yuv420p", "yuvj420p", "yuv422p10le", ...)
    chroma: str = ""  # chroma subsampling of pix_fmt: "4:2:0", "4:2:2", "4:4:4", "4:1:1", "4:0:0" or "rgb"
    bit_depth: int = 0  # bits per sample of pix_fmt's luma

    def as_dict(self) -> dict:
        return asdict(self)

    def set_stream_format(self, facts: "ContainerFacts") -> None:
        """Take the coded stream's format from the container facts (decord's own info has no codec)."""
        self.codec = facts.codec or self.codec
        self.profile, self.pix_fmt = facts.profile, facts.pix_fmt
        self.chroma, self.bit_depth = pixel_layout(facts.pix_fmt)


def pixel_layout(pix_fmt: str) -> tuple[str, int]:
    """(chroma subsampling, luma bits) of an FFmpeg pixel format: ("4:2:0", 8) for yuv420p, ("4:2:2", 10)
    for yuv422p10le, ("rgb", 8) for rgb24; ("", 0) when `pix_fmt` is empty or unknown to FFmpeg."""
    if not pix_fmt:
        return "", 0
    import av

    try:
        layout = av.VideoFormat(pix_fmt, 4, 4)  # 4x4 pixels: the chroma planes' size gives the subsampling
    except ValueError:
        return "", 0
    bits = layout.components[0].bits
    if layout.is_rgb:
        return "rgb", bits
    if len(layout.components) < 3:
        return "4:0:0", bits
    subsampling = {(2, 2): "4:2:0", (2, 4): "4:2:2", (4, 4): "4:4:4", (1, 4): "4:1:1"}
    return subsampling.get((layout.chroma_width(), layout.chroma_height()), ""), bits
