"""SEDS training throughput on a GPU: steps/s and peak memory at batch 128, AMP beside fp32.

Trains the authors' How2Sign model (pipeline/models/seds: part GCNs over 300 kept frames, window fusion
over 64 windows of 16 frames, CLIP ViT-B/32 feature towers and text tower, 2 CGAF layers) on
How2Sign-shaped synthetic batches: 49 keypoints per frame, 1024-d RGB features, 32 text tokens. CLIP's
parts have random weights (explicit: no download; token ids are random), which cost the same as the
pretrained ones. The same steps run twice, fp32 (the naive way) and with autocast (bf16 where
supported, else fp16 with a grad scaler); the ratio is printed.

    python benchmarks/train_gpu.py --steps 300 --batch 128 [--out DIR]

Writes train_gpu.json under --out (default $OUT, else benchmarks/results). Imports torch and numpy only
(no mmcv, mmpose, decord, dask or dvc), so it runs on a bare GPU box.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models.precision import autocast_dtype, resolve_precision  # noqa: E402
from pipeline.models.seds.model import SEDS, SEDSConfig  # noqa: E402
from pipeline.models.seds.tokenizer import END, START, text_mask  # noqa: E402
from pipeline.train.optim import build_optimizer, optimizer_step  # noqa: E402
from pipeline.train.params import TrainParams  # noqa: E402

FRAMES = 300


def batch(
    b: int, config: SEDSConfig, device: str, generator: torch.Generator, frames: int = FRAMES, window: int = 16
) -> dict[str, torch.Tensor]:
    """How2Sign-shaped inputs: clips of up to `frames` kept frames with windows of `window` frames at
    stride 1 (the last eighth of the batch half as long, so windows and frames are padded)."""
    g = generator
    windows = torch.full((b, config.steps, window), -1, dtype=torch.long)
    for i in range(b):
        length = frames // 2 if i < b // 8 else frames
        starts = torch.linspace(0, length - window, config.steps).long()
        windows[i] = starts[:, None] + torch.arange(window)[None]
    ids = torch.zeros(b, config.max_words, dtype=torch.long)
    for i, n in enumerate(torch.randint(4, config.max_words - 1, (b,), generator=g).tolist()):
        ids[i, 0], ids[i, 1 : n + 1], ids[i, n + 1] = START, torch.randint(1, START, (n,), generator=g), END
    out = {
        "keypoints": torch.rand(b, frames, 49, 2, generator=g) * 256,
        "windows": windows,
        "rgb": torch.randn(b, config.steps, 1024, generator=g),
        "ids": ids,
    }
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(
    mode: str,
    steps: int,
    b: int,
    device: str,
    warmup: int,
    config: SEDSConfig | None = None,
    frames: int = FRAMES,
    params: TrainParams | None = None,
) -> dict:
    """`steps` timed training steps after `warmup` untimed ones. CPU works too (a smoke run: autocast
    bf16 on CPU, no memory figure); `config`, `frames` and `params` replace the paper-size model, clip
    length and the authors' optimiser settings (tests use a tiny model)."""
    torch.manual_seed(0)
    config = config or SEDSConfig()
    params = params or TrainParams(batch_size=b)
    model = SEDS(config).to(device)
    optimizer = build_optimizer(model, params, warmup + steps)
    cuda = device.startswith("cuda")
    dtype = None
    if mode == "amp":  # the stage's rule on CUDA; on the CPU (a smoke run) bf16, so autocast runs too
        dtype = autocast_dtype(resolve_precision(device, "auto") if cuda else "bf16")
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    generator = torch.Generator().manual_seed(1)
    batches = [batch(b, config, device, generator, frames) for _ in range(4)]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    losses, first_loss = [], float("nan")
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        x = batches[step % len(batches)]
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            video = model.encode_video(x["keypoints"], x["windows"], x["rgb"])
            text = model.encode_text(x["ids"])
            loss, _ = model.loss(video, text, text_mask(x["ids"]), text, text_mask(x["ids"]))
        optimizer_step(model, optimizer, loss, scaler, params.grad_clip)
        if step % 50 == 0:
            losses.append(round(float(loss.detach()), 4))
        first_loss = first_loss if step else float(loss.detach())
    _sync(device)
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "dtype": str(dtype or torch.float32),
        "steps": steps,
        "batch": b,
        "steps_per_s": steps / seconds,
        "clips_per_s": steps * b / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "loss_every_50": losses,
        "first_loss": first_loss,
        "last_loss": float(loss.detach()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/results")
    parser.add_argument("--modes", default="fp32,amp", help="comma list of fp32 and amp")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("train_gpu: no CUDA device; this benchmark measures GPU training", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32: the naive baseline
    results = []
    for mode in args.modes.split(","):
        r = run(mode, args.steps, args.batch, "cuda", args.warmup)
        results.append(r)
        print(
            f"{mode:>5}: {r['steps_per_s']:.2f} steps/s ({r['clips_per_s']:.0f} clips/s) at batch {args.batch}, "
            f"peak {r['peak_memory_gib']:.1f} GiB, {r['params_m']:.1f}M params, loss {r['loss_every_50']}",
            flush=True,
        )
        torch.cuda.empty_cache()
    by_mode = {r["mode"]: r for r in results}
    summary = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "results": results}
    if {"fp32", "amp"} <= set(by_mode):
        summary["amp_speedup"] = by_mode["amp"]["steps_per_s"] / by_mode["fp32"]["steps_per_s"]
        print(f"AMP / fp32 steps/s: {summary['amp_speedup']:.2f}x", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_gpu.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
