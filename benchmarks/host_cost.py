"""Host core-seconds per 720p clip, by phase, for the pose and rgb stages run separately and over one decode.

    python benchmarks/host_cost.py [--clips 3] [--seconds 7] [--repeats 3] [--quick] [--out host_cost.json]

Why: at How2Sign scale (35,263 clips of 1280x720, ~24 fps, ~7 s) a GPU node is bounded by its host
cores, not its GPU, once the models run on the GPU. This measures what each clip costs the host:
- decode: the clip's sampled frames decoded by our decoder (decord, PyAV fallback), with the rgb frames'
  short-side resize that the decoder child does. Separate stages decode twice (pose: full size; rgb:
  resized); one decode (`seds run pose rgb`, pipeline/extract) decodes the union once
  (`decode.read_frame_sets`);
- pose preparation: the top-down crops (affine warp per frame, pipeline/pose/topdown.py);
- rgb preparation: centre crop and normalisation (pipeline/rgb/frames.py);
- model: a GPU's share, NOT host work: measured here with tiny random-weight stand-ins (labelled so),
  only to show its place; it is left out of the host total;
- decode of outputs: SimCC logits to keypoints in frame pixels; features to float16;
- store write: both items through the ShardWriter (lzf, fsync at close).
Every phase is timed with the process's CPU time (time.process_time: all threads of this process;
decoding runs in-process here, where the stages run it in a child). Frames follow the How2Sign profile:
pose and rgb both read the clip thinned to <= 300 frames, I3D windows of 16 at 256 -> 224 px, pose
crops of 384x288 (rtmpose-l). The clips are made here (moving texture + a moving figure, H.264 via
PyAV/libx264, 1280x720 at 24 fps) until the sample generator renders How2Sign-like clips.

Reported: per-phase core-seconds per clip (median over repeats, min..max spread), host totals, the
one-decode / separate ratio (goal <= 0.55), the ceiling of a 16-core node if the GPU cost nothing
(16 / host core-seconds per clip, clips/s) and the hours How2Sign would take at that ceiling.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HOW2SIGN_CLIPS = 35_263
NODE_CORES = 16
POSE_INPUT = (288, 384)  # rtmpose-l 384x288: (W, H)
POSE_BATCH = 64
RGB_RESIZE, RGB_SIZE, RGB_WINDOW, RGB_WINDOWS, MAX_FRAMES = 256, 224, 16, 64, 300
HOST_PHASES = ("decode", "pose preparation", "rgb preparation", "decode of outputs", "store write")


class _Timer:
    """Accumulates process CPU seconds per phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, phase: str, fn, *args, **kwargs):
        start = time.process_time()
        out = fn(*args, **kwargs)
        self.seconds[phase] = self.seconds.get(phase, 0.0) + time.process_time() - start
        return out


def tiny_models():
    """Stand-ins for RTMPose and I3D with random weights (labelled so): the model phase belongs to a GPU;
    these only give the logits and features the host then decodes."""
    import torch

    torch.manual_seed(0)
    bins_x, bins_y = POSE_INPUT[0] * 2, POSE_INPUT[1] * 2  # SimCC split ratio 2
    pose = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 7, stride=8),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 133 * (bins_x + bins_y)),
    )
    i3d = torch.nn.Sequential(
        torch.nn.Conv3d(3, 8, (3, 7, 7), stride=(2, 8, 8)),
        torch.nn.AdaptiveAvgPool3d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 1024),
    )
    return pose.eval(), i3d.eval(), (bins_x, bins_y)


def open_writers(root: Path) -> dict:
    """One ShardWriter per stage, as a stage's worker keeps one across clips (shards of many items)."""
    from pipeline.fingerprint import StageFingerprint
    from pipeline.store.layout import StageDir
    from pipeline.store.writer import ShardWriter

    writers = {}
    for stage in ("pose", "rgb"):
        fingerprint = StageFingerprint(stage, 1, {"benchmark": "host_cost"}, {}, None)
        stage_dir = StageDir(root, stage, fingerprint.digest)
        stage_dir.create(fingerprint)
        writers[stage] = ShardWriter(stage_dir, compression="lzf")
    return writers


