"""The rgb stage vs the way a careful user would write it, on the same clips and weights; also vs the
naive per-window loop and vs decoding alone.

    python benchmarks/rgb_bench.py [--sentences 10] [--size 112 --window 8 --num-windows 16]
                                   [--batch-size 32] [--threads 2] [--out results.json]

Clips: the built-in synthetic sample (320x240, 25 fps, ~100 frames each), `--sentences` x 4 renders,
generated, manifested and probed in a temporary project. Four timings, one run each, same clips:
- stage: `seds run rgb` (synchronous scheduler, one worker, `--threads` torch threads): each needed
  frame decoded once in a child process ahead of the model, windows batched across clips,
  BatchNorm folded, channels-last; includes model load and the summary;
- careful (the headline baseline): decode the clip's frames once (in this process), crop/normalise
  them once, slide the windows over them, one forward pass per window through the model as loaded;
- naive: what per-video extraction scripts do: for every window, decode its frames from the video
  again, crop/normalise, and one forward pass (the straw baseline, kept as one row);
- decode only: the frames the stage needs, decoded once per clip through the same decode service,
  nothing else. stage / decode-only says how close the stage is to the decode bound.
All feature paths use the same seeded random I3D (checkpoint: random); the benchmark checks that the
careful and naive features agree with the stage's (float16 storage, so to ~2e-2) before any ratio.
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
        "runtime": {
            "store": "cache",
            "manifests": "manifests",
            "scheduler": "synchronous",
            "workers": 1,
            "threads_per_worker": threads,
            "chunk_items": 64,
            "max_failures": 0,
        },
        "sample": {
            "out": "data/sample",
            "sentences": sentences,
            "renders": ["train", "train", "val", "test"],
            "width": 320,
            "height": 240,
            "fps": 25,
            "gloss_frames": 16,
            "seed": 0,
        },
        "data": {
            "root": "data/sample",
            "annotations": [
                {"format": "how2sign", "file": f"data/sample/how2sign_sample_{s}.csv", "split": s}
                for s in ("train", "val", "test")
            ],
        },
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

    jobs = [
        (row["sample_id"], Path("data/sample") / row["video_path"], row["first_frame"] + _plan(row, rgb).frames)
        for row in rows()
    ]
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
    from pipeline.video.decode import read_frames

    model = random_i3d()
    out = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for row in rows():
            features = []
            for window in _plan(row, rgb).windows:
                frames = read_frames(
                    Path("data/sample") / row["video_path"], row["first_frame"] + window, rgb["resize"]
                )
                clip = to_model_input(frames, rgb["size"], "bsl1k", "cpu").permute(1, 0, 2, 3)[None]
                features.append(model(clip)[0].numpy())
            out[row["sample_id"]] = np.stack(features)
    return time.perf_counter() - start, out


def careful(rgb: dict) -> tuple[float, dict[str, np.ndarray]]:
    """Per clip: decode the frames its windows need once, crop and normalise them once, then slide the
    windows over them, one forward pass per window, the model as loaded (no folding, no batching)."""
    import torch

    from pipeline.models.i3d import random_i3d
    from pipeline.rgb.frames import to_model_input
    from pipeline.video.decode import read_frames

    model = random_i3d()
    out = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for row in rows():
            plan = _plan(row, rgb)
            frames = read_frames(
                Path("data/sample") / row["video_path"], row["first_frame"] + plan.frames, rgb["resize"]
            )
            clip = to_model_input(frames, rgb["size"], "bsl1k", "cpu")  # (F, 3, S, S)
            out[row["sample_id"]] = np.stack(
                [model(clip[positions].permute(1, 0, 2, 3)[None])[0].numpy() for positions in plan.positions]
            )
    return time.perf_counter() - start, out


def _plan(row: dict, rgb: dict):
    from pipeline.rgb.windows import plan_windows

    return plan_windows(
        row["num_frames"], window=rgb["window"], stride=1, max_frames=300, num_windows=rgb["num_windows"]
    )


def _worst_difference(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> float:
    if ours.keys() != theirs.keys():
        raise SystemExit(f"the paths computed different clips: {sorted(ours.keys() ^ theirs.keys())[:5]}")
    return max(float(np.abs(ours[k].astype(np.float32) - theirs[k]).max()) for k in ours)


def stage_features() -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    from pipeline.runner.plan import read_view
    from pipeline.store.layout import StageDir
    from pipeline.store.reader import StageReader

    _, fingerprints = read_view(Path("manifests"), "rgb")
    reader = StageReader(StageDir(Path("cache"), "rgb", fingerprints["rgb"]))
    return {
        r["sample_id"]: reader.read(r["rgb_key"])["features"]
        for r in pq.read_table("manifests/rgb.parquet").to_pylist()
    }


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
    rgb = {
        "size": args.size,
        "resize": args.resize,
        "window": args.window,
        "stride": 1,
        "num_windows": args.num_windows,
        "batch_size": args.batch_size,
        "feature_sets": {"default": {"checkpoint": "random", "family": "bsl1k"}},
    }
    with tempfile.TemporaryDirectory(prefix="rgb-bench-") as tmp:
        cwd = os.getcwd()
        try:
            params = make_project(Path(tmp), args.sentences, args.threads)
            clips = len(rows())
            frames = sum(r["num_frames"] for r in rows())
            decode_s = decode_only(rgb)
            stage_s, _ = run_stage(params, rgb)
            careful_s, careful_features = careful(rgb)
            naive_s, naive_features = naive(rgb)
            ours = stage_features()
            agree = {
                "careful": _worst_difference(ours, careful_features),
                "naive": _worst_difference(ours, naive_features),
            }
        finally:
            os.chdir(cwd)
    if max(agree.values()) > 2e-2:
        raise SystemExit(f"stage and baseline features disagree (max |diff| {agree}): not comparable")
    results = {
        "clips": clips,
        "frames": frames,
        "settings": {k: v for k, v in rgb.items() if k != "feature_sets"},
        "threads": args.threads,
        "device": "cpu",
        "stage_s": round(stage_s, 2),
        "careful_s": round(careful_s, 2),
        "naive_s": round(naive_s, 2),
        "decode_only_s": round(decode_s, 2),
        "stage_clips_per_s": round(clips / stage_s, 3),
        "careful_clips_per_s": round(clips / careful_s, 3),
        "naive_clips_per_s": round(clips / naive_s, 3),
        "decode_clips_per_s": round(clips / decode_s, 3),
        "speedup_vs_careful": round(careful_s / stage_s, 2),
        "speedup_vs_naive": round(naive_s / stage_s, 2),
        "stage_vs_decode_bound": round(decode_s / stage_s, 3),
        "max_feature_diff": agree,
    }
    print(
        f"rgb stage: {clips} clips ({frames} frames, {args.size}px, window {args.window}, "
        f"{args.num_windows} windows/clip) on {args.threads} CPU threads"
    )
    print(f"  stage       {results['stage_clips_per_s']:8.3f} clips/s  ({stage_s:.1f} s, incl. model load and summary)")
    print(
        f"  careful     {results['careful_clips_per_s']:8.3f} clips/s  "
        f"({careful_s:.1f} s, clip decoded once, a forward per window)"
    )
    print(
        f"  naive       {results['naive_clips_per_s']:8.3f} clips/s  ({naive_s:.1f} s, a decode + forward per window)"
    )
    print(f"  decode only {results['decode_clips_per_s']:8.3f} clips/s  ({decode_s:.1f} s)")
    print(
        f"  stage / careful = {results['speedup_vs_careful']:.2f}x "
        f"(stage / naive = {results['speedup_vs_naive']:.2f}x); "
        f"stage runs at {100 * results['stage_vs_decode_bound']:.0f}% of the decode-only rate; features agree to "
        f"{max(agree.values()):.2g}"
    )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
