"""The probe stage ("decode" in the design): decode-check every clip and record what it is.

Per clip it records fps, the frames that really decode (containers lie), size, the clip's frame range
and duration, which decoder managed, and the coded stream's format (codec, profile, pixel format,
chroma subsampling, bit depth, rotation: what NVDEC's per-clip choice needs); bad files become
failures with a reason (missing_file, empty_file, not_a_video, no_frames, truncated,
clip_out_of_range, decode_timeout), never a crash. Downstream stages read these columns from the probe
view instead of opening containers again: every fact is gathered in the decoder child, under its timeout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from pipeline.config import knob
from pipeline.runner.stage import ItemRequest, Stage, WorkerContext
from pipeline.store.records import Failure, Item, ItemFailed
from pipeline.video.sampling import clip_frame_range
from pipeline.video.service import DecodeService


@dataclass(frozen=True)
class ProbeParams:
    full_decode: bool = knob(
        True, help="decode every frame (true) or only open the container (false, fast, trusts its metadata)"
    )
    out_of_range: str = knob(
        "clamp",
        choices=("clamp", "fail"),
        help="a clip whose end lies past the video's end: clamp it (flagged `clamped`) or fail it",
    )


def clip_extent(info: dict, start_s: float | None, end_s: float | None, out_of_range: str) -> tuple[int, int, bool]:
    """(first frame, frame count, clamped) of a clip within its video, or ItemFailed."""
    total, fps = info["video_frames"], info["fps"]
    if total <= 0:
        raise ItemFailed("no_frames", "the video stream yields no frames")
    if (start_s is not None) and fps <= 0:
        raise ItemFailed("clip_out_of_range", "the video has no frame rate, so clip bounds in seconds cannot be placed")
    first, stop = clip_frame_range(total, fps, start_s, end_s)
    if first >= total:
        raise ItemFailed(
            "clip_out_of_range",
            f"clip starts at {start_s} s (frame {first}) but the video has {total} frames ({total / fps:.2f} s)",
        )
    clamped = stop > total
    if clamped and out_of_range == "fail":
        raise ItemFailed(
            "clip_out_of_range",
            f"clip ends at {end_s} s (frame {stop}) but the video has {total} frames "
            f"({total / fps:.2f} s); set probe.out_of_range: clamp to keep it",
        )
    stop = min(stop, total)
    if stop <= first:
        raise ItemFailed("clip_out_of_range", f"clip [{start_s}, {end_s}] s holds no frame at {fps:.3f} fps")
    return first, stop - first, clamped


class ProbeStage(Stage):
    name = "probe"
    VERSION = 5  # 2: rotation metadata applied, still images refused, cut-short files with no frame are `truncated`
    #              3: animated GIF and WebP are clips (were refused as still images)
    #              4: the stream format (profile, pix_fmt, chroma, bit_depth) in attrs, codec also without a full
    #                 decode, and those with codec and rotation as view columns (NVDEC's choice reads them)
    #              5: folders of PNG frames decode (they failed as not_a_video: decord's libpng broke cv2's)
    upstream = "manifest"
    view_attrs = (
        "fps",
        "video_frames",
        "first_frame",
        "num_frames",
        "width",
        "height",
        "duration_s",
        "decoder",
        "clamped",
        "codec",
        "profile",
        "pix_fmt",
        "chroma",
        "bit_depth",
        "rotation",
    )

    def fingerprint_inputs(self):
        p: ProbeParams = self.params["probe"]
        return {"full_decode": p.full_decode, "out_of_range": p.out_of_range}, {}

    def process(self, requests: list[ItemRequest], ctx: WorkerContext) -> Iterator[Item | Failure]:
        p: ProbeParams = self.params["probe"]
        with DecodeService(timeout_s=self.params.runtime.decode_timeout_s) as decoder:
            tickets = [(r, decoder.submit_probe(r.video_path, p.full_decode)) for r in requests]
            for request, ticket in tickets:
                try:
                    info, decode_error = decoder.probe(ticket)
                    if decode_error:
                        cut_short = info["video_frames"] or info["announced_frames"]  # the container promised frames
                        raise ItemFailed(
                            "truncated" if cut_short else "not_a_video",
                            f"{request.row['video_path']}: {decode_error} "
                            f"(decoded {info['video_frames']} of {info['announced_frames']} announced frames)",
                        )
                    first, count, clamped = clip_extent(info, request.start_s, request.end_s, p.out_of_range)
                except ItemFailed as failed:
                    yield Failure(request.sample_id, failed.reason, failed.message, request.item_key)
                    continue
                attrs = {
                    **info,
                    "first_frame": first,
                    "num_frames": count,
                    "clamped": clamped,
                    "duration_s": count / info["fps"] if info["fps"] > 0 else 0.0,
                }
                yield Item(
                    request.item_key,
                    request.sample_id,
                    {},
                    attrs,
                    {"content_hash": request.content_hash, "start_s": request.start_s, "end_s": request.end_s},
                )
