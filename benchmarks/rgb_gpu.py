"""The rgb stage's engine vs the naive way on a GPU (or any torch device), at the paper's settings.

    python benchmarks/rgb_gpu.py [--clips 48] [--frames 150] [--width 1280 --height 720]
                                 [--batch-size 128] [--precision bf16] [--decoders 8] [--compile]
                                 [--naive-clips 4] [--device cuda] [--out DIR]

Needs only torch, numpy and opencv (no decord, dask, mmcv, h5py, blake3 or yaml): it imports the
stage's own engine (pipeline.models.i3d, pipeline.rgb.windows/frames/extractor) and decodes with
OpenCV. Clips are made first: `--clips` videos of `--frames` frames at `--width`x`--height` (moving
shapes, MPEG-4 Part 2 via cv2.VideoWriter), i.e. How2Sign-sized sentence clips; `--videos DIR` uses
real files instead. Weights are the seeded random I3D (same architecture and cost as a checkpoint).

Timings, each one run over the same clips:
- decode only: each clip's needed frames (the SEDS/CiCo windows' union) decoded once, resized to the
  short side, by `--decoders` threads (cv2 releases the GIL while decoding);
- compute only: the engine on frames already decoded (the GPU bound: windows/s);
- stage: decoder threads feeding the engine in order, `--decoders` clips ahead (as the stage's
  prefetching decoder does with child processes): BatchNorm folded, channels-last-3d, autocast,
  windows batched across clips, OOM halving;
- naive (first `--naive-clips` clips): per window, seek to its first frame and read its frames with
  cv2 (as CiCo's `_load_rgb` does), then one fp32 forward per window with the model as loaded.
Results (clips/s, windows/s, ratios, device name, peak memory) go to DIR/rgb_gpu.json, DIR being
--out or $OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.models.i3d import random_i3d  # noqa: E402  (after the path set-up)
from pipeline.rgb.extractor import WindowExtractor  # noqa: E402
from pipeline.rgb.frames import to_model_input  # noqa: E402
from pipeline.rgb.windows import plan_windows  # noqa: E402


def make_videos(folder: Path, count: int, frames: int, width: int, height: int) -> list[Path]:
    """Synthetic clips with moving content (so the codec does real work), written with OpenCV."""
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"clip{i:04d}.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
        background = rng.integers(0, 255, size=(height // 8, width // 8, 3), dtype=np.uint8)
        background = cv2.resize(background, (width, height), interpolation=cv2.INTER_LINEAR)
        for t in range(frames + i % 7):
            frame = np.roll(background, 3 * t, axis=1).copy()
            cv2.circle(
                frame, (width // 2 + int(width / 4 * np.sin(t / 9)), height // 2), height // 8, (255, 200, 150), -1
            )
            writer.write(frame)
        writer.release()
        paths.append(path)
    return paths


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def resize_short(frame: np.ndarray, short: int) -> np.ndarray:
    h, w = frame.shape[:2]
    scale = short / min(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def decode_needed(path: Path, wanted: np.ndarray, short: int) -> np.ndarray:
    """The frames at sorted unique indices `wanted`, decoded once each in one forward pass (RGB uint8)."""
    capture = cv2.VideoCapture(str(path))
    keep, out, index = set(wanted.tolist()), {}, 0
    last = int(wanted[-1])
    while index <= last and capture.grab():
        if index in keep:
            ok, frame = capture.retrieve()
            if not ok:
                raise RuntimeError(f"{path}: frame {index} did not decode")
            out[index] = resize_short(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), short)
        index += 1
    capture.release()
    if len(out) != len(keep):
        raise RuntimeError(f"{path}: {len(keep) - len(out)} needed frames missing")
    return np.stack([out[i] for i in wanted.tolist()])


def decode_window_naively(path: Path, window: np.ndarray, short: int) -> np.ndarray:
    """CiCo's `_load_rgb`: seek to the window's first frame, read its frames (repeats re-read)."""
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, int(window[0]))
    frames, position = [], int(window[0])
    cache = {}
    for index in window.tolist():
        while position <= index:
            ok, frame = capture.read()
            if not ok:
                raise RuntimeError(f"{path}: frame {position} did not decode")
            cache[position] = resize_short(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), short)
            position += 1
        frames.append(cache[index])
    capture.release()
    return np.stack(frames)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, help="folder of real videos (default: make synthetic ones)")
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--frames", type=int, default=150, help="frames per synthetic clip (How2Sign: ~150 at 25 fps)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--resize", type=int, default=256)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--num-windows", type=int, default=64)
    parser.add_argument("--max-frames", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp16", "fp32"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--decoders", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--naive-clips", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()
    device = torch.device(args.device)
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory(prefix="rgb-gpu-") as tmp:
        start = time.perf_counter()
        if args.videos:
            paths = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in (".mp4", ".avi", ".mov", ".mkv"))
        else:
            paths = make_videos(Path(tmp), args.clips, args.frames, args.width, args.height)
        make_s = time.perf_counter() - start
        plans = [
            plan_windows(
                count_frames(p), window=args.window, stride=1, max_frames=args.max_frames, num_windows=args.num_windows
            )
            for p in paths
        ]
        windows = sum(len(plan.windows) for plan in plans)
        print(f"{len(paths)} clips, {windows} windows ({make_s:.1f} s to make/find) on {device}", flush=True)

        # decode only
        start = time.perf_counter()
        with ThreadPoolExecutor(args.decoders) as pool:
            decoded = list(pool.map(lambda job: decode_needed(job[0], job[1].frames, args.resize), zip(paths, plans)))
        decode_s = time.perf_counter() - start
        print(f"decode only: {len(paths) / decode_s:.2f} clips/s", flush=True)

        model = random_i3d()
        engine = WindowExtractor(random_i3d().fold_batch_norm(), device, args.batch_size, args.precision, args.compile)

        def run_engine(frame_source) -> float:
            sync(device)
            begin = time.perf_counter()
            for i, frames in enumerate(frame_source):
                engine.submit(i, to_model_input(frames, args.size, "bsl1k", device), plans[i].positions)
                for _ in engine.ready():
                    pass
            for _ in engine.finish():
                pass
            sync(device)
            return time.perf_counter() - begin

        run_engine(decoded[:2])  # warm-up: cuDNN autotuning, compile
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        compute_s = run_engine(decoded)
        print(f"compute only: {windows / compute_s:.1f} windows/s ({len(paths) / compute_s:.2f} clips/s)", flush=True)
        del decoded

        with ThreadPoolExecutor(args.decoders) as pool:
            futures = [pool.submit(decode_needed, p, plan.frames, args.resize) for p, plan in zip(paths, plans)]
            stage_s = run_engine(f.result() for f in futures)
        print(f"stage: {len(paths) / stage_s:.2f} clips/s", flush=True)

        naive_paths = paths[: args.naive_clips]
        model = model.to(device)
        sync(device)
        start = time.perf_counter()
        with torch.inference_mode():
            for path, plan in zip(naive_paths, plans):
                for window in plan.windows:
                    frames = decode_window_naively(path, window, args.resize)
                    clip = to_model_input(frames, args.size, "bsl1k", device).permute(1, 0, 2, 3)[None]
                    model(clip).float().cpu()
        sync(device)
        naive_s = time.perf_counter() - start
        print(f"naive: {len(naive_paths) / naive_s:.3f} clips/s", flush=True)

    results = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"},
        "clips": len(paths),
        "windows": windows,
        "decode_clips_per_s": round(len(paths) / decode_s, 3),
        "compute_windows_per_s": round(windows / compute_s, 1),
        "compute_clips_per_s": round(len(paths) / compute_s, 3),
        "stage_clips_per_s": round(len(paths) / stage_s, 3),
        "naive_clips_per_s": round(len(naive_paths) / naive_s, 4),
        "naive_clips": len(naive_paths),
        "speedup_vs_naive": round((len(paths) / stage_s) / (len(naive_paths) / naive_s), 2),
        "stage_vs_decode_bound": round(decode_s / stage_s, 3),
        "batch_size_after_oom": engine.batch_size,
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        if device.type == "cuda"
        else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "rgb_gpu.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
