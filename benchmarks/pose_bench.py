"""Frames per second of the pose stage's path against the naive per-frame mmpose loop, on the CPU.

For each model asked (default both: rtmpose-m 256x192 and the paper's rtmpose-l 384x288; random-init
real architectures, the same seeded weights in every path, flip test on as the configs set it):
- naive: for every frame, mmpose's model and test pipeline on that one frame (what
  `mmpose.apis.inference_topdown` does per call: LoadImage -> GetBBoxCenterScale -> TopdownAffine ->
  PackPoseInputs -> model.test_step, whose flip test is a second forward call), frame after frame;
- native per frame: the same loop with the native backend, batch size 1 (separates backend from batching);
- stage: the pose stage's own path (PoseStage.process: units of --chunk-frames frames, crops of many
  frames, the native backend in batches of --batch-size).
All three get the same decode-ahead help: frames come from the DecodeService child process, the next
clip (the stage: the next unit) decoded while the model runs on this one, and each path starts its
child inside its timing. Every path runs once untimed (warm-up: imports, oneDNN kernels, the child),
then --repeats times; the table gives the median and the min..max of the wall time, and the median CPU
time of this process (the decoder child left out in every path alike). The keypoints of the native paths
are compared with the naive loop's, so the speed-up is for the same output.

    .venv/bin/python benchmarks/pose_bench.py [--models NAME ...] [--frames-per-clip N] [--repeats R]
                                              [--threads T] [--out DIR]

torch threads are the same for all paths. On a machine other jobs share, wall times are not figures
to quote (two OpenMP threads waiting on each other can slow a forward many times over).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_params  # noqa: E402
from pipeline.models.checkpoints import resolve_checkpoint  # noqa: E402
from pipeline.models.rtmpose.spec import DEFAULT_MODEL, MODELS  # noqa: E402
from pipeline.pose.boxes import whole_frame_box  # noqa: E402
from pipeline.pose.stage import PoseStage  # noqa: E402
from pipeline.runner.stage import ItemRequest, WorkerContext  # noqa: E402
from pipeline.video.decode import open_source  # noqa: E402
from pipeline.video.sampling import frame_list  # noqa: E402
from pipeline.video.service import DecodeService  # noqa: E402

VIDEOS = ROOT / ".." / "shared" / "testdata" / "videos"
MODEL_M = "rtmpose-m_8xb64-270e_coco-wholebody-256x192"


def clips(frames_per_clip: int) -> list[tuple[Path, int, np.ndarray]]:
    """(video, frame count, sampled clip frames) of each real test video: `frames_per_clip` uniform
    frames (the 5-frame clip repeats some, in every path alike)."""
    out = []
    for path in sorted(VIDEOS.iterdir()):
        count = open_source(path).info.video_frames
        out.append((path, count, frame_list(count, "uniform", frames_per_clip)))
    return out


def per_frame(estimator, videos) -> tuple[float, np.ndarray]:
    """One estimate call per frame, the next clip decoded ahead in a child; seconds and all keypoints."""
    start = time.perf_counter()
    keypoints = []
    with DecodeService() as decoder:
        tickets = [decoder.submit_frames(videos[0][0], videos[0][2])]
        for i in range(len(videos)):
            if i + 1 < len(videos):
                tickets.append(decoder.submit_frames(videos[i + 1][0], videos[i + 1][2]))
            for frame in decoder.frames(tickets[i]):
                box = whole_frame_box(frame.shape[1], frame.shape[0])[None]
                keypoints.append(estimator.estimate([frame], box)[0])
    return time.perf_counter() - start, np.concatenate(keypoints)


class StagePath:
    """The stage's process() over all clips (no store writes), built once per model."""

    def __init__(self, model: str, frames_per_clip: int, batch_size: int, chunk_frames: int, videos, tmp: Path):
        params_file = tmp / "params.yaml"
        params_file.write_text(
            json.dumps(
                {
                    "pose": {
                        "model": model,
                        "checkpoint": "random",
                        "frames": "uniform",
                        "frames_value": frames_per_clip,
                        "batch_size": batch_size,
                        "chunk_frames": chunk_frames,
                        "flip_test": True,
                    }
                }
            )
        )
        params = load_params(params_file)
        self.stage = PoseStage(params)
        self.ctx = WorkerContext(params, tmp, "cpu", {})
        self.requests = []
        for path, count, _ in videos:
            info = open_source(path).info
            row = {
                "video_path": path.name,
                "num_frames": count,
                "first_frame": 0,
                "width": info.width,
                "height": info.height,
            }
            self.requests.append(ItemRequest(path.name, path.name, path, None, None, "", row))
        self.stage.open(self.ctx)

    def __call__(self) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        results = list(self.stage.process(self.requests, self.ctx))
        seconds = time.perf_counter() - start
        return seconds, np.concatenate([item.arrays["keypoints"] for item in results])


