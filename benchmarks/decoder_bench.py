"""decord against PyAV (and torchcodec where it imports) on How2Sign-like clips, as the stages decode.

    python benchmarks/decoder_bench.py [--clips 4] [--repeats 3] [--out FILE]

decord is unmaintained since 2021 and the reason the decoder child needs its deadlock guards, so it
stays only where it is faster. Each pattern is what a stage asks of pipeline/video/decode.py, run
through the same functions with `prefer` set to each decoder (torchcodec through its own API, with the
same cv2 resize), on 1280x720 24 fps 7 s clips (pipeline/sample/generate.py how2sign_like_clips):
- probe: every frame decoded and counted (count_decodable: probe.full_decode);
- pose: the thinned frame list at full size (how2sign profile: thin 300, so every frame of a 7 s clip);
- rgb: the same frames with the short side resized to 256 (rgb.resize);
- pose+rgb: both sets from one decode (read_frame_sets: the extract stage).
Frames per second of video decoded (higher is better), median over `--repeats`, in this process with
one thread each, so the figures compare the libraries, not the child process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.sample.generate import how2sign_like_clips  # noqa: E402
from pipeline.video.decode import count_decodable, read_frame_sets  # noqa: E402
from pipeline.video.sampling import frame_list  # noqa: E402

RESIZE = 256


def _patterns(frames: dict[Path, int]) -> dict[str, Callable[[Path, str], int]]:
    """The stages' decode patterns; `frames` is each clip's frame count (the rendered clips differ in length)."""
    thinned = {clip: frame_list(count, "thin", 300) for clip, count in frames.items()}

    def probe(path: Path, prefer: str) -> int:
        info, error = count_decodable(path, prefer)
        assert error is None, error
        return info.video_frames

    def sets(*wanted: int | None) -> Callable[[Path, str], int]:
        def run(path: Path, prefer: str) -> int:
            out = read_frame_sets(path, [(thinned[path], short) for short in wanted], prefer)
            return sum(len(a) for a in out) // len(out)

        return run

    return {"probe": probe, "pose": sets(None), "rgb": sets(RESIZE), "pose+rgb": sets(None, RESIZE)}


def _torchcodec(frames: dict[Path, int]) -> dict[str, Callable[[Path, str], int]] | None:
    try:
        from torchcodec.decoders import VideoDecoder
    except Exception:  # not installed, or its native libraries do not load here
        return None
    import cv2

    from pipeline.video.decode import resized_size

    thinned = {clip: frame_list(count, "thin", 300).tolist() for clip, count in frames.items()}

    def decode(path: Path, resize: bool) -> int:
        batch = VideoDecoder(str(path), dimension_order="NHWC").get_frames_at(thinned[path]).data.numpy()
        if resize:
            h, w = batch.shape[1:3]
            size = resized_size(w, h, RESIZE)
            batch = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in batch])
        return len(batch)

    def probe(path: Path, _: str) -> int:
        return sum(1 for _ in VideoDecoder(str(path)))

    return {
        "probe": probe,
        "pose": lambda p, _: decode(p, False),
        "rgb": lambda p, _: decode(p, True),
        "pose+rgb": lambda p, _: decode(p, True),
    }


def measure(clips: list[Path], run: Callable[[Path, str], int], prefer: str, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        started, frames = time.perf_counter(), 0
        for clip in clips:
            frames += run(clip, prefer)
        rates.append(frames / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clips = how2sign_like_clips(Path(tmp), args.clips)
        frames = {clip: count_decodable(clip)[0].video_frames for clip in clips}
        result: dict = {
            "clips": len(clips),
            "frames_per_clip": f"{min(frames.values())}-{max(frames.values())}",
            "resolution": "1280x720",
            "repeats": args.repeats,
            "resize": RESIZE,
            "frames_per_s": {},
        }
        for name, run in _patterns(frames).items():
            result["frames_per_s"][name] = {
                prefer: round(measure(clips, run, prefer, args.repeats), 1) for prefer in ("decord", "pyav")
            }
        codec = _torchcodec(frames)
        result["torchcodec"] = "measured" if codec else "not importable here"
        for name, run in (codec or {}).items():
            result["frames_per_s"][name]["torchcodec"] = round(measure(clips, run, "", args.repeats), 1)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
