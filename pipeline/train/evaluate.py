"""Text-video retrieval within one split: similarity matrices (fused, pose, rgb) and their metrics.

Every clip is encoded once (uniform temporal sampling), every sentence once (no augmentation); the
[clip, sentence] similarity of each stream is dual_mix * V2T + (1 - dual_mix) * T2V of the FILIP
similarities (the authors' evaluation), computed in blocks of clips against all sentences. Sentence i
belongs to clip i, so the true pairs are the diagonal. The fused stream's metrics are the headline.

Outputs of the evaluate stage (folder `evaluate.out`):
    metrics.json     {"split", "clips", "chance_R@1", "t2v": {R@1, R@5, R@10, MedR, MeanR}, "v2t": {...},
                      "streams": {"fused"|"pose"|"rgb": {"t2v": ..., "v2t": ...}}, "tie_rule", "checkpoint"}
    similarity.npz   fused, pose, rgb: float32 (N, N) [clip, sentence]; sample_ids, texts: unicode (N,)
                     (np.load(..., allow_pickle=False) reads it)
"""

from __future__ import annotations

import json
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from pipeline.models.seds.model import SEDS, STREAMS, VideoTokens
from pipeline.train.data import ClipDataset, ClipSet, collate
from pipeline.train.metrics import retrieval_metrics


def autocast_for(device: str, amp: str) -> Any:
    """The autocast context of a train/eval step: bf16 or fp16 on CUDA, nothing on CPU or with amp off."""
    if not device.startswith("cuda") or amp == "off":
        return nullcontext()
    dtype = torch.float16 if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()) else torch.bfloat16
    return torch.autocast("cuda", dtype=dtype)


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


def metrics_record(sims: Similarities, tie_rule: str, split: str) -> dict[str, Any]:
    """Metrics of every stream; `repeated_texts` counts clips whose sentence another clip of the split
    shares word for word (their text embeddings tie, which the tie rule then decides)."""
    streams = {s: retrieval_metrics(m, tie_rule) for s, m in sims.matrices.items()}
    n = len(sims.sample_ids)
    counts = Counter(sims.texts)
    return {"split": split, "clips": n, "chance_R@1": 100.0 / n, "tie_rule": tie_rule,
            "repeated_texts": sum(c for c in counts.values() if c > 1),
            "t2v": streams["fused"]["t2v"], "v2t": streams["fused"]["v2t"], "streams": streams}


def write_outputs(out: Path, sims: Similarities, record: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    np.savez_compressed(out / "similarity.npz", **sims.matrices,
                        sample_ids=np.array(sims.sample_ids, dtype=str), texts=np.array(sims.texts, dtype=str))


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
    from pipeline.store.layout import StoreError
    from pipeline.train.data import load_clips
    from pipeline.train.loop import resolve_device
    from pipeline.train.params import TrainParams

    e = params["evaluate"]
    runtime = params.runtime
    device = resolve_device(runtime.device)
    if device == "cpu":
        torch.set_num_threads(runtime.threads_per_worker)
    model, ck = load_trained(Path(e.checkpoint), device)
    t: TrainParams = build_section(TrainParams, ck["params"], f"train (saved in {e.checkpoint})")
    clips = load_clips(Path(runtime.views), Path(runtime.store), t.pose_view, t.rgb_views, e.split, params)
    trained = {k: tuple(v) for k, v in model.config.spans.items()}
    if clips.spans != trained:
        raise StoreError(f"the keypoint columns of {t.pose_view} ({clips.spans}) are not those {e.checkpoint} was "
                         f"trained on ({trained}): the select params changed since training; retrain")
    alpha = t.rgb_mix_alpha if len(t.rgb_views) == 2 else 0.0
    dataset = ClipDataset(clips, t.steps, False, t.seed, t.pose_channels == "xy_score", alpha)
    sims = similarities(model, clips, dataset, device, e.batch_size, e.num_workers, t.amp)
    record = metrics_record(sims, e.tie_rule, e.split)
    record.update({"checkpoint": str(e.checkpoint), "trained_steps": ck["step"], "clips_note": clips.describe(),
                   "text_encoder": ck["text_encoder"]})
    write_outputs(Path(e.out), sims, record)
    return record
