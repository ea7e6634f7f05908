"""Text-video retrieval within one split: similarity matrices per stream and their metrics under both protocols.

Every clip is encoded once; every distinct sentence once (no augmentation). The [clip, sentence]
similarity of each stream is dual_mix x I2T + (1 - dual_mix) x T2I of the FILIP similarities (the
authors' evaluation, main_task_retrieval.py _run_on_single_gpu_new_mix). The saved matrix is square,
[clip, the sentence of clip j]: column j repeats for clips that share a sentence, so both protocols
(pipeline/train/metrics.py) read it. `evaluate.protocol` picks the headline; metrics.json holds both.

Outputs of the evaluate stage (folder `evaluate.out`):
    metrics.json     {"split", "split_source", "clips", "sentences", "group_by", "grouping", "chance_R@1",
                      "protocol", "t2v", "v2t" (headline stream, headline protocol), "protocols":
                      {"authors"|"per_clip": {stream: {"t2v", "v2t"}}}, "streams" (the headline protocol's),
                      "tie_rule", "checkpoint", "selection", "filip_padding", "seconds"}
    similarity.npz   one float32 (N, N) matrix per stream; sample_ids, texts, sentence_ids ('' where none):
                     unicode (N,)
    token_similarity.npz  the figure pairs' token x word cosines (`token_maps`), for the Figure 5 heatmaps
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
from pipeline.models.seds.model import SEDS, VideoTokens
from pipeline.models.seds.tokenizer import ClipTokenizer, text_mask
from pipeline.train.data import ClipDataset, ClipSet, collate
from pipeline.train.groups import sentence_groups
from pipeline.train.metrics import PROTOCOLS, protocol_metrics
from pipeline.train.outputs import METRICS_FILE, SIMILARITY_FILE, TOKEN_MAPS_FILE
from pipeline.video.sampling import linspace_choice


def autocast_for(device: str, amp: str) -> Any:
    """The autocast context of a train/eval step: bf16 or fp16 on CUDA, nothing on CPU or with amp off."""
    from pipeline.models.precision import autocast_dtype, resolve_precision

    dtype = autocast_dtype(resolve_precision(device, amp))
    return nullcontext() if dtype is None else torch.autocast("cuda", dtype=dtype)


@dataclass
class Similarities:
    matrices: dict[str, np.ndarray]  # stream -> (N, N) float32 [clip, sentence of clip j]
    sample_ids: list[str]
    texts: list[str]
    sentence_ids: list[str | None]  # the manifest's sentence_id of each clip (None: not given)


def encode_clips(
    model: SEDS, dataset: ClipDataset, device: str, batch_size: int, num_workers: int, amp: str
) -> VideoTokens:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=collate)
    parts = []
    with autocast_for(device, amp):
        for batch in loader:
            video = model.encode_video(
                batch["keypoints"].to(device), batch["windows"].to(device), batch["rgb"].to(device)
            )
            parts.append(video.normalised())
    return VideoTokens.cat(parts)


@torch.no_grad()
def similarities(
    model: SEDS,
    clips: ClipSet,
    dataset: ClipDataset,
    device: str,
    batch_size: int = 64,
    num_workers: int = 0,
    amp: str = "auto",
    block: int = 16,
) -> Similarities:
    was_training = model.training
    model.eval()
    texts = [c.text for c in clips.clips]
    distinct = sorted(set(texts))
    where = {text: i for i, text in enumerate(distinct)}
    column = torch.tensor([where[t] for t in texts])
    tokenizer = ClipTokenizer(model.config.max_words)
    ids = tokenizer(distinct).to(device)
    with autocast_for(device, amp):
        words = torch.cat([model.encode_text(ids[i : i + batch_size]).float() for i in range(0, len(ids), batch_size)])
    valid = text_mask(ids)
    video = encode_clips(model, dataset, device, batch_size, num_workers, amp)
    rows: dict[str, list[torch.Tensor]] = {s: [] for s in model.streams}
    for start in range(0, len(texts), block):
        for stream, sim in model.retrieval_similarity(video.select(slice(start, start + block)), words, valid).items():
            rows[stream].append(sim.float().cpu()[:, column])
    model.train(was_training)
    return Similarities(
        {s: torch.cat(rows[s]).numpy().astype(np.float32) for s in model.streams},
        [c.sample_id for c in clips.clips],
        texts,
        [c.sentence_id for c in clips.clips],
    )


def figure_indices(sample_ids: list[str], count: int, chosen: list[str] | None) -> list[int]:
    """Positions of the figure queries: the `chosen` sample ids (evaluate.figure_samples), else `count`
    evenly spaced ones, a choice made before looking at any score so figures are not cherry-picked."""
    if chosen is None:
        return [int(i) for i in linspace_choice(len(sample_ids), count)]
    at = {s: i for i, s in enumerate(sample_ids)}
    missing = [s for s in chosen if s not in at]
    if missing:
        from pipeline.config import ParamError

        raise ParamError(
            f"evaluate.figure_samples: {missing} are not clips of the evaluated split "
            f"(some that are: {', '.join(sample_ids[:3])})"
        )
    return [at[s] for s in chosen]


@torch.no_grad()
def token_maps(
    model: SEDS, clips: ClipSet, dataset: ClipDataset, indices: list[int], device: str, amp: str = "auto"
) -> dict[str, np.ndarray]:
    """Each chosen clip against its own sentence: the cosine of every (video token, word) pair of the
    pose and rgb streams, the similarities FILIP aggregates (pipeline/models/seds/losses.py), as arrays
    for token_similarity.npz: pose, rgb (P, W + 1, L) float32 (rgb zeros for a pose-only model),
    step_mask (P, W + 1), word_mask (P, L) bool, tokens (P, L) ('' where padded), sample_ids, texts (P,)."""
    was_training = model.training
    model.eval()
    texts = [clips.clips[i].text for i in indices]
    batch = collate([dataset[i] for i in indices])
    tokenizer = ClipTokenizer(model.config.max_words)
    ids = tokenizer(texts)
    with autocast_for(device, amp):
        video = model.encode_video(
            batch["keypoints"].to(device), batch["windows"].to(device), batch["rgb"].to(device)
        ).normalised()
        words = normalise(model.encode_text(ids.to(device)))
    model.train(was_training)
    maps = {
        stream: torch.einsum("bid,bjd->bij", video.stream(stream), words).float().cpu().numpy()
        for stream in ("pose", "rgb")
        if stream in video.streams
    }
    maps.setdefault("rgb", np.zeros_like(maps["pose"]))
    return maps | {
        "step_mask": video.valid.cpu().numpy(),
        "word_mask": text_mask(ids).numpy(),
        "tokens": np.array(tokenizer.tokens(ids), dtype=str),
        "sample_ids": np.array([clips.clips[i].sample_id for i in indices], dtype=str),
        "texts": np.array(texts, dtype=str),
    }


def metrics_record(
    sims: Similarities, protocol: str, tie_rule: str, split: str, headline: str, group_by: str
) -> dict[str, Any]:
    """Metrics of every stream under both protocols; the headline (`protocol`, stream `headline`) on top.
    `sentences` counts the sentence groups (`group_by`, pipeline/train/groups.py; `grouping` says how they
    were formed), `distinct_texts` the different texts, `repeated_texts` the clips whose text another clip
    of the split shares word for word."""
    groups = sentence_groups(sims.texts, sims.sentence_ids, group_by)
    protocols = {
        name: {s: protocol_metrics(m, groups, name, tie_rule) for s, m in sims.matrices.items()} for name in PROTOCOLS
    }
    n = len(sims.sample_ids)
    counts = Counter(t.strip() for t in sims.texts)
    sentences = len(groups.heads)
    top = protocols[protocol][headline]
    return {
        "split": split,
        "clips": n,
        "sentences": sentences,
        "group_by": group_by,
        "grouping": groups.by,
        "distinct_texts": len(counts),
        "chance_R@1": 100.0 / (sentences if protocol == "authors" else n),
        "tie_rule": tie_rule,
        "protocol": protocol,
        "headline": headline,
        "repeated_texts": sum(c for c in counts.values() if c > 1),
        "t2v": top["t2v"],
        "v2t": top["v2t"],
        "streams": protocols[protocol],
        "protocols": protocols,
    }


def no_token_maps() -> dict[str, np.ndarray]:
    """token_similarity.npz's arrays for no figure query (the file stays, as DVC expects its outputs)."""
    return {
        "pose": np.zeros((0, 0, 0), np.float32),
        "rgb": np.zeros((0, 0, 0), np.float32),
        "step_mask": np.zeros((0, 0), bool),
        "word_mask": np.zeros((0, 0), bool),
        **{k: np.zeros((0,), dtype=str) for k in ("sample_ids", "texts")},
        "tokens": np.zeros((0, 0), dtype=str),
    }


