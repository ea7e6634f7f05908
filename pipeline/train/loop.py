"""The trainer: one flat loop (in the spirit of nanoGPT's train.py), resumable step for step.

It trains as the authors' main_task_retrieval.py does (train_epoch, prep_optimizer, main): an epoch
visits every distinct sentence once with one of its clips (`sampling`), a sentence fed to T2I is
augmented with probability augment_p, BertAdam with the warmup-cosine schedule over all steps, the
global gradient clip, the logit scale clamped after each step; the selection split is evaluated
after every eval_every epochs and `select` decides which weights become model.pt (the authors keep
the best test epoch; `best_test` does that and says so in every report).

What makes a resumed run take exactly the steps an uninterrupted one would:
- epoch e's order and clip choice per sentence are seeded by (seed, e); a resumed epoch skips the
  batches done; the augmentation of batch position j at step s by (seed, s, j); dropout by
  torch.manual_seed(seed, s) before each step;
- model, optimiser (BertAdam keeps each parameter's step), AMP scaler, the partial epoch's loss sums,
  the history and the best selection score travel in the checkpoint.
A checkpoint is resumed only when its run identity equals the current one: every train param except
output/worker knobs (params.NON_IDENTITY), the evaluate params selection reads, TRAINER_VERSION, the
content hashes of the CLIP and SignBERT files, and a hash of the training clips' item keys.

Outputs under `train.out`: model.pt (the selected weights + resolved params + the fingerprints of the
store folders it read: the one copy of the weights evaluate reads, written again whenever the selection
improves, so no other copy is kept),
checkpoints/last.pt (the one resume state: weights, optimiser and progress; not cached by DVC),
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
from pipeline.models.checkpoints import RANDOM, resolve_checkpoint
from pipeline.models.device import resolve_device
from pipeline.models.precision import resolve_precision
from pipeline.models.seds.model import SEDS, SEDSConfig
from pipeline.models.seds.tokenizer import ClipTokenizer, text_mask
from pipeline.progress import Progress
from pipeline.store.layout import StoreError
from pipeline.train.checkpoint import load_checkpoint, save_checkpoint
from pipeline.train.data import ClipDataset, ClipRules, ClipSet, EpochBatches, collate, load_clips, random_swap
from pipeline.train.evaluate import autocast_for, metrics_record, similarities
from pipeline.train.groups import sentence_groups
from pipeline.train.optim import build_optimizer, optimizer_step, set_learning_rates
from pipeline.train.outputs import METRICS_FILE, MODEL_FILE, PLOTS_DIR, TRAIN_PLOT, VAL_PLOT
from pipeline.train.params import TrainParams

LOSS_PARTS = ("loss", "fused", "pose", "rgb", "match", "kl")
TRAINER_VERSION = 3  # 3: sentence-id groups, textaugment's swap, last-frame copies, pose_windows, hand_without_box


def model_config(p: TrainParams, spans: dict[str, tuple[int, int]]) -> SEDSConfig:
    return SEDSConfig(
        spans={k: list(v) for k, v in spans.items()},
        parts=tuple(p.parts),
        in_channels=3 if p.pose_channels == "xy_score" else 2,
        gcn_joint_channels=tuple(p.gcn_joint_channels),
        gcn_part_channels=p.gcn_part_channels,
        steps=p.steps,
        tower_width=p.tower_width,
        tower_layers=p.tower_layers,
        tower_heads=p.tower_heads,
        embed_dim=p.embed_dim,
        text_width=p.text_width,
        text_layers=p.text_layers,
        text_heads=p.text_heads,
        max_words=p.max_words,
        cgaf_keys=tuple(p.keys_per_layer()),
        cgaf_heads=p.cgaf_heads,
        cgaf_ff=p.cgaf_ff,
        cgaf_dropout=p.cgaf_dropout,
        tau=p.tau,
        logit_scale_init=p.logit_scale_init,
        logit_scale_max=p.logit_scale_max,
        dual_mix=p.dual_mix,
        match_weight=p.match_weight,
        filip_padding=p.filip_padding,
        loss_terms=p.loss_terms,
        variant=p.variant,
        rgb_pose_kl=p.rgb_pose_kl,
        kl_pose_weight=p.kl_pose_weight,
        kl_rgb_weight=p.kl_rgb_weight,
        kl_temperature=p.kl_temperature,
    )


@dataclass
class BuiltModel:
    model: SEDS
    weights: list[str]  # one line per part: where its initial weights came from
    artifacts: dict[str, str]  # checkpoint param -> content hash ("random" when none)


def build_model(p: TrainParams, spans: dict[str, tuple[int, int]]) -> BuiltModel:
    """The model, seeded and initialised as the authors' (CLIP, SignBERT); every weight source is named."""
    from pipeline.models.seds.clip_weights import init_from_clip, resolve_clip
    from pipeline.models.seds.signbert import init_hand_from_signbert

    torch.manual_seed(p.seed)
    model = SEDS(model_config(p, spans))
    weights, artifacts = [], {}
    clip = resolve_clip(p.clip_checkpoint)
    artifacts["clip_checkpoint"] = clip.content_hash
    if clip.is_random:
        weights.append(
            "text tower, interaction towers, logit scale: random (explicit, train.clip_checkpoint: random; "
            f"seed {p.seed})"
        )
    else:
        weights.append(init_from_clip(model, clip).description)
    if p.signbert_checkpoint:
        signbert = resolve_checkpoint(p.signbert_checkpoint, "train.signbert_checkpoint")
        artifacts["signbert_checkpoint"] = signbert.content_hash
        weights.append(init_hand_from_signbert(model.pose_encoder.gcns["hand"], signbert))
    else:
        artifacts["signbert_checkpoint"] = RANDOM
        weights.append(f"hand GCN: random (no train.signbert_checkpoint; seed {p.seed})")
    weights.append(
        f"body GCN, window fusion{', CGAF' if p.variant == 'seds' else ''}: random (seed {p.seed}), as in the release"
    )
    return BuiltModel(model, weights, artifacts)


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
    selection: dict[str, Any]
    step_losses: dict[int, float] = field(default_factory=dict)  # this run's steps only
    resumed_from: int | None = None

    def line(self) -> str:
        last = self.history[-1] if self.history else {}
        val = f", {self.selection['split']} T2V R@1 {last['t2v_R@1']:.1f}" if "t2v_R@1" in last else ""
        chosen = (
            f"; model.pt = epoch {self.selection['epoch']} ({self.selection['rule']}"
            f"{', SELECTED ON THE TEST SET' if self.selection.get('on_test') else ''})"
            if self.selection.get("epoch")
            else "; model.pt = last step"
        )
        resumed = f" (resumed at step {self.resumed_from})" if self.resumed_from else ""
        loss = f", loss {last['loss']:.3f}" if "loss" in last else ""
        return (
            f"train: step {self.step}/{self.total_steps}, {self.epochs_done} epoch(s) in {self.seconds:.0f} s"
            f"{resumed}{loss}{val}{chosen} -> {self.out}"
        )