def measure_clip(path: Path, frames_total: int, mode: str, writers: dict, models, timer: _Timer) -> None:
    import torch

    from pipeline.models.rtmpose.codec import decode_simcc, input_to_frame
    from pipeline.pose.boxes import whole_frame_box
    from pipeline.pose.topdown import crop_inputs
    from pipeline.rgb.frames import to_model_input
    from pipeline.rgb.windows import plan_windows
    from pipeline.store.records import Item
    from pipeline.video import decode
    from pipeline.video.sampling import frame_list

    pose_model, i3d, (bins_x, bins_y) = models
    pose_frames = frame_list(frames_total, "thin", MAX_FRAMES)
    plan = plan_windows(frames_total, window=RGB_WINDOW, stride=1, max_frames=MAX_FRAMES, num_windows=RGB_WINDOWS)
    if mode == "separate":
        full = timer("decode", decode.read_frames, path, pose_frames)
        small = timer("decode", decode.read_frames, path, plan.frames, RGB_RESIZE)
    else:
        full, small = timer("decode", decode.read_frame_sets, path, [(pose_frames, None), (plan.frames, RGB_RESIZE)])

    height, width = full.shape[1:3]
    boxes = np.repeat(whole_frame_box(width, height)[None], len(full), axis=0).astype(np.float32)
    keypoints, scores = [], []
    for start in range(0, len(full), POSE_BATCH):
        crops, centers, scales = timer(
            "pose preparation",
            crop_inputs,
            full[start : start + POSE_BATCH],
            boxes[start : start + POSE_BATCH],
            POSE_INPUT,
            1.25,
        )
        with torch.inference_mode():
            batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
            logits = timer("model (GPU's share; tiny random stand-in)", pose_model, batch).view(len(crops), 133, -1)
        simcc_x, simcc_y = logits[..., :bins_x].numpy(), logits[..., bins_x:].numpy()

        def outputs():
            points, values = decode_simcc(simcc_x, simcc_y, 2.0)
            return input_to_frame(points, POSE_INPUT, centers, scales), values

        points, values = timer("decode of outputs", outputs)
        keypoints.append(points)
        scores.append(values)
    clip = timer("rgb preparation", to_model_input, small, RGB_SIZE, "bsl1k", "cpu")
    with torch.inference_mode():
        windows = clip[torch.from_numpy(plan.positions)].permute(0, 2, 1, 3, 4)  # (n, 3, window, H, W)
        features = timer("model (GPU's share; tiny random stand-in)", i3d, windows)
    stored = timer("decode of outputs", lambda: features.numpy().astype(np.float16))

    def write():
        for stage, arrays in (
            (
                "pose",
                {
                    "keypoints": np.concatenate(keypoints),
                    "scores": np.concatenate(scores),
                    "boxes": boxes,
                    "frames": pose_frames,
                },
            ),
            ("rgb", {"features": stored, "windows": plan.windows}),
        ):
            writers[stage].add(Item(f"{stage}-{path.stem}", path.stem, arrays, {}, {}))

    timer("store write", write)