def write_matrices(out: Path, sims: Similarities, maps: dict[str, np.ndarray]) -> None:
    """similarity.npz and token_similarity.npz."""
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / SIMILARITY_FILE,
        **sims.matrices,
        sample_ids=np.array(sims.sample_ids, dtype=str),
        texts=np.array(sims.texts, dtype=str),
        sentence_ids=np.array([s or "" for s in sims.sentence_ids], dtype=str),
    )
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
    """The evaluate stage's computing: retrieval on `evaluate.split` with the checkpoint's model and data
    settings, into metrics.json, similarity.npz and token_similarity.npz under evaluate.out. The figures
    and report.md are drawn from those files by pipeline/report (commands/evaluate.py calls it), so the
    trainer, which evaluates on the way, never depends on the report code."""
    from pipeline.config import build_section
    from pipeline.models.device import resolve_device
    from pipeline.store.layout import StoreError
    from pipeline.train.data import ClipRules, load_clips
    from pipeline.train.params import TrainParams

    started = time.perf_counter()
    e = params["evaluate"]
    runtime = params.runtime
    device = resolve_device(runtime.device)
    if device == "cpu":
        torch.set_num_threads(runtime.threads_per_worker)
    model, ck = load_trained(Path(e.checkpoint), device)
    t: TrainParams = build_section(TrainParams, ck["params"], f"train (saved in {e.checkpoint})")
    clips = load_clips(
        Path(runtime.manifests), Path(runtime.store), t.pose_view, t.rgb_views, e.split, params, ClipRules.of(t, params)
    )
    trained = {k: tuple(v) for k, v in model.config.spans.items()}
    if any(clips.spans.get(k) != v for k, v in trained.items()):
        raise StoreError(
            f"the keypoint columns of {t.pose_view} ({clips.spans}) are not those {e.checkpoint} was "
            f"trained on ({trained}): the select params changed since training; retrain"
        )
    alpha = t.rgb_mix_alpha if len(t.rgb_views) == 2 else 0.0
    dataset = ClipDataset(clips, t.steps, t.pose_channels == "xy_score", alpha)
    chosen = figure_indices([c.sample_id for c in clips.clips], e.figure_queries, e.figure_samples)
    sims = similarities(model, clips, dataset, device, e.batch_size, e.num_workers, t.amp)
    maps = token_maps(model, clips, dataset, chosen, device, t.amp) if chosen else no_token_maps()
    out = Path(e.out)
    write_matrices(out, sims, maps)
    record = metrics_record(sims, e.protocol, e.tie_rule, e.split, model.headline, e.group_by)
    record.update(
        {
            "checkpoint": str(e.checkpoint),
            "trained_steps": ck["step"],
            "clips_note": clips.describe(),
            "split_source": clips.source_note(),
            "selection": ck.get("selection", {}),
            "weights": ck.get("weights", []),
            "filip_padding": model.config.filip_padding,
            "seconds": round(time.perf_counter() - started, 1),
        }
    )
    (out / METRICS_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
