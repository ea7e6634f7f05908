"""The native RTMPose backend on a GPU: batched crops against one frame per call, same frames, same weights.

Runs where only torch, numpy and OpenCV are installed (no mmcv, mmpose, decord, dask or dvc): frames are
synthetic 1080p images (a smooth random texture, so crops are not constant), or the frames of --video
decoded with OpenCV. For each model it times
- per frame: one frame (and its flipped copy, the config's flip test) per forward pass, float32 --
  what mmpose's inference_topdown does per call;
- batched: the pose stage's estimator with --batch-sizes crops per forward, float32 and under the
  stage's default autocast (bf16 where supported, else fp16; the head stays float32);
- crops only: the CPU side alone (affine warps to the model input), the floor for the batched path;
- compiled (--compile): pose.compile at the largest batch size, its compilation timed apart.
and checks the batched keypoints against the per-frame ones. Random weights (explicit, seeded).

    python3 benchmarks/pose_gpu.py [--models NAME ...] [--frames 256] [--batch-sizes 32 64 128]
                                   [--video clip.mp4] [--device cuda] [--compile] [--out DIR]

Writes pose_gpu.json into --out (default $OUT, else the current folder) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models.checkpoints import resolve_checkpoint  # noqa: E402
from pipeline.models.rtmpose.spec import MODELS  # noqa: E402
from pipeline.pose.boxes import whole_frame_box  # noqa: E402
from pipeline.pose.native import NativeEstimator  # noqa: E402
from pipeline.pose.topdown import crop_inputs  # noqa: E402

DEFAULT_MODELS = ["rtmpose-l_8xb32-270e_coco-wholebody-384x288", "rtmpose-m_8xb64-270e_coco-wholebody-256x192"]


def synthetic_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Smooth random RGB textures (upscaled noise), different per frame, deterministic."""
    rng = np.random.default_rng(0)
    return [
        cv2.resize(
            rng.integers(0, 256, (height // 32, width // 32, 3), dtype=np.uint8),
            (width, height),
            interpolation=cv2.INTER_CUBIC,
        )
        for _ in range(count)
    ]


def video_frames(path: str, count: int) -> list[np.ndarray]:
    capture = cv2.VideoCapture(path)
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    capture.release()
    if not frames:
        raise SystemExit(f"{path}: OpenCV decoded no frame")
    return frames


def timed(fn) -> tuple[float, object]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def bench_model(
    name: str, frames: list[np.ndarray], boxes: np.ndarray, device: str, batch_sizes: list[int], compile: bool = False
) -> dict:
    spec, checkpoint = MODELS[name], resolve_checkpoint("random", "pose.checkpoint")
    rows = []
    single = NativeEstimator(spec, checkpoint, device, batch_size=1, precision="fp32")
    single.estimate(frames[:4], boxes[:4])  # warm-up: kernels, cudnn autotuning, allocator
    per_frame_s, (ref_kp, _) = timed(
        lambda: tuple(
            np.concatenate(parts)
            for parts in zip(*[single.estimate(frames[i : i + 1], boxes[i : i + 1]) for i in range(len(frames))])
        )
    )
    rows.append({"path": "per frame", "batch_size": 1, "precision": "fp32", "seconds": per_frame_s})
    single = None  # frees its memory before the batched runs (the lambda above has run)
    crop_s, _ = timed(
        lambda: [
            crop_inputs(frames[i : i + 64], boxes[i : i + 64], spec.input_size, spec.bbox_padding)
            for i in range(0, len(frames), 64)
        ]
    )
    for precision in ("fp32", "auto"):
        for batch_size in batch_sizes:
            estimator = NativeEstimator(spec, checkpoint, device, batch_size=batch_size, precision=precision)
            estimator.estimate(frames[:batch_size], boxes[:batch_size])
            seconds, (kp, _) = timed(lambda: estimator.estimate(frames, boxes))
            diff = np.abs(kp - ref_kp)
            rows.append(
                {
                    "path": "batched",
                    "batch_size": batch_size,
                    "precision": estimator.precision,
                    "seconds": seconds,
                    "max_diff_px": float(diff.max()),
                    "mean_diff_px": float(diff.mean()),
                }
            )
            del estimator
    if compile:  # pose.compile at the largest batch, default precision: its compile runs in the warm-up call
        batch_size = max(batch_sizes)
        estimator = NativeEstimator(spec, checkpoint, device, batch_size=batch_size, compile=True)
        warmup_s, _ = timed(lambda: estimator.estimate(frames[:batch_size], boxes[:batch_size]))
        seconds, (kp, _) = timed(lambda: estimator.estimate(frames, boxes))
        diff = np.abs(kp - ref_kp)
        rows.append(
            {
                "path": "compiled",
                "batch_size": batch_size,
                "precision": estimator.precision,
                "seconds": seconds,
                "compile_s": warmup_s,
                "max_diff_px": float(diff.max()),
                "mean_diff_px": float(diff.mean()),
            }
        )
        del estimator
    for row in rows:
        row["fps"] = len(frames) / row["seconds"]
        row["speedup_vs_per_frame"] = per_frame_s / row["seconds"]
    return {"model": name, "frames": len(frames), "crop_only_fps": len(frames) / crop_s, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=sorted(MODELS))
    parser.add_argument("--frames", type=int, default=256)
    parser.add_argument("--size", default="1920x1080", help="synthetic frame size WxH")
    parser.add_argument("--video", help="decode frames from this file with OpenCV instead")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time pose.compile (torch.compile) at the largest batch size; its compilation is timed apart",
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    args = parser.parse_args()

    width, height = (int(v) for v in args.size.split("x"))
    frames = video_frames(args.video, args.frames) if args.video else synthetic_frames(args.frames, width, height)
    boxes = np.stack([whole_frame_box(f.shape[1], f.shape[0]) for f in frames])
    torch.backends.cudnn.benchmark = True
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "cpu"
    report = {
        "device": device_name,
        "torch": torch.__version__,
        "frame_size": list(frames[0].shape[1::-1]),
        "source": args.video or "synthetic",
        "cpu_threads": torch.get_num_threads(),
        "models": [],
    }
    print(
        f"{device_name}, torch {torch.__version__}, {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} "
        f"({report['source']}), random weights (explicit), flip test on"
    )
    for name in args.models:
        result = bench_model(name, frames, boxes, args.device, args.batch_sizes, args.compile)
        report["models"].append(result)
        print(f"\n{name}  (CPU crops alone: {result['crop_only_fps']:.0f} frames/s)")
        print(f"  {'path':<10} {'batch':>5} {'precision':>9} {'frames/s':>9} {'speed-up':>9} {'max diff px':>12}")
        for row in result["rows"]:
            print(
                f"  {row['path']:<10} {row['batch_size']:>5} {row['precision']:>9} {row['fps']:9.1f} "
                f"{row['speedup_vs_per_frame']:8.2f}x {row.get('max_diff_px', 0.0):12.3g}"
            )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pose_gpu.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
