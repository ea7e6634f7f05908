"""The rgb stage vs the naive way, on the same clips and weights, and the decode-only rate of those clips.

    python benchmarks/rgb_bench.py [--sentences 10] [--size 112 --window 8 --num-windows 16]
                                   [--batch-size 32] [--threads 2] [--out results.json]

Clips: the built-in synthetic sample (320x240, 25 fps, ~100 frames each), `--sentences` x 4 renders,
generated, manifested and probed in a temporary project. Three timings, one run each:
- stage: `seds run rgb` (synchronous scheduler, one worker, `--threads` torch threads): each needed
  frame decoded once in a child process ahead of the model, windows batched across clips,
  BatchNorm folded, channels-last;
- naive: what per-video extraction scripts do: for every window, decode its frames from the video
  again (in this process), crop/normalise, and run that one window through the model as loaded;
- decode only: the frames the stage needs, decoded once per clip through the same decode service,
  nothing else. stage / decode-only says how close the stage is to the decode bound.
Both feature paths use the same seeded random I3D (checkpoint: random); the benchmark also checks
that their features agree (float16 storage, so to ~1e-2) before printing the ratio.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_project(folder: Path, sentences: int, threads: int) -> dict:
    from pipeline.cli import main

    params = {
        "runtime": {"store": "cache", "manifests": "manifests", "scheduler": "synchronous", "workers": 1,
                    "threads_per_worker": threads, "chunk_items": 64, "max_failures": 0},
        "sample": {"out": "data/sample", "sentences": sentences, "renders": ["train", "train", "val", "test"],
                   "width": 320, "height": 240, "fps": 25, "gloss_frames": 16, "seed": 0},
        "data": {"root": "data/sample", "annotations": [
            {"format": "how2sign", "file": f"data/sample/how2sign_sample_{s}.csv", "split": s}
            for s in ("train", "val", "test")]},
    }
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    os.chdir(folder)
    for command in (["sample"], ["manifest"], ["run", "probe", "--no-progress"]):
        if main(command) != 0:
            raise SystemExit(f"benchmark set-up failed at: seds {' '.join(command)}")
    return params


def run_stage(params: dict, rgb: dict) -> tuple[float, int]:
    from pipeline.cli import main

    params = copy.deepcopy(params)
    params["rgb"] = rgb
    Path("params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.perf_counter()
    if main(["run", "rgb", "--no-progress"]) != 0:
        raise SystemExit("the rgb stage failed")
    return time.perf_counter() - start, len(rows())


def rows() -> list[dict]:
    import pyarrow.parquet as pq

    return [r for r in pq.read_table("manifests/probe.parquet").to_pylist() if r["probe_status"] == "ok"]


def decode_only(rgb: dict) -> float:
    from pipeline.rgb.loader import PrefetchingDecoder
    from pipeline.rgb.windows import plan_windows

    jobs = []
    for row in rows():
        plan = plan_windows(row["num_frames"], window=rgb["window"], stride=1, max_frames=300,
                            num_windows=rgb["num_windows"])
        jobs.append((row["sample_id"], Path("data/sample") / row["video_path"], row["first_frame"] + plan.frames))
    start = time.perf_counter()
    with PrefetchingDecoder(1, 2, rgb["resize"], 120.0) as decoder:
        for _, frames in decoder.run(jobs):
            if not isinstance(frames, np.ndarray):
                raise SystemExit(f"decode failed: {frames}")
    return time.perf_counter() - start


def naive(rgb: dict) -> tuple[float, dict[str, np.ndarray]]:
    """One window at a time: decode its frames again, crop, normalise, one forward pass."""
    import torch

    from pipeline.models.i3d import random_i3d
    from pipeline.rgb.frames import to_model_input
    from pipeline.rgb.windows import plan_windows
    from pipeline.video.decode import read_frames

    model = random_i3d()
    out = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for row in rows():
            plan = plan_windows(row["num_frames"], window=rgb["window"], stride=1, max_frames=300,
                                num_windows=rgb["num_windows"])
            features = []
            for window in plan.windows:
                frames = read_frames(Path("data/sample") / row["video_path"], row["first_frame"] + window, rgb["resize"])
                clip = to_model_input(frames, rgb["size"], "bsl1k", "cpu").permute(1, 0, 2, 3)[None]
                features.append(model(clip)[0].numpy())
            out[row["sample_id"]] = np.stack(features)
    return time.perf_counter() - start, out


def stage_features() -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    from pipeline.runner.plan import read_view
    from pipeline.store.layout import StageDir
    from pipeline.store.reader import StageReader

    _, fingerprints = read_view(Path("manifests"), "rgb")
    reader = StageReader(StageDir(Path("cache"), "rgb", fingerprints["rgb"]))
    return {r["sample_id"]: reader.read(r["rgb_key"])["features"] for r in pq.read_table("manifests/rgb.parquet").to_pylist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=10, help="sample sentences (x4 renders = clips)")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--resize", type=int, default=128)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--num-windows", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (runtime.threads_per_worker)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    rgb = {"size": args.size, "resize": args.resize, "window": args.window, "stride": 1,
           "num_windows": args.num_windows, "batch_size": args.batch_size,
           "feature_sets": {"default": {"checkpoint": "random", "family": "bsl1k"}}}
    with tempfile.TemporaryDirectory(prefix="rgb-bench-") as tmp:
        cwd = os.getcwd()
        try:
            params = make_project(Path(tmp), args.sentences, args.threads)
            clips = len(rows())
            frames = sum(r["num_frames"] for r in rows())
            decode_s = decode_only(rgb)
            stage_s, _ = run_stage(params, rgb)
            naive_s, naive_features = naive(rgb)
            ours = stage_features()
            worst = max(float(np.abs(ours[k].astype(np.float32) - naive_features[k]).max()) for k in ours)
        finally:
            os.chdir(cwd)
    if worst > 2e-2:
        raise SystemExit(f"stage and naive features disagree (max |diff| {worst:.3g}): not comparable")
    results = {
        "clips": clips, "frames": frames, "settings": {k: v for k, v in rgb.items() if k != "feature_sets"},
        "threads": args.threads, "device": "cpu",
        "stage_s": round(stage_s, 2), "naive_s": round(naive_s, 2), "decode_only_s": round(decode_s, 2),
        "stage_clips_per_s": round(clips / stage_s, 3), "naive_clips_per_s": round(clips / naive_s, 3),
        "decode_clips_per_s": round(clips / decode_s, 3),
        "speedup_vs_naive": round(naive_s / stage_s, 2), "stage_vs_decode_bound": round(decode_s / stage_s, 3),
        "max_feature_diff": worst,
    }
    print(f"rgb stage: {clips} clips ({frames} frames, {args.size}px, window {args.window}, "
          f"{args.num_windows} windows/clip) on {args.threads} CPU threads")
    print(f"  stage       {results['stage_clips_per_s']:8.3f} clips/s  ({stage_s:.1f} s, incl. model load and summary)")
    print(f"  naive       {results['naive_clips_per_s']:8.3f} clips/s  ({naive_s:.1f} s, a decode + forward per window)")
    print(f"  decode only {results['decode_clips_per_s']:8.3f} clips/s  ({decode_s:.1f} s)")
    print(f"  stage / naive = {results['speedup_vs_naive']:.2f}x; stage runs at {100 * results['stage_vs_decode_bound']:.0f}% "
          f"of the decode-only rate; features agree to {worst:.2g}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
