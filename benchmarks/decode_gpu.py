"""NVDEC against the CPU decoder on How2Sign-like clips: the agreement check, decode frames/s both ways,
and the fused 720p pipeline (decode -> pose crops + RTMPose-l -> I3D windows) in clips/s both ways.

    python benchmarks/decode_gpu.py [--clips 6] [--seconds 7] [--decoders 8] [--pose-batch 128]
                                    [--rgb-batch 64] [--device cuda] [--out DIR] [--check-only]

Clips: `--clips` 1280x720, 24 fps H.264 clips rendered by the sample generator (HOW2SIGN_LIKE, `--seconds`
long; rendering needs PyAV), or the .mp4 files in `--videos DIR` (scripts/gpu_wheels.sh renders them
into .clips720/ for GPU boxes without PyAV). Frames: each clip's thinned list (pose.frames thin 300), as
both stages take it. The CPU decoder is the pipeline's (decord/PyAV, pipeline/video/decode.py) where
PyAV is installed, else OpenCV's FFmpeg (the same swscale conversion; recorded as "cpu_decoder").

The check (exit status 1 when it fails): per clip, NVDEC frames vs the CPU decoder's (pixel levels), and
I3D features of the SEDS windows from both (CPU: decoder resize + pipeline.rgb.frames; NVDEC:
pipeline.rgb.gpu_frames on the GPU) within TOLERANCE (docs/gpu.md). Pose keypoints from both
(pipeline.pose.topdown vs pipeline.pose.gpu_crops, RTMPose-l 384x288) are reported, not checked: with
random weights a one-level change can move a near-flat SimCC argmax anywhere.
Weights are seeded random (same cost as checkpoints). Results go to DIR/decode_gpu.json (--out or $OUT).
Needs torch, numpy, opencv and PyNvVideoCodec (carried wheel); PyAV/decord where installed.

RTMPose runs as the pose stage runs it on NVDEC frames: the stage's NativeEstimator (bf16 on CUDA) fed
ready crops through `pipeline.pose.device_input.keypoints_from_crops`, the entry point the stage's GPU
path uses (both arms, so only decoding and cropping differ). The fused measurement keeps its own loop
rather than `seds run pose rgb`: the stage path needs the probe view (which NVDEC's per-clip choice
reads) and, for the probe and the CPU arm, PyAV or decord, which the bare GPU box lacks (they exceed
what a run may carry); it times the same operations the stages run.
"""

from __future__ import annotations

import argparse
import importlib.util
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

from pipeline.models.checkpoints import resolve_checkpoint  # noqa: E402  (after the path set-up)
from pipeline.models.i3d import random_i3d  # noqa: E402
from pipeline.models.rtmpose.spec import DEFAULT_MODEL, MODELS  # noqa: E402
from pipeline.pose.boxes import whole_frame_box  # noqa: E402
from pipeline.pose.device_input import keypoints_from_crops  # noqa: E402
from pipeline.pose.gpu_crops import crop_inputs_on_device  # noqa: E402
from pipeline.pose.native import NativeEstimator  # noqa: E402
from pipeline.pose.topdown import crop_inputs  # noqa: E402
from pipeline.rgb.extractor import WindowExtractor  # noqa: E402
from pipeline.rgb.frames import to_model_input  # noqa: E402
from pipeline.rgb.gpu_frames import to_model_input_on_device  # noqa: E402
from pipeline.rgb.windows import plan_windows  # noqa: E402
from pipeline.sample.generate import HOW2SIGN_LIKE, how2sign_like_clips  # noqa: E402
from pipeline.video.decode import _resize, read_frames  # noqa: E402  (read_frames needs PyAV or decord)
from pipeline.video.nvdec import NvdecReader, nvdec_declines, nvdec_missing  # noqa: E402
from pipeline.video.sampling import frame_list  # noqa: E402

# NVDEC vs CPU decoding, measured where a GPU was lent (docs/gpu.md): I3D features' max |difference| as a
# fraction of the features' max |value|, and the mean pixel difference in uint8 levels.
TOLERANCE = {"feature_rel_max": 0.05, "pixel_mean": 2.0}
RESIZE, SIZE, FAMILY = 256, 224, "bsl1k"  # the paper's I3D input (profiles/how2sign.yaml)
HAVE_AV = importlib.util.find_spec("av") is not None
CPU_DECODER = "pipeline (decord/PyAV)" if HAVE_AV else "opencv"


def cpu_read(path: Path, indices: np.ndarray) -> np.ndarray:
    """RGB uint8 frames at `indices` decoded on the CPU (see the module docstring for which decoder)."""
    if HAVE_AV:
        return read_frames(path, indices)
    capture = cv2.VideoCapture(str(path))
    wanted, got, i = set(indices.tolist()), {}, 0
    while len(got) < len(wanted):
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"{path}: OpenCV stopped at frame {i}")
        if i in wanted:
            got[i] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        i += 1
    return np.stack([got[j] for j in indices.tolist()])


