"""Frames per second of the pose stage's batched path against the naive per-frame loop (CPU).

Same clips, same model, same (seeded random) weights, one run each:
- naive: decode a clip, then for every frame run mmpose's model and test pipeline on that one frame
  (what `mmpose.apis.inference_topdown` does per call: LoadImage -> GetBBoxCenterScale ->
  TopdownAffine -> PackPoseInputs -> model.test_step), frame after frame;
- native per frame: the same loop with the native backend, batch size 1 (separates backend from batching);
- stage: the pose stage's own path (PoseStage.process: decode one unit ahead in a child process,
  crops of many frames, native backend in batches of --batch-size).
The keypoints of the stage and of the naive loop are compared, so the speed-up is for the same output.

    .venv/bin/python benchmarks/pose_bench.py [--model NAME] [--frames-per-clip N] [--threads T] [--out DIR]

The machine this ran on is named in the printout's first line; torch threads are the same for all paths.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_params  # noqa: E402
from pipeline.models.checkpoints import resolve_checkpoint  # noqa: E402
from pipeline.models.rtmpose.spec import MODELS  # noqa: E402
from pipeline.pose.boxes import whole_frame_box  # noqa: E402
from pipeline.pose.stage import PoseStage  # noqa: E402
from pipeline.runner.stage import ItemRequest, WorkerContext  # noqa: E402
from pipeline.video.decode import open_source, read_frames  # noqa: E402
from pipeline.video.sampling import frame_list  # noqa: E402

VIDEOS = ROOT / ".." / "shared" / "testdata" / "videos"


def clips(frames_per_clip: int) -> list[tuple[Path, int, np.ndarray]]:
    """(video, frame count, sampled clip frames) of each real test video: `frames_per_clip` uniform
    frames (the 5-frame clip repeats some, in every path alike)."""
    out = []
    for path in sorted(VIDEOS.iterdir()):
        count = open_source(path).info.video_frames
        out.append((path, count, frame_list(count, "uniform", frames_per_clip)))
    return out


def per_frame(estimator, videos) -> tuple[float, np.ndarray]:
    """Decode a clip, then one estimate call per frame; returns seconds and all keypoints."""
    start = time.perf_counter()
    keypoints = []
    for path, _, frames in videos:
        for frame in read_frames(path, frames):
            box = whole_frame_box(frame.shape[1], frame.shape[0])[None]
            keypoints.append(estimator.estimate([frame], box)[0])
    return time.perf_counter() - start, np.concatenate(keypoints)


def stage_path(model: str, frames_per_clip: int, batch_size: int, chunk_frames: int, videos) -> tuple[float, np.ndarray]:
    """The stage's process() over all clips (no store writes); returns seconds and all keypoints."""
    with tempfile.TemporaryDirectory() as tmp:
        params_file = Path(tmp) / "params.yaml"
        params_file.write_text(json.dumps({"pose": {"model": model, "checkpoint": "random", "frames": "uniform",
                                                    "frames_value": frames_per_clip, "batch_size": batch_size,
                                                    "chunk_frames": chunk_frames}}))
        params = load_params(params_file)
        stage = PoseStage(params)
        ctx = WorkerContext(params, Path(tmp), "cpu", {})
        requests = []
        for path, count, _ in videos:
            info = open_source(path).info
            row = {"video_path": path.name, "num_frames": count, "first_frame": 0, "width": info.width,
                   "height": info.height}
            requests.append(ItemRequest(path.name, path.name, path, None, None, "", row))
        stage.open(ctx)
        start = time.perf_counter()
        results = list(stage.process(requests, ctx))
        seconds = time.perf_counter() - start
    return seconds, np.concatenate([item.arrays["keypoints"] for item in results])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="rtmpose-m_8xb64-270e_coco-wholebody-256x192", choices=sorted(MODELS))
    parser.add_argument("--frames-per-clip", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chunk-frames", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads, the same for every path")
    parser.add_argument("--out", type=Path, help="also write the results as JSON into this folder")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from pipeline.pose.mmpose_backend import MmposeEstimator
    from pipeline.pose.native import NativeEstimator

    spec, checkpoint = MODELS[args.model], resolve_checkpoint("random", "pose.checkpoint")
    videos = clips(args.frames_per_clip)
    total = sum(len(f) for _, _, f in videos)
    print(f"{total} frames of {len(videos)} clips ({', '.join(p.name for p, _, _ in videos)}), {args.model}, "
          f"random weights (explicit), CPU, {args.threads} thread(s), flip test on (the config's)")

    naive_s, naive_kp = per_frame(MmposeEstimator(spec, checkpoint, batch_size=1), videos)
    native_s, native_kp = per_frame(NativeEstimator(spec, checkpoint, batch_size=1), videos)
    stage_s, stage_kp = stage_path(args.model, args.frames_per_clip, args.batch_size, args.chunk_frames, videos)
    rows = [("naive: mmpose model + test pipeline, one frame per call", naive_s),
            ("native backend, one frame per call", native_s),
            (f"pose stage: decode ahead + native batches of {args.batch_size}", stage_s)]
    print(f"{'path':<58} {'seconds':>8} {'frames/s':>9} {'vs naive':>9}")
    for name, seconds in rows:
        print(f"{name:<58} {seconds:8.2f} {total / seconds:9.2f} {naive_s / seconds:8.2f}x")
    # With random weights many SimCC bins are near-tied, so float noise of another batch layout or
    # thread count can move an argmax: count such keypoints rather than quote a maximum alone.
    moved_stage = int((np.abs(stage_kp - naive_kp).max(axis=-1) > 1e-3).sum())
    moved_native = int((np.abs(native_kp - naive_kp).max(axis=-1) > 1e-3).sum())
    diff_stage = float(np.abs(stage_kp - naive_kp).max())
    diff_native = float(np.abs(native_kp - naive_kp).max())
    print(f"keypoints differing from naive by > 1e-3 px: stage {moved_stage} of {naive_kp.shape[0] * 133} "
          f"(max {diff_stage:.3g} px), native per frame {moved_native} (max {diff_native:.3g} px)")
    result = {"model": args.model, "frames": total, "threads": args.threads, "batch_size": args.batch_size,
              "rows": [{"path": n, "seconds": s, "fps": total / s, "speedup": naive_s / s} for n, s in rows],
              "keypoints_moved": {"stage": moved_stage, "native_per_frame": moved_native},
              "max_keypoint_diff_px": {"stage": diff_stage, "native_per_frame": diff_native}}
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pose_bench.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