def summarise(runs: dict[str, list[dict[str, float]]], clips: int) -> dict:
    out = {}
    for mode, repeats in runs.items():
        phases = sorted({p for r in repeats for p in r})
        per_clip = {p: [r.get(p, 0.0) / clips for r in repeats] for p in phases}
        host = [sum(r.get(p, 0.0) for p in HOST_PHASES) / clips for r in repeats]
        out[mode] = {
            "phases": {p: {"median": statistics.median(v), "min": min(v), "max": max(v)} for p, v in per_clip.items()},
            "host": {"median": statistics.median(host), "min": min(host), "max": max(host)},
        }
    ratios = [
        one / sep
        for one, sep in zip(
            (sum(r.get(p, 0.0) for p in HOST_PHASES) for r in runs["one decode"]),
            (sum(r.get(p, 0.0) for p in HOST_PHASES) for r in runs["separate"]),
        )
    ]
    out["ratio"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    for mode in ("separate", "one decode"):
        host = out[mode]["host"]["median"]
        out[mode]["ceiling_clips_per_s"] = NODE_CORES / host
        out[mode]["how2sign_hours"] = HOW2SIGN_CLIPS / (NODE_CORES / host) / 3600
    return out


def table(result: dict) -> str:
    modes = ("separate", "one decode")
    phases = list(HOST_PHASES) + [p for p in result["separate"]["phases"] if p not in HOST_PHASES]
    lines = ["| phase | host work | separate (core-s/clip) | one decode (core-s/clip) |", "|---|---|---:|---:|"]
    for phase in phases:
        cells = []
        for mode in modes:
            m = result[mode]["phases"].get(phase, {"median": 0.0, "min": 0.0, "max": 0.0})
            cells.append(f"{m['median']:.3f} ({m['min']:.3f}..{m['max']:.3f})")
        lines.append(f"| {phase} | {'yes' if phase in HOST_PHASES else 'no (GPU)'} | {cells[0]} | {cells[1]} |")
    host = [result[m]["host"] for m in modes]
    lines.append(
        f"| **host total** | | {host[0]['median']:.3f} ({host[0]['min']:.3f}..{host[0]['max']:.3f}) | "
        f"{host[1]['median']:.3f} ({host[1]['min']:.3f}..{host[1]['max']:.3f}) |"
    )
    r = result["ratio"]
    lines += [
        "",
        f"one decode / separate host core-seconds: {r['median']:.3f} ({r['min']:.3f}..{r['max']:.3f}; goal <= 0.55)",
    ]
    for mode in modes:
        lines.append(
            f"{mode}: {NODE_CORES}-core ceiling if the GPU cost nothing {result[mode]['ceiling_clips_per_s']:.2f} "
            f"clips/s -> How2Sign ({HOW2SIGN_CLIPS} clips) in {result[mode]['how2sign_hours']:.2f} h"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=7.0, help="clip length (How2Sign sentences: ~7 s)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 clip of 2 s, 2 repeats: a smoke run")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.clips, args.seconds, args.repeats = 1, 2.0, 2
    import torch

    from pipeline.sample.generate import how2sign_like_clips
    from pipeline.video.decode import count_decodable

    torch.set_num_threads(1)  # core-seconds, not wall time: one thread keeps the count honest and stable
    models = tiny_models()
    with tempfile.TemporaryDirectory(prefix="host-cost-") as tmp:
        folder = Path(tmp)
        clips = [
            (path, count_decodable(path)[0].video_frames)
            for path in how2sign_like_clips(folder / "clips", args.clips, args.seconds)
        ]
        runs: dict[str, list[dict[str, float]]] = {"separate": [], "one decode": []}
        for repeat in range(args.repeats):
            for mode in ("separate", "one decode") if repeat % 2 == 0 else ("one decode", "separate"):
                timer = _Timer()
                writers = open_writers(folder / f"store-{repeat}-{mode.replace(' ', '_')}")
                for path, frames in clips:
                    measure_clip(path, frames, mode, writers, models, timer)
                for writer in writers.values():
                    timer("store write", writer.close)  # the shard's publication, fsync included
                runs[mode].append(timer.seconds)
    result = {
        "clips": args.clips,
        "seconds_per_clip": args.seconds,
        "repeats": args.repeats,
        "resolution": "1280x720",
        "fps": 24,
        "models": "tiny random-weight stand-ins (model phase is the GPU's)",
        "runs": runs,
        **summarise(runs, args.clips),
    }
    print(table(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