def measure(path, repeats: int) -> tuple[list[float], list[float], np.ndarray]:
    """One untimed warm-up call, then `repeats` timed ones: (wall seconds of each, CPU seconds of this
    process in each, keypoints of the last). The CPU seconds leave out the decoder child in every path
    alike, and are what other jobs on a shared machine disturb least."""
    path()
    walls, cpus = [], []
    for _ in range(repeats):
        cpu = time.process_time()
        seconds, keypoints = path()
        walls.append(seconds)
        cpus.append(time.process_time() - cpu)
    return walls, cpus, keypoints


def bench_model(model: str, args, videos) -> dict:
    from pipeline.pose.mmpose_backend import MmposeEstimator
    from pipeline.pose.native import NativeEstimator

    spec, checkpoint = MODELS[model], resolve_checkpoint("random", "pose.checkpoint")
    total = sum(len(f) for _, _, f in videos)
    naive = MmposeEstimator(spec, checkpoint, batch_size=1)
    native = NativeEstimator(spec, checkpoint, batch_size=1)
    with tempfile.TemporaryDirectory() as tmp:
        stage = StagePath(model, args.frames_per_clip, args.batch_size, args.chunk_frames, videos, Path(tmp))
        timed = {
            "naive": measure(lambda: per_frame(naive, videos), args.repeats),
            "native": measure(lambda: per_frame(native, videos), args.repeats),
            "stage": measure(stage, args.repeats),
        }
    names = {
        "naive": "naive: mmpose model + test pipeline, one frame per call",
        "native": "native backend, one frame per call",
        "stage": f"pose stage: native batches of {args.batch_size}",
    }
    naive_median = statistics.median(timed["naive"][0])
    rows = []
    naive_cpu = statistics.median(timed["naive"][1])
    for key, (seconds, cpu, _) in timed.items():
        median = statistics.median(seconds)
        rows.append(
            {
                "path": names[key],
                "key": key,
                "seconds": seconds,
                "median_s": median,
                "fps": total / median,
                "fps_min": total / max(seconds),
                "fps_max": total / min(seconds),
                "speedup": naive_median / median,
                "cpu_s": cpu,
                "cpu_ms_per_frame": 1000 * statistics.median(cpu) / total,
                "cpu_speedup": naive_cpu / statistics.median(cpu),
            }
        )
    # With random weights many SimCC bins are near-tied, so float noise of another batch layout or
    # thread count can move an argmax: count such keypoints rather than quote a maximum alone.
    reference = timed["naive"][2]
    moved = {k: int((np.abs(timed[k][2] - reference).max(axis=-1) > 1e-3).sum()) for k in ("native", "stage")}
    biggest = {k: float(np.abs(timed[k][2] - reference).max()) for k in ("native", "stage")}
    return {
        "model": model,
        "label": model.split("_")[0] + " " + model.rsplit("-", 1)[-1],
        "frames": total,
        "keypoints": int(reference.shape[0] * reference.shape[1]),
        "rows": rows,
        "keypoints_moved": moved,
        "max_keypoint_diff_px": biggest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=[MODEL_M, DEFAULT_MODEL], choices=sorted(MODELS))
    parser.add_argument("--frames-per-clip", type=int, default=24)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--chunk-frames", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each path after one warm-up run")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads, the same for every path")
    parser.add_argument("--out", type=Path, help="also write the results as JSON into this folder")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    videos = clips(args.frames_per_clip)
    total = sum(len(f) for _, _, f in videos)
    print(
        f"{total} frames of {len(videos)} clips ({', '.join(p.name for p, _, _ in videos)}), random weights "
        f"(explicit), CPU, {args.threads} thread(s), flip test on (the configs'), decode ahead in a child for "
        f"every path; median of {args.repeats} after a warm-up (min..max); load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    results = []
    for model in args.models:
        r = bench_model(model, args, videos)
        results.append(r)
        print(f"\n{r['label']} ({model})")
        print(
            f"{'path':<58} {'seconds':>8} {'frames/s (min..max)':>22} {'vs naive':>9} {'CPU ms/frame':>13} "
            f"{'vs naive':>9}"
        )
        for row in r["rows"]:
            print(
                f"{row['path']:<58} {row['median_s']:8.2f} {row['fps']:9.2f} "
                f"({row['fps_min']:.2f}..{row['fps_max']:.2f})"
                f" {row['speedup']:8.2f}x {row['cpu_ms_per_frame']:13.0f} {row['cpu_speedup']:8.2f}x"
            )
        print(
            f"keypoints differing from naive by > 1e-3 px: stage {r['keypoints_moved']['stage']} of {r['keypoints']} "
            f"(max {r['max_keypoint_diff_px']['stage']:.3g} px), native per frame {r['keypoints_moved']['native']} "
            f"(max {r['max_keypoint_diff_px']['native']:.3g} px)",
            flush=True,
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "pose_bench.json").write_text(
            json.dumps(
                {
                    "threads": args.threads,
                    "batch_size": args.batch_size,
                    "repeats": args.repeats,
                    "frames_per_clip": args.frames_per_clip,
                    "models": results,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
