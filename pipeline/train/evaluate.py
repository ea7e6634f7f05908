"""Text-video retrieval within one split: similarity matrices (fused, pose, rgb) and their metrics.

Every clip is encoded once (uniform temporal sampling), every sentence once (no augmentation); the
[clip, sentence] similarity of each stream is dual_mix * V2T + (1 - dual_mix) * T2V of the FILIP
similarities (the authors' evaluation), computed in blocks of clips against all sentences. Sentence i
belongs to clip i, so the true pairs are the diagonal. The fused stream's metrics are the headline.

Outputs of the evaluate stage (folder `evaluate.out`):
    metrics.json     {"split", "clips", "chance_R@1", "t2v": {R@1, R@5, R@10, MedR, MeanR}, "v2t": {...},
                      "streams": {"fused"|"pose"|"rgb": {"t2v": ..., "v2t": ...}}, "tie_rule", "checkpoint",
                      "seconds" (this stage's, figures included)}
    similarity.npz   fused, pose, rgb: float32 (N, N) [clip, sentence]; sample_ids, texts: unicode (N,)
                     (np.load(..., allow_pickle=False) reads it)
    token_similarity.npz  the figure pairs' step x word cosines (`token_maps`), for the Figure 5 heatmaps
    figures/, report.md   written from the files above by pipeline/report (also `seds report figures|run`)
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.models.seds.losses import normalise
from pipeline.models.seds.model import SEDS, STREAMS, VideoTokens
from pipeline.train.data import ClipDataset, ClipSet, collate
from pipeline.train.metrics import retrieval_metrics
from pipeline.train.outputs import METRICS_FILE, SIMILARITY_FILE, TOKEN_MAPS_FILE
from pipeline.video.sampling import linspace_choice


def autocast_for(device: str, amp: str) -> Any:
    """The autocast context of a train/eval step: bf16 or fp16 on CUDA, nothing on CPU or with amp off."""
    from pipeline.models.precision import autocast_dtype, resolve_precision

    dtype = autocast_dtype(resolve_precision(device, amp))
    return nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


@dataclass
class Similarities:
    matrices: dict[str, np.ndarray]   # stream -> (N, N) float32 [clip, sentence]
    sample_ids: list[str]
    texts: list[str]


@torch.no_grad()
def similarities(model: SEDS, clips: ClipSet, dataset: ClipDataset, device: str, batch_size: int = 64,
                 num_workers: int = 0, amp: str = "auto", block: int = 16) -> Similarities:
    was_training = model.training
    model.eval()
    texts = [c.text for c in clips.clips]
    videos: list[VideoTokens] = []
    words, word_masks = [], []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)
    with autocast_for(device, amp):
        for batch in loader:
            v = model.encode_video(batch["keypoints"].to(device), batch["joint_mask"].to(device),
                                   batch["rgb"].to(device), batch["step_mask"].to(device))
            videos.append(v.normalised())
            ids, mask = model.text.tokenize([texts[i] for i in batch["index"].tolist()])
            words.append(model.encode_text(ids.to(device), mask.to(device)).float())
            word_masks.append(mask.to(device))
    video = VideoTokens(*(torch.cat([getattr(v, s) for v in videos]) for s in ("fused", "pose", "rgb", "step_mask")))
    text, text_mask = torch.cat(words), torch.cat(word_masks)
    rows: dict[str, list[torch.Tensor]] = {s: [] for s in STREAMS}
    for start in range(0, len(texts), block):
        part = VideoTokens(*(getattr(video, s)[start:start + block] for s in ("fused", "pose", "rgb", "step_mask")))
        for stream, sim in model.retrieval_similarity(part, text, text_mask).items():
            rows[stream].append(sim.float().cpu())
    model.train(was_training)
    return Similarities({s: torch.cat(rows[s]).numpy().astype(np.float32) for s in STREAMS},
                        [c.sample_id for c in clips.clips], texts)


def figure_indices(sample_ids: list[str], count: int, chosen: list[str] | None) -> list[int]:
    """Positions of the figure queries: the `chosen` sample ids (evaluate.figure_samples), else `count`
    evenly spaced ones, a choice made before looking at any score so figures are not cherry-picked."""
    if chosen is None:
        return [int(i) for i in linspace_choice(len(sample_ids), count)]
    at = {s: i for i, s in enumerate(sample_ids)}
    missing = [s for s in chosen if s not in at]
    if missing:
        from pipeline.config import ParamError

        raise ParamError(f"evaluate.figure_samples: {missing} are not clips of the evaluated split "
                         f"(some that are: {', '.join(sample_ids[:3])})")
    return [at[s] for s in chosen]


@torch.no_grad()
def token_maps(model: SEDS, clips: ClipSet, dataset: ClipDataset, indices: list[int], device: str,
               amp: str = "auto") -> dict[str, np.ndarray]:
    """Each chosen clip against its own sentence: the cosine of every (step, word) token pair of the
    pose and rgb streams, the similarities FILIP aggregates (pipeline/models/seds/losses.py), as arrays
    for token_similarity.npz: pose, rgb (P, T, L) float32, step_mask (P, T), word_mask (P, L) bool,
    tokens (P, L) (the tokenizer's own, '' where padded), sample_ids, texts (P,)."""
    was_training = model.training
    model.eval()
    texts = [clips.clips[i].text for i in indices]
    batch = collate([dataset[i] for i in indices])
    ids, mask = model.text.tokenize(texts)
    with autocast_for(device, amp):
        video = model.encode_video(batch["keypoints"].to(device), batch["joint_mask"].to(device),
                                   batch["rgb"].to(device), batch["step_mask"].to(device)).normalised()
        words = normalise(model.encode_text(ids.to(device), mask.to(device)))
    model.train(was_training)
    tokens = [[t if m else "" for t, m in zip(model.text.tokenizer.convert_ids_to_tokens(row.tolist()), keep)]
              for row, keep in zip(ids, mask.tolist())]
    return {stream: torch.einsum("bid,bjd->bij", video.stream(stream), words).float().cpu().numpy()
            for stream in ("pose", "rgb")} | {
        "step_mask": video.step_mask.cpu().numpy(), "word_mask": mask.numpy(), "tokens": np.array(tokens, dtype=str),
        "sample_ids": np.array([clips.clips[i].sample_id for i in indices], dtype=str),
        "texts": np.array(texts, dtype=str)}


def metrics_record(sims: Similarities, tie_rule: str, split: str) -> dict[str, Any]:
    """Metrics of every stream; `repeated_texts` counts clips whose sentence another clip of the split
    shares word for word (their text embeddings tie, which the tie rule then decides)."""
    streams = {s: retrieval_metrics(m, tie_rule) for s, m in sims.matrices.items()}
    n = len(sims.sample_ids)
    counts = Counter(sims.texts)
    return {"split": split, "clips": n, "chance_R@1": 100.0 / n, "tie_rule": tie_rule,
            "repeated_texts": sum(c for c in counts.values() if c > 1),
            "t2v": streams["fused"]["t2v"], "v2t": streams["fused"]["v2t"], "streams": streams}


def no_token_maps() -> dict[str, np.ndarray]:
    """token_similarity.npz's arrays for no figure query (the file stays, as DVC expects its outputs)."""
    return {"pose": np.zeros((0, 0, 0), np.float32), "rgb": np.zeros((0, 0, 0), np.float32),
            "step_mask": np.zeros((0, 0), bool), "word_mask": np.zeros((0, 0), bool),
            **{k: np.zeros((0,), dtype=str) for k in ("sample_ids", "texts")}, "tokens": np.zeros((0, 0), dtype=str)}


def write_matrices(out: Path, sims: Similarities, maps: dict[str, np.ndarray]) -> None:
    """similarity.npz and token_similarity.npz."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / SIMILARITY_FILE, **sims.matrices,
                        sample_ids=np.array(sims.sample_ids, dtype=str), texts=np.array(sims.texts, dtype=str))
    np.savez_compressed(out / TOKEN_MAPS_FILE, **maps)


def load_trained(path: Path, device: str) -> tuple[SEDS, dict[str, Any]]:
    """A trained model from a train checkpoint (weights_only loading), in eval mode, and the checkpoint."""
    from pipeline.models.seds.model import SEDSConfig
    from pipeline.train.checkpoint import load_checkpoint

    ck = load_checkpoint(path)
    model = SEDS(SEDSConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["model"], strict=True)
    return model.to(device).eval(), ck


def run_evaluate(params: Any) -> dict[str, Any]:
    """The evaluate stage: retrieval on `evaluate.split` with the checkpoint's model and data settings."""
    from pipeline.config import build_section
    from pipeline.report.figures import write_figures
    from pipeline.report.run_report import write_run_report
    from pipeline.store.layout import StoreError
    from pipeline.train.data import load_clips
    from pipeline.train.loop import resolve_device
    from pipeline.train.params import TrainParams

    started = time.perf_counter()
    e = params["evaluate"]
    runtime = params.runtime
    device = resolve_device(runtime.device)
    if device == "cpu":
        torch.set_num_threads(runtime.threads_per_worker)
    model, ck = load_trained(Path(e.checkpoint), device)
    t: TrainParams = build_section(TrainParams, ck["params"], f"train (saved in {e.checkpoint})")
    clips = load_clips(Path(runtime.manifests), Path(runtime.store), t.pose_view, t.rgb_views, e.split, params)
    trained = {k: tuple(v) for k, v in model.config.spans.items()}
    if clips.spans != trained:
        raise StoreError(f"the keypoint columns of {t.pose_view} ({clips.spans}) are not those {e.checkpoint} was "
                         f"trained on ({trained}): the select params changed since training; retrain")
    alpha = t.rgb_mix_alpha if len(t.rgb_views) == 2 else 0.0
    dataset = ClipDataset(clips, t.steps, False, t.seed, t.pose_channels == "xy_score", alpha)
    chosen = figure_indices([c.sample_id for c in clips.clips], e.figure_queries, e.figure_samples)
    sims = similarities(model, clips, dataset, device, e.batch_size, e.num_workers, t.amp)
    maps = token_maps(model, clips, dataset, chosen, device, t.amp) if chosen else no_token_maps()
    out = Path(e.out)
    write_matrices(out, sims, maps)
    write_figures(out, params)
    record = metrics_record(sims, e.tie_rule, e.split)
    record.update({"checkpoint": str(e.checkpoint), "trained_steps": ck["step"], "clips_note": clips.describe(),
                   "text_encoder": ck["text_encoder"], "seconds": round(time.perf_counter() - started, 1)})
    (out / METRICS_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    write_run_report(params, out, ck)
    return record
