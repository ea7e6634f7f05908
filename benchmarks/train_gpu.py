"""SEDS training throughput on a GPU: steps/s and peak memory at batch 128, AMP beside fp32.

Trains the paper-size model (How2Sign profile: Pose encoder 128-128-256-512, 12-layer 768-wide
interactions, CLIP ViT-B/32 text tower, 2 CGAF layers) on sample-shaped synthetic batches: 64 steps of
49 keypoints and 1024-d RGB features, 32 text tokens. The text tower is CLIP's architecture with random
weights (`clip-b32-random`, explicit: no download, no tokenizer; token ids are random), which costs the
same as the pretrained one. The same steps run twice, fp32 (the naive way) and with autocast (bf16
where supported, else fp16 with a grad scaler); the ratio is printed.

    python benchmarks/train_gpu.py --steps 300 --batch 128 [--out DIR]

Writes train_gpu.json under --out (default $OUT, else benchmarks/results). Imports torch, numpy and
transformers only (no mmcv, mmpose, decord, dask or dvc), so it runs on a bare GPU box.
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
from pipeline.models.seds.text import CLIP_B32_RANDOM  # noqa: E402
from pipeline.train.optim import build_optimizer, optimizer_step, set_learning_rates  # noqa: E402
from pipeline.train.params import TrainParams  # noqa: E402


def batch(b: int, steps: int, words: int, vocab: int, device: str, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Sample-shaped inputs: a few padded clips and sentences, ~5% missing joints."""
    g = generator
    step_mask = torch.ones(b, steps, dtype=torch.bool)
    step_mask[: b // 8, steps * 3 // 4:] = False
    word_mask = torch.zeros(b, words, dtype=torch.bool)
    lengths = torch.randint(min(6, words), words + 1, (b,), generator=g)
    for i, n in enumerate(lengths.tolist()):
        word_mask[i, :n] = True
    out = {"keypoints": torch.rand(b, steps, 49, 2, generator=g) * 256,
           "joint_mask": torch.rand(b, steps, 49, generator=g) > 0.05,
           "rgb": torch.randn(b, steps, 1024, generator=g), "step_mask": step_mask,
           "ids": torch.randint(0, vocab, (b, words), generator=g), "words": word_mask}
    return {k: v.to(device, non_blocking=True) for k, v in out.items()}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(mode: str, steps: int, b: int, device: str, warmup: int, config: SEDSConfig | None = None) -> dict:
    """`steps` timed training steps after `warmup` untimed ones. CPU works too (a smoke run: autocast
    bf16 on CPU, no memory figure); `config` replaces the paper-size model (tests use a tiny one)."""
    torch.manual_seed(0)
    config = config or SEDSConfig(text_encoder=CLIP_B32_RANDOM)
    params = TrainParams(text_encoder=config.text_encoder, batch_size=b)
    model = SEDS(config).to(device)
    optimizer = build_optimizer(model, params)
    cuda = device.startswith("cuda")
    dtype = None
    if mode == "amp":  # the stage's rule on CUDA; on the CPU (a smoke run) bf16, so autocast runs too
        dtype = autocast_dtype(resolve_precision(device, "auto") if cuda else "bf16")
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    generator = torch.Generator().manual_seed(1)
    vocab = model.text.backbone.config.vocab_size
    batches = [batch(b, config.steps, config.max_words, vocab, device, generator) for _ in range(4)]
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    losses = []
    for step in range(warmup + steps):
        if step == warmup:
            _sync(device)
            started = time.perf_counter()
        x = batches[step % len(batches)]
        set_learning_rates(optimizer, step, warmup + steps, params.warmup)
        with torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            video = model.encode_video(x["keypoints"], x["joint_mask"], x["rgb"], x["step_mask"])
            text = model.encode_text(x["ids"], x["words"])
            loss, _ = model.loss(video, text, x["words"], text, x["words"])
        optimizer_step(model, optimizer, loss, scaler, params.grad_clip)
        if step % 50 == 0:
            losses.append(round(float(loss.detach()), 4))
    _sync(device)
    seconds = time.perf_counter() - started
    return {"mode": mode, "dtype": str(dtype or torch.float32), "steps": steps, "batch": b,
            "steps_per_s": steps / seconds, "clips_per_s": steps * b / seconds,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "loss_every_50": losses}


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
        print(f"{mode:>5}: {r['steps_per_s']:.2f} steps/s ({r['clips_per_s']:.0f} clips/s) at batch {args.batch}, "
              f"peak {r['peak_memory_gib']:.1f} GiB, {r['params_m']:.1f}M params, loss {r['loss_every_50']}", flush=True)
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