def count_frames(path: Path) -> int:
    if HAVE_AV:
        from pipeline.video.decode import count_decodable

        return count_decodable(path)[0].video_frames
    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.grab():
        count += 1
    return count


def stream_format(path: Path) -> dict:
    """The facts the probe records for NVDEC's choice (its VideoInfo; needs PyAV), as a probe row has them."""
    from pipeline.video.decode import open_source

    return open_source(path).info.as_dict()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Models:
    """RTMPose-l 384x288 and I3D with seeded random weights, as the stages run them on CUDA."""

    def __init__(self, device: torch.device, pose_batch: int, rgb_batch: int):
        self.device = device
        self.spec = MODELS[DEFAULT_MODEL]
        self.pose = NativeEstimator(
            self.spec, resolve_checkpoint("random", "pose.checkpoint"), str(device), pose_batch, "bf16", flip_test=True
        )
        self.pose_batch = pose_batch
        self.rgb_precision = "bf16" if device.type == "cuda" else "fp32"
        self.i3d = random_i3d().eval()
        self.rgb_batch = rgb_batch

    def keypoints(self, crops: torch.Tensor, centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
        out = [
            keypoints_from_crops(
                self.pose,
                crops[start : start + self.pose_batch],
                centers[start : start + self.pose_batch],
                scales[start : start + self.pose_batch],
            )[0]
            for start in range(0, len(crops), self.pose_batch)
        ]
        return np.concatenate(out) if out else np.zeros((0, 133, 2), np.float32)

    def features(self, clips: list[tuple[torch.Tensor, np.ndarray]]) -> list[np.ndarray]:
        extractor = WindowExtractor(self.i3d, self.device, self.rgb_batch, self.rgb_precision)
        results = {}
        for key, (frames, positions) in enumerate(clips):
            extractor.submit(key, frames, positions)
            results.update(extractor.ready())
        results.update(extractor.finish())
        return [results[k] for k in range(len(clips))]


def plan(path: Path, frames: int) -> tuple[np.ndarray, object]:
    """The clip's thinned frames (pose and rgb share them) and its I3D window plan."""
    return frame_list(frames, "thin", 300), plan_windows(frames, window=16, stride=1, max_frames=300, num_windows=64)


def cpu_clip(path: Path, frames: int, models: Models) -> tuple[np.ndarray, torch.Tensor, object]:
    """CPU decode + CPU preprocessing: (frames, I3D input on the device, window plan)."""
    indices, windows = plan(path, frames)
    decoded = cpu_read(path, indices)
    rgb = to_model_input(
        np.stack([_resize(f, RESIZE) for f in decoded[np.searchsorted(indices, windows.frames)]]),
        SIZE,
        FAMILY,
        models.device,
    )
    return decoded, rgb, windows


def check(paths: list[Path], counts: list[int], reader: NvdecReader, models: Models) -> dict:
    rows = []
    for path, frames in zip(paths, counts):
        indices, windows = plan(path, frames)
        cpu, cpu_rgb, _ = cpu_clip(path, frames, models)
        gpu = reader.read(path, indices)
        pixels = gpu.to(torch.int16).cpu().numpy() - cpu.astype(np.int16)
        gpu_rgb = to_model_input_on_device(
            gpu[torch.from_numpy(np.searchsorted(indices, windows.frames)).to(gpu.device)], RESIZE, SIZE, FAMILY
        )
        f_cpu, f_gpu = models.features([(cpu_rgb, windows.positions), (gpu_rgb, windows.positions)])
        boxes = np.stack([whole_frame_box(cpu.shape[2], cpu.shape[1])] * len(cpu))
        crops, centers, scales = crop_inputs(list(cpu), boxes, models.spec.input_size, models.spec.bbox_padding)
        k_cpu = models.keypoints(torch.from_numpy(crops), centers, scales)
        crops, centers, scales = crop_inputs_on_device(gpu, boxes, models.spec.input_size, models.spec.bbox_padding)
        k_gpu = models.keypoints(crops, centers, scales)
        moved = np.linalg.norm(k_cpu - k_gpu, axis=-1)
        rows.append(
            {
                "clip": path.name,
                "frames": int(len(indices)),
                "pixel_max": int(np.abs(pixels).max()),
                "pixel_mean": float(np.abs(pixels).mean()),
                "feature_max_abs_diff": float(np.abs(f_cpu - f_gpu).max()),
                "feature_rel_max": float(np.abs(f_cpu - f_gpu).max() / max(np.abs(f_cpu).max(), 1e-12)),
                "keypoints_unchanged": float((moved == 0).mean()),
                "keypoint_px_p95": float(np.percentile(moved, 95)),
            }
        )
    worst = {key: max(r[key] for r in rows) for key in TOLERANCE}
    return {
        "clips": rows,
        "worst": worst,
        "tolerance": TOLERANCE,
        "ok": all(worst[key] <= limit for key, limit in TOLERANCE.items()),
    }


def decode_rate(paths: list[Path], counts: list[int], read) -> float:
    """Frames/s of `read(path, indices)` over every clip's thinned frames, one clip after another."""
    start, total = time.perf_counter(), 0
    for path, frames in zip(paths, counts):
        indices = frame_list(frames, "thin", 300)
        read(path, indices)
        total += len(indices)
    return total / (time.perf_counter() - start)


def fused(
    paths: list[Path], counts: list[int], models: Models, source: str, reader: NvdecReader | None, decoders: int
) -> float:
    """Clips/s of decode -> pose (whole-frame box, RTMPose-l, flip test) + I3D (64 windows) per clip. CPU
    decoding runs `decoders` clips ahead in threads (decord and PyAV release the GIL), with the CPU
    preprocessing; NVDEC decodes in this thread and preprocesses on the GPU."""

    def cpu_job(item):
        path, frames = item
        decoded, rgb, windows = cpu_clip(path, frames, models)
        boxes = np.stack([whole_frame_box(decoded.shape[2], decoded.shape[1])] * len(decoded))
        crops, centers, scales = crop_inputs(list(decoded), boxes, models.spec.input_size, models.spec.bbox_padding)
        return torch.from_numpy(crops), centers, scales, rgb, windows

    def gpu_job(item):
        path, frames = item
        indices, windows = plan(path, frames)
        decoded = reader.read(path, indices)
        boxes = np.stack([whole_frame_box(decoded.shape[2], decoded.shape[1])] * len(decoded))
        crops, centers, scales = crop_inputs_on_device(decoded, boxes, models.spec.input_size, models.spec.bbox_padding)
        where = torch.from_numpy(np.searchsorted(indices, windows.frames)).to(decoded.device)
        return crops, centers, scales, to_model_input_on_device(decoded[where], RESIZE, SIZE, FAMILY), windows

    sync(models.device)
    start = time.perf_counter()
    rgb_clips = []
    items = list(zip(paths, counts))
    if source == "cpu":
        with ThreadPoolExecutor(decoders) as pool:
            prepared = pool.map(cpu_job, items)
            for crops, centers, scales, rgb, windows in prepared:
                models.keypoints(crops, centers, scales)
                rgb_clips.append((rgb, windows.positions))
    else:
        for item in items:
            crops, centers, scales, rgb, windows = gpu_job(item)
            models.keypoints(crops, centers, scales)
            rgb_clips.append((rgb, windows.positions))
    models.features(rgb_clips)
    sync(models.device)
    return len(items) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=HOW2SIGN_LIKE["seconds"])
    parser.add_argument("--videos", type=Path, help="use the .mp4 files here instead of rendering clips")
    parser.add_argument("--decoders", type=int, default=8, help="CPU decoder threads in the fused CPU run")
    parser.add_argument("--pose-batch", type=int, default=128)
    parser.add_argument("--rgb-batch", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", default=os.environ.get("OUT", "benchmarks/results/gpu"))
    parser.add_argument("--check-only", action="store_true", help="the agreement check, no timings")
    args = parser.parse_args()
    device = torch.device(args.device)
    missing = nvdec_missing(args.device)
    if missing:
        print(f"decode_gpu: NVDEC cannot run here: {missing}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        paths = (
            sorted(args.videos.glob("*.mp4"))
            if args.videos
            else how2sign_like_clips(Path(tmp), args.clips, args.seconds)
        )
        counts = [count_frames(p) for p in paths]
        unsupported = {p.name: r for p in paths if HAVE_AV and (r := nvdec_declines(stream_format(p)))}
        if unsupported:
            print(f"decode_gpu: clips NVDEC would not take: {unsupported}", file=sys.stderr)
            return 2
        reader = NvdecReader(args.device)
        models = Models(device, args.pose_batch, args.rgb_batch)
        result = {
            "device": torch.cuda.get_device_name(device),
            "clips": len(paths),
            "cpu_decoder": CPU_DECODER,
            "frames_per_clip": counts,
            "render_s": round(time.perf_counter() - start, 1),
        }
        result["check"] = check(paths, counts, reader, models)
        if not args.check_only:
            reader.read(paths[0], np.arange(4))  # warm the decoder and the models once
            fused(paths[:1], counts[:1], models, "nvdec", reader, args.decoders)
            result["decode_frames_per_s"] = {
                "cpu_one_thread": decode_rate(paths, counts, cpu_read),
                "nvdec": decode_rate(paths, counts, reader.read),
            }
            result["fused_clips_per_s"] = {
                "cpu_decode": fused(paths, counts, models, "cpu", None, args.decoders),
                "nvdec": fused(paths, counts, models, "nvdec", reader, args.decoders),
            }
    (out / "decode_gpu.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not result["check"]["ok"]:
        print(
            f"decode_gpu: NVDEC differs from the CPU decoder beyond the tolerance: worst {result['check']['worst']}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
