"""Where the pose stage's time goes, per phase and per batch size, on the CPU (issue 13, part 5).

Runs the native path's steps one by one over the sampled frames of the real test videos, with the
stage's own functions, and times each phase in wall seconds and in CPU seconds of this process (the
CPU figure is the steadier one on a shared machine: other jobs stretch wall time, not CPU time):

    decode       read_frames, in this process (the stage does it in a child, one unit ahead)
    box          whole-frame boxes
    crop         the top-down affine warp (cv2.warpAffine), uint8 NHWC
    normalise    uint8 -> float, (x - mean) / std
    flip         the mirrored crops appended to the batch (flip test)
    backbone     CSPNeXt
    head         RTMCC head (7x7 conv, GAU, SimCC linears)
    merge        mirrored logits flipped back and averaged
    simcc        SimCC maxima + decoding + the map back to frame pixels
    store        one item per clip written through ShardWriter (HDF5 + Parquet index)

for batch sizes (frames per forward; the flip test doubles the crops) and for the network as the
stage runs it (BatchNorm folded, NHWC weights) beside the network as loaded (BatchNorm separate,
NCHW, which is how mmpose runs it). Random weights (explicit), the same for every row.

    python benchmarks/pose_profile.py [--model NAME] [--frames N] [--batch-sizes 1 4 16] [--threads T]
                                      [--repeats R] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pipeline.models.checkpoints import resolve_checkpoint  # noqa: E402
from pipeline.models.rtmpose.codec import decode_maxima, input_to_frame  # noqa: E402
from pipeline.models.rtmpose.model import load_rtmpose, with_flipped  # noqa: E402
from pipeline.models.rtmpose.spec import DEFAULT_MODEL, MODELS  # noqa: E402
from pipeline.pose.boxes import whole_frame_box  # noqa: E402
from pipeline.pose.topdown import crop_inputs  # noqa: E402
from pipeline.video.decode import open_source, read_frames  # noqa: E402
from pipeline.video.sampling import frame_list  # noqa: E402

VIDEOS = ROOT / ".." / "shared" / "testdata" / "videos"
PHASES = ("decode", "box", "crop", "normalise", "flip", "backbone", "head", "merge", "simcc", "store")


class Timer:
    """Wall and process-CPU seconds per phase name, summed over calls."""

    def __init__(self):
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str):
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.wall[phase] += time.perf_counter() - wall
        self.cpu[phase] += time.process_time() - cpu


def clip_frames(frames_per_clip: int) -> list[tuple[Path, np.ndarray]]:
    return [
        (path, frame_list(open_source(path).info.video_frames, "uniform", frames_per_clip))
        for path in sorted(VIDEOS.iterdir())
    ]


def one_pass(model, spec, clips, batch_size: int, flip_test: bool, store_root: Path) -> Timer:
    """Every phase once over all clips' frames, batch_size frames per forward."""
    import torch

    from pipeline.fingerprint import StageFingerprint
    from pipeline.store import Item, ShardWriter, StageDir

    timer = Timer()
    fingerprint = StageFingerprint("pose_profile", 1, {"batch_size": batch_size, "pass": time.time_ns()})
    stage_dir = StageDir(store_root, "pose_profile", fingerprint.digest)
    stage_dir.create(fingerprint)
    with ShardWriter(stage_dir) as writer, torch.inference_mode():
        for clip, (path, indices) in enumerate(clips):
            with timer("decode"):
                frames = read_frames(path, indices)
            with timer("box"):
                boxes = np.stack([whole_frame_box(f.shape[1], f.shape[0]) for f in frames])
            keypoints, scores = [], []
            for start in range(0, len(frames), batch_size):
                part = slice(start, start + batch_size)
                with timer("crop"):
                    crops, centers, scales = crop_inputs(frames[part], boxes[part], spec.input_size, spec.bbox_padding)
                with timer("normalise"):
                    inputs = model.normalize(torch.from_numpy(crops))
                if flip_test:
                    with timer("flip"):
                        inputs = with_flipped(inputs)
                with timer("backbone"):
                    features = model.backbone(inputs)
                with timer("head"):
                    simcc_x, simcc_y = model.head(features)
                if flip_test:
                    with timer("merge"):
                        simcc_x, simcc_y = model.merge_flipped(simcc_x, simcc_y, len(crops))
                with timer("simcc"):
                    x_max, x_loc = (t.numpy() for t in simcc_x.max(dim=2))
                    y_max, y_loc = (t.numpy() for t in simcc_y.max(dim=2))
                    points, values = decode_maxima(x_loc, x_max, y_loc, y_max, spec.simcc_split_ratio)
                    keypoints.append(input_to_frame(points, spec.input_size, centers, scales))
                    scores.append(values)
            with timer("store"):
                arrays = {
                    "keypoints": np.concatenate(keypoints),
                    "scores": np.concatenate(scores),
                    "boxes": boxes,
                    "frames": indices.astype(np.int64),
                }
                writer.add(Item(f"k{clip}", path.name, arrays, {}, {}))
                if clip == len(clips) - 1:
                    writer.flush()
    return timer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(MODELS))
    parser.add_argument("--frames", type=int, default=16, help="uniform frames per test video (3 videos)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="passes per setting after one warm-up pass")
    parser.add_argument("--no-flip", action="store_true", help="profile without the flip test")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    spec = MODELS[args.model]
    checkpoint = resolve_checkpoint("random", "pose.checkpoint")
    networks = {
        "as loaded (BatchNorm separate, NCHW)": load_rtmpose(spec, checkpoint),
        "as the stage runs it (folded, NHWC)": load_rtmpose(spec, checkpoint).prepare_for_inference(),
    }
    started, load = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), os.getloadavg()[0]
    clips = clip_frames(args.frames)
    total = sum(len(i) for _, i in clips)
    print(
        f"{args.model}: {total} frames of {len(clips)} clips, random weights (explicit), CPU, {args.threads} "
        f"thread(s), flip test {'off' if args.no_flip else 'on'}; ms per frame, median of {args.repeats} passes "
        f"(min..max of the total); load average {load:.1f} at the start",
        flush=True,
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, model in networks.items():
            for batch_size in args.batch_sizes:
                one_pass(model, spec, clips, batch_size, not args.no_flip, Path(tmp))  # warm-up
                timers = [
                    one_pass(model, spec, clips, batch_size, not args.no_flip, Path(tmp)) for _ in range(args.repeats)
                ]
                row = {
                    "network": label,
                    "batch_size": batch_size,
                    "frames": total,
                    "wall_ms": {p: 1000 * statistics.median(t.wall[p] for t in timers) / total for p in PHASES},
                    "cpu_ms": {p: 1000 * statistics.median(t.cpu[p] for t in timers) / total for p in PHASES},
                    "total_wall_ms": [1000 * sum(t.wall.values()) / total for t in timers],
                    "total_cpu_ms": [1000 * sum(t.cpu.values()) / total for t in timers],
                }
                results.append(row)
                print(
                    f"{label}, batch {batch_size}: wall {statistics.median(row['total_wall_ms']):.0f} "
                    f"({min(row['total_wall_ms']):.0f}..{max(row['total_wall_ms']):.0f}) ms/frame, cpu "
                    f"{statistics.median(row['total_cpu_ms']):.0f} ms/frame",
                    flush=True,
                )
    print(markdown(results))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        from run import commit, machine  # benchmarks/run.py: the same date, commit and machine stamps

        args.out.write_text(
            json.dumps(
                {
                    "date": started,
                    "commit": commit(),
                    "machine": machine()["name"],
                    "model": args.model,
                    "threads": args.threads,
                    "flip_test": not args.no_flip,
                    "load_average_start": load,
                    "rows": results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


def markdown(results: list[dict]) -> str:
    """One row per phase, one column per (network, batch size): CPU ms per frame (wall ms in brackets)."""
    heads = [f"{'stage' if 'stage' in r['network'] else 'as loaded'}, batch {r['batch_size']}" for r in results]
    lines = ["| phase | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(results)]
    for phase in PHASES:
        lines.append(
            f"| {phase} | "
            + " | ".join(f"{r['cpu_ms'][phase]:.1f} ({r['wall_ms'][phase]:.1f})" for r in results)
            + " |"
        )
    lines.append(
        "| total | "
        + " | ".join(
            f"{statistics.median(r['total_cpu_ms']):.0f} ({statistics.median(r['total_wall_ms']):.0f})" for r in results
        )
        + " |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