def _write_tsv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns)]
    for row in rows:
        if all(c in row for c in columns):
            lines.append("\t".join(f"{row[c]:.6g}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    path.write_text("\n".join(lines) + "\n")


def _write_reports(out: Path, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    _write_tsv(
        out / PLOTS_DIR / TRAIN_PLOT, history, ["epoch", "step", *LOSS_PARTS, "lr_factor", "logit_scale", "seconds"]
    )
    val_cols = ["epoch", "step"] + [f"{d}_{m}" for d in ("t2v", "v2t") for m in ("R@1", "R@5", "R@10", "MedR", "MeanR")]
    _write_tsv(out / PLOTS_DIR / VAL_PLOT, [h for h in history if "t2v_R@1" in h], val_cols)
    (out / METRICS_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


def read_inputs(p: TrainParams, clips: ClipSet) -> list[dict[str, str]]:
    """The store folders training read: {entry, stage, fingerprint} for train.pose_view, then each
    train.rgb_views entry. report.md names each input's weights from the run records at that fingerprint:
    an rgb feature set (`set:NAME`) has no view that could say which fingerprint it was read at."""
    readers = [(p.pose_view, clips.pose_reader), *zip(p.rgb_views, clips.rgb_readers)]
    return [
        {"entry": entry, "stage": reader.stage_dir.stage, "fingerprint": reader.stage_dir.fingerprint}
        for entry, reader in readers
    ]


def _selection_split(p: TrainParams, params: Params) -> str | None:
    if p.select == "last" or not p.eval_every:
        return None
    return p.val_split if p.select == "val" else params["evaluate"].split


def _augmented(texts: list[str], p: TrainParams, step: int) -> list[str]:
    """The T2I sentences of a batch: each swapped with probability augment_p (the authors' loader)."""
    out = []
    for j, text in enumerate(texts):
        rng = np.random.default_rng([p.seed, step, j])
        augment = p.text_augment == "random_swap" and rng.random() < p.augment_p
        out.append(random_swap(text, p.swaps, rng) if augment else text)
    return out


def train(params: Params) -> TrainResult:
    p: TrainParams = params["train"]
    e = params["evaluate"]
    runtime = params.runtime
    device = resolve_device(runtime.device)
    if device == "cpu":
        torch.set_num_threads(p.threads or runtime.threads_per_worker)
    out = Path(p.out)
    manifests, store = Path(runtime.manifests), Path(runtime.store)
    rules = ClipRules.of(p, params)
    clips = load_clips(manifests, store, p.pose_view, p.rgb_views, p.split, params, rules)
    select_split = _selection_split(p, params)
    select_clips: ClipSet | None = None
    if select_split:
        try:
            select_clips = load_clips(manifests, store, p.pose_view, p.rgb_views, select_split, params, rules)
        except StoreError as err:
            raise StoreError(
                f"{err} (train.select: {p.select} evaluates split {select_split!r}; "
                "train.select: last needs no selection split)"
            ) from err
    built = build_model(p, clips.spans)
    model = built.model.to(device)
    alpha = p.rgb_mix_alpha if len(p.rgb_views) == 2 else 0.0
    with_scores = p.pose_channels == "xy_score"
    dataset = ClipDataset(clips, p.steps, with_scores, alpha, p.preload)
    select_dataset = ClipDataset(select_clips, p.steps, with_scores, alpha, p.preload) if select_clips else None
    texts = [c.text for c in clips.clips]
    sentences = sentence_groups(texts, [c.sentence_id for c in clips.clips], p.group_by)
    groups = sentences.members if p.sampling == "sentence" else [[i] for i in range(len(texts))]
    per_epoch = EpochBatches.count(len(groups), p.batch_size)
    if per_epoch == 0:
        raise StoreError(f"split {p.split!r} has {len(groups)} usable {p.sampling}(s): a contrastive step needs two")
    total_steps = per_epoch * p.epochs
    limit = min(total_steps, p.max_steps or total_steps)
    optimizer = build_optimizer(model, p, total_steps)
    scaler = torch.amp.GradScaler("cuda") if resolve_precision(device, p.amp) == "fp16" else None
    tokenizer = ClipTokenizer(p.max_words)
    notes = list(built.weights)
    inputs = read_inputs(p, clips)

    step, history, seconds, sums, resumed_from = 0, [], 0.0, {k: 0.0 for k in LOSS_PARTS}, None
    selection: dict[str, Any] = {
        "rule": p.select,
        "split": select_split,
        "on_test": p.select == "best_test",
        "metric": f"fused T2V R@1, {e.protocol} protocol" if select_split else None,
    }
    last_path, model_path = out / "checkpoints" / "last.pt", out / MODEL_FILE
    identity = {
        **p.identity(),
        "trainer_version": TRAINER_VERSION,
        "artifacts": built.artifacts,
        "selection": [select_split, e.protocol, e.tie_rule, e.group_by],
        "data": hash_json([[c.pose_key, *c.rgb_keys] for c in clips.clips] + [sentences.group.tolist()]),
    }
    if p.resume and last_path.is_file():
        ck = load_checkpoint(last_path)
        if json.dumps(ck["identity"], sort_keys=True) == json.dumps(identity, sort_keys=True):
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            if scaler is not None and ck.get("scaler"):
                scaler.load_state_dict(ck["scaler"])
            step, history, seconds, sums = ck["step"], ck["history"], ck["seconds"], ck["epoch_sums"]
            selection = ck["selection"]
            resumed_from = step
            notes.append(f"resumed from {last_path} at step {step}")
        else:
            changed = sorted(k for k in identity if ck["identity"].get(k) != identity[k])
            notes.append(f"not resuming {last_path}: run identity changed ({', '.join(changed)}); training afresh")

    def payload(with_optimizer: bool) -> dict[str, Any]:
        return {
            "config": model.config.as_dict(),
            "params": asdict(p),
            "identity": identity,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict() if with_optimizer else None,
            "scaler": scaler.state_dict() if (scaler is not None and with_optimizer) else None,
            "step": step,
            "epoch": step // per_epoch,
            "history": history,
            "seconds": seconds,
            "epoch_sums": sums,
            "selection": selection,
            "weights": built.weights,
            "inputs": inputs,
        }

    progress = Progress(
        limit,
        "train",
        unit="step",
        bar=p.progress,
        initial=step,
        counts_failures=False,
        every_s=params.runtime.progress_every_s,
    )
    step_losses: dict[int, float] = {}
    model.train()
    started = time.monotonic()
    while step < limit:
        epoch, first = divmod(step, per_epoch)
        loader = DataLoader(
            dataset,
            batch_sampler=EpochBatches(groups, p.batch_size, p.seed, epoch, first),
            num_workers=p.num_workers,
            collate_fn=collate,
            pin_memory=device.startswith("cuda"),
        )
        for batch in loader:
            factor = set_learning_rates(optimizer, step, total_steps, p.warmup)
            torch.manual_seed(p.seed * 1_000_003 + step)
            batch_texts = [texts[i] for i in batch["index"].tolist()]
            ids, aug_ids = tokenizer(batch_texts).to(device), tokenizer(_augmented(batch_texts, p, step)).to(device)
            with autocast_for(device, p.amp):
                video = model.encode_video(
                    batch["keypoints"].to(device), batch["windows"].to(device), batch["rgb"].to(device)
                )
                loss, parts = model.loss(
                    video, model.encode_text(ids), text_mask(ids), model.encode_text(aug_ids), text_mask(aug_ids)
                )
            optimizer_step(model, optimizer, loss, scaler, p.grad_clip)
            value = float(loss.detach())
            if not np.isfinite(value):
                raise FloatingPointError(f"loss is {value} at step {step}: lower the learning rates or turn amp off")
            step_losses[step] = value
            sums["loss"] += value
            for name in LOSS_PARTS[1:]:
                sums[name] += float(parts[name].detach()) if name in parts else 0.0
            step += 1
            progress.update(1, loss=f"{value:.3f}", epoch=epoch + 1)
            epoch_done = step % per_epoch == 0
            if epoch_done:
                record: dict[str, Any] = {
                    "epoch": epoch + 1,
                    "step": step,
                    **{k: v / per_epoch for k, v in sums.items()},
                    "lr_factor": factor,
                    "logit_scale": float(model.logit_scale.detach().exp()),
                    "seconds": seconds + time.monotonic() - started,
                }
                if select_dataset is not None and (epoch + 1) % p.eval_every == 0:
                    sims = similarities(
                        model, select_clips, select_dataset, device, p.eval_batch_size, p.num_workers, p.amp
                    )
                    scores = metrics_record(sims, e.protocol, e.tie_rule, select_split, model.headline, e.group_by)
                    record.update({f"{d}_{m}": scores[d][m] for d in ("t2v", "v2t") for m in scores[d]})
                    if record["t2v_R@1"] >= selection.get("value", -1.0):
                        selection.update(epoch=epoch + 1, step=step, value=record["t2v_R@1"])
                        save_checkpoint(model_path, payload(with_optimizer=False))
                history.append(record)
                sums = {k: 0.0 for k in LOSS_PARTS}
            if epoch_done or step >= limit or (p.checkpoint_every and step % p.checkpoint_every == 0):
                seconds, started = seconds + time.monotonic() - started, time.monotonic()
                save_checkpoint(last_path, payload(with_optimizer=True))
            if step >= limit:
                break
    progress.close()
    seconds += time.monotonic() - started
    if selection.get("epoch") and model_path.is_file():  # the selected epoch's weights, with the whole run's record
        chosen = load_checkpoint(model_path)
        chosen.update(selection=selection, history=history, seconds=seconds)
        save_checkpoint(model_path, {k: v for k, v in chosen.items() if k != "format"})
    else:
        save_checkpoint(model_path, payload(with_optimizer=False))
    summary = {
        "step": step,
        "total_steps": total_steps,
        "epochs": len(history),
        "seconds": round(seconds, 1),
        "clips": len(dataset),
        "sentences": len(sentences.heads),
        "grouping": sentences.by,
        "split_source": clips.source_note(),
        "selection": selection,
        "final": history[-1] if history else {},
    }
    _write_reports(out, history, summary)
    return TrainResult(
        out,
        step,
        total_steps,
        len(history),
        seconds,
        clips.describe(),
        notes,
        history,
        selection,
        step_losses,
        resumed_from,
    )
