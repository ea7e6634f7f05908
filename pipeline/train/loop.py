"""The trainer: one flat loop (in the spirit of nanoGPT's train.py), resumable step for step.

What makes a resumed run take exactly the steps an uninterrupted one would:
- the clip order of epoch e is a permutation seeded by (seed, e); a resumed epoch skips the batches done;
- temporal sampling of clip i in epoch e is seeded by (seed, e, i); the text augmentation of batch
  position j at step s by (seed, s, j); dropout by torch.manual_seed(seed, s) before each step;
- the learning rate is a function of the step; model, optimiser, AMP scaler, the partial epoch's loss
  sums and the history travel in the checkpoint.
A checkpoint is resumed only when its run identity equals the current one: every train param except
output/worker knobs (params.NON_IDENTITY), TRAINER_VERSION (bump it when a code change alters what
training computes) and a hash of the training clips' item keys (keys hash content and stage
fingerprints, so new clips or recomputed features count as a change). Otherwise training starts
afresh and says why, so `dvc repro` after a code or data change never reuses a stale checkpoint.

Outputs under `train.out`: model.pt (final weights + resolved params), checkpoints/last.pt (resumable),
plots/train.tsv and plots/val.tsv (one row per epoch, for `dvc plots`), metrics.json (`dvc metrics`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.config import Params
from pipeline.fingerprint import hash_json
from pipeline.models.seds.model import SEDS, SEDSConfig
from pipeline.models.seds.text import describe_text_encoder
from pipeline.store.layout import StoreError
from pipeline.train.checkpoint import load_checkpoint, save_checkpoint
from pipeline.train.data import ClipDataset, ClipSet, EpochBatches, collate, load_clips, random_swap
from pipeline.train.evaluate import autocast_for, metrics_record, similarities
from pipeline.train.optim import build_optimizer, optimizer_step, set_learning_rates
from pipeline.train.outputs import METRICS_FILE, MODEL_FILE, PLOTS_DIR, TRAIN_PLOT, VAL_PLOT
from pipeline.train.params import TrainParams

LOSS_PARTS = ("loss", "fused", "pose", "rgb", "match")
TRAINER_VERSION = 1


def model_config(p: TrainParams, spans: dict[str, tuple[int, int]]) -> SEDSConfig:
    return SEDSConfig(
        spans={k: list(v) for k, v in spans.items()}, in_channels=3 if p.pose_channels == "xy_score" else 2,
        gcn_widths=tuple(p.gcn_widths), gcn_temporal_kernel=p.gcn_temporal_kernel, gcn_dropout=p.gcn_dropout,
        fusion_hidden=p.fusion_hidden, fusion_kernel=p.fusion_kernel, steps=p.steps,
        interaction_width=p.interaction_width, interaction_layers=p.interaction_layers,
        interaction_heads=p.interaction_heads, interaction_dropout=p.interaction_dropout, embed_dim=p.embed_dim,
        cgaf_layers=p.cgaf_layers, cgaf_heads=p.cgaf_heads, cgaf_ff=p.cgaf_ff, cgaf_window=p.cgaf_window,
        cgaf_dropout=p.cgaf_dropout, text_encoder=p.text_encoder, max_words=p.max_words, tau=p.tau,
        logit_scale_init=p.logit_scale_init, logit_scale_max=p.logit_scale_max, dual_mix=p.dual_mix,
        match_weight=p.match_weight, match_reduce=p.match_reduce)


def build_model(p: TrainParams, spans: dict[str, tuple[int, int]]) -> tuple[SEDS, list[str]]:
    """The model, seeded, with SignBERT init and text freezing applied; plus lines describing its weights."""
    from pipeline.models.signbert import load_gcn_hand

    torch.manual_seed(p.seed)
    model = SEDS(model_config(p, spans))
    notes = [f"text encoder: {describe_text_encoder(p.text_encoder)}"
             + (" frozen (lr_text 0)" if p.lr_text == 0 else "")]
    if p.signbert_checkpoint:
        notes.append(load_gcn_hand(model.pose_encoder.gcn_hand, p.signbert_checkpoint))
    else:
        notes.append("Pose encoder, interactions, CGAF: random init (seed %d)" % p.seed)
    if p.lr_text == 0:
        model.text.freeze()
    return model, notes


def resolve_device(requested: str) -> str:
    from pipeline.runner.execute import resolve_device as resolve

    return resolve(requested)


@dataclass
class TrainResult:
    out: Path
    step: int
    total_steps: int
    epochs_done: int
    seconds: float
    clips: str
    notes: list[str]
    history: list[dict[str, Any]]
    step_losses: dict[int, float] = field(default_factory=dict)  # this run's steps only
    resumed_from: int | None = None

    def line(self) -> str:
        last = self.history[-1] if self.history else {}
        val = f", val T2V R@1 {last['t2v_R@1']:.1f} V2T R@1 {last['v2t_R@1']:.1f}" if "t2v_R@1" in last else ""
        resumed = f" (resumed at step {self.resumed_from})" if self.resumed_from else ""
        loss = f", loss {last['loss']:.3f}" if "loss" in last else ""
        return (f"train: step {self.step}/{self.total_steps}, {self.epochs_done} epoch(s) in {self.seconds:.0f} s"
                f"{resumed}{loss}{val} -> {self.out}")


def _write_tsv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)]
    for row in rows:
        if all(c in row for c in columns):
            lines.append("\t".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    path.write_text("\n".join(lines) + "\n")


def _write_reports(out: Path, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    _write_tsv(out / PLOTS_DIR / TRAIN_PLOT, history,
               ["epoch", "step", *LOSS_PARTS, "lr_factor", "logit_scale", "seconds"])
    val_cols = ["epoch", "step"] + [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MedR", "MeanR")]
    _write_tsv(out / PLOTS_DIR / VAL_PLOT, [h for h in history if "t2v_R@1" in h], val_cols)
    (out / METRICS_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def train(params: Params) -> TrainResult:
    p: TrainParams = params["train"]
    runtime = params.runtime
    device = resolve_device(runtime.device)
    if device == "cpu":
        torch.set_num_threads(p.threads or runtime.threads_per_worker)
    out = Path(p.out)
    manifests, store = Path(runtime.manifests), Path(runtime.store)
    clips = load_clips(manifests, store, p.pose_view, p.rgb_views, p.split, params)
    val_clips: ClipSet | None = None
    if p.val_split and p.eval_every:
        try:
            val_clips = load_clips(manifests, store, p.pose_view, p.rgb_views, p.val_split, params)
        except StoreError as err:
            raise StoreError(f"{err} (train.val_split: null trains without validation)") from err
    model, notes = build_model(p, clips.spans)
    model.to(device)
    alpha = p.rgb_mix_alpha if len(p.rgb_views) == 2 else 0.0
    with_scores = p.pose_channels == "xy_score"
    dataset = ClipDataset(clips, p.steps, True, p.seed, with_scores, alpha, p.preload)
    val_dataset = ClipDataset(val_clips, p.steps, False, p.seed, with_scores, alpha, p.preload) if val_clips else None
    per_epoch = EpochBatches.count(len(dataset), p.batch_size)
    if per_epoch == 0:
        raise StoreError(f"split {p.split!r} has {len(dataset)} usable clip(s): a contrastive step needs at least two")
    total_steps = per_epoch * p.epochs
    limit = min(total_steps, p.max_steps or total_steps)
    optimizer = build_optimizer(model, p)
    from pipeline.models.precision import resolve_precision

    scaler = torch.amp.GradScaler("cuda") if resolve_precision(device, p.amp) == "fp16" else None

    step, history, seconds, sums, resumed_from = 0, [], 0.0, {k: 0.0 for k in LOSS_PARTS}, None
    last_path = out / "checkpoints" / "last.pt"
    identity = {**p.identity(), "trainer_version": TRAINER_VERSION,
                "data": hash_json([[c.pose_key, *c.rgb_keys] for c in clips.clips])}
    if p.resume and last_path.is_file():
        ck = load_checkpoint(last_path)
        if json.dumps(ck["identity"], sort_keys=True) == json.dumps(identity, sort_keys=True):
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            step, history, seconds, sums = ck["step"], ck["history"], ck["seconds"], ck["epoch_sums"]
            resumed_from = step
            notes.append(f"resumed from {last_path} at step {step}")
        else:
            changed = sorted(k for k in identity if ck["identity"].get(k) != identity[k])
            notes.append(f"not resuming {last_path}: run identity changed ({', '.join(changed)}); training afresh")

    def payload(with_optimizer: bool) -> dict[str, Any]:
        return {"config": model.config.as_dict(), "params": asdict(p), "identity": identity,
                "model": model.state_dict(), "optimizer": optimizer.state_dict() if with_optimizer else None,
                "scaler": scaler.state_dict() if (scaler is not None and with_optimizer) else None,
                "step": step, "epoch": step // per_epoch, "history": history, "seconds": seconds,
                "epoch_sums": sums, "text_encoder": describe_text_encoder(p.text_encoder)}

    progress = None
    if p.progress:
        from tqdm import tqdm

        progress = tqdm(total=limit, initial=step, desc="train", unit="step", dynamic_ncols=True)
    step_losses: dict[int, float] = {}
    model.train()
    started = time.monotonic()
    while step < limit:
        epoch, first = divmod(step, per_epoch)
        dataset.epoch = epoch
        loader = DataLoader(dataset, batch_sampler=EpochBatches(len(dataset), p.batch_size, p.seed, epoch, first),
                            num_workers=p.num_workers, collate_fn=collate, pin_memory=device.startswith("cuda"))
        for batch in loader:
            factor = set_learning_rates(optimizer, step, total_steps, p.warmup)
            torch.manual_seed(p.seed * 1_000_003 + step)
            texts = [clips.clips[i].text for i in batch["index"].tolist()]
            ids, mask = model.text.tokenize(texts)
            aug_ids = aug_mask = None
            if p.text_augment == "random_swap":
                aug = [random_swap(t, p.swap_alpha, np.random.default_rng([p.seed, step, j])) for j, t in enumerate(texts)]
                aug_ids, aug_mask = (x.to(device) for x in model.text.tokenize(aug))
            with autocast_for(device, p.amp):
                video = model.encode_video(batch["keypoints"].to(device), batch["joint_mask"].to(device),
                                           batch["rgb"].to(device), batch["step_mask"].to(device))
                words = model.encode_text(ids.to(device), mask.to(device))
                words_aug = model.encode_text(aug_ids, aug_mask) if aug_ids is not None else None
                loss, parts = model.loss(video, words, mask.to(device), words_aug, aug_mask)
            optimizer_step(model, optimizer, loss, scaler, p.grad_clip)
            value = float(loss.detach())
            if not np.isfinite(value):
                raise FloatingPointError(f"loss is {value} at step {step}: lower the learning rates or turn amp off")
            step_losses[step] = value
            sums["loss"] += value
            for name in ("fused", "pose", "rgb", "match"):
                sums[name] += float(parts[name].detach()) if name in parts else 0.0
            step += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{value:.3f}", epoch=epoch + 1)
            epoch_done = step % per_epoch == 0
            if epoch_done:
                done_steps = per_epoch
                record: dict[str, Any] = {"epoch": epoch + 1, "step": step,
                                          **{k: v / done_steps for k, v in sums.items()},
                                          "lr_factor": factor, "logit_scale": float(model.logit_scale.detach().exp()),
                                          "seconds": seconds + time.monotonic() - started}
                if val_dataset is not None and (epoch + 1) % p.eval_every == 0:
                    sims = similarities(model, val_clips, val_dataset, device, p.eval_batch_size, p.num_workers, p.amp)
                    fused = metrics_record(sims, "pessimistic", p.val_split)
                    record.update({f"{d}_{m}": fused[d][m] for d in ("t2v", "v2t") for m in fused[d]})
                history.append(record)
                sums = {k: 0.0 for k in LOSS_PARTS}
            if epoch_done or step >= limit or (p.checkpoint_every and step % p.checkpoint_every == 0):
                seconds_now = seconds + time.monotonic() - started
                seconds, started = seconds_now, time.monotonic()
                save_checkpoint(last_path, payload(with_optimizer=True))
            if step >= limit:
                break
    if progress is not None:
        progress.close()
    seconds += time.monotonic() - started
    save_checkpoint(out / MODEL_FILE, payload(with_optimizer=False))
    summary = {"step": step, "total_steps": total_steps, "epochs": len(history), "seconds": round(seconds, 1),
               "clips": len(dataset), "final": history[-1] if history else {}}
    _write_reports(out, history, summary)
    return TrainResult(out, step, total_steps, len(history), seconds, clips.describe(), notes, history, step_losses,
                       resumed_from)
