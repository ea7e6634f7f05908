"""Helpers for the train/evaluate tests: a tiny, learnable store: select and rgb items written with the real
ShardWriter, and their views written the way pipeline/runner/view.py writes them (fingerprints in the
Parquet metadata), so the trainer reads exactly what the select and rgb stages will give it.

Synthetic but learnable: a vocabulary of glosses, each with its own hand motion (a per-gloss pose
and oscillation of the 49 SEDS keypoints) and its own RGB feature direction; a sentence is a gloss
sequence, its text the gloss words; every sentence is rendered once per split with different speed,
placement and noise (a different "signer"), so retrieval in the test split means recognising the
glosses, not remembering a clip. About 5% of joints are missing: mask 0 and coordinates (0, 0), as the
select stage's `seds` normalisation writes them (the model sees them as the authors' loader gives them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from pipeline.fingerprint import StageFingerprint, item_key
from pipeline.keypoints.layout import selection
from pipeline.runner.plan import FINGERPRINTS_META
from pipeline.store.layout import StageDir
from pipeline.store.records import Item
from pipeline.store.writer import ShardWriter
from tests_support import TINY_MODEL

WORDS = ["hello", "you", "name", "what", "book", "eat", "friend", "good", "happy", "house"]
RGB_DIM = 1024
WINDOW = 4


def _write_view(views: Path, stage: str, fingerprint: str, rows: list[dict]) -> None:
    table = pa.table({k: [r[k] for r in rows] for k in rows[0]})
    meta = {FINGERPRINTS_META: json.dumps({stage: fingerprint}).encode()}
    views.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(meta), views / f"{stage}.parquet")


def _stage_dir(store: Path, stage: str) -> StageDir:
    fp = StageFingerprint(stage, 1, {"test": "synthetic"}, {"checkpoint": "random"})
    stage_dir = StageDir(store, stage, fp.digest)
    stage_dir.create(fp)
    return stage_dir


def build_store(
    root: Path,
    sentences: int = 12,
    splits: tuple[str, ...] = ("train", "train", "val", "test"),
    seed: int = 0,
    rgb_stages: tuple[str, ...] = ("rgb",),
    fail: tuple[str, ...] = (),
    rgb_signal: float = 1.0,
    groups: tuple[str, ...] = ("body", "hand"),
) -> dict:
    """Write manifests/select.parquet, manifests/<rgb stage>.parquet and their store items under `root`.
    `fail` lists sample ids recorded as failed in the select view; `rgb_signal` scales the glosses'
    RGB directions (0: RGB features are pure noise, so only the pose stream can learn); `groups` are
    the select stage's part groups the items hold (the SEDS 49 by default; face and mouth add 48 and 20)."""
    chosen = selection(list(groups))
    points = chosen.size
    rng = np.random.default_rng(seed)
    glosses = {
        w: {
            "pose": rng.normal(0, 1, (points, 2)),
            "amp": rng.normal(0, 0.5, (points, 2)),
            "freq": rng.uniform(1, 3),
            "rgb": rng.normal(0, 1, RGB_DIM),
        }
        for w in WORDS
    }
    seen, sentence_words = set(), []
    while len(sentence_words) < sentences:
        words = tuple(rng.choice(WORDS, size=int(rng.integers(2, 4)), replace=False))
        if words not in seen:
            seen.add(words)
            sentence_words.append(words)
    store, views = root / "cache", root / "manifests"
    select_dir = _stage_dir(store, "select")
    rgb_dirs = [_stage_dir(store, s) for s in rgb_stages]
    select_rows, rgb_rows = [], {s: [] for s in rgb_stages}
    with ShardWriter(select_dir, max_items=1000) as select_writer:
        writers = [ShardWriter(d, max_items=1000) for d in rgb_dirs]
        for s, words in enumerate(sentence_words):
            for r, split in enumerate(splits):
                sid = f"s{s:03d}_r{r}"
                speed = rng.uniform(0.7, 1.4)
                offset = rng.normal(0, 0.3, 2)
                frames_per_gloss = max(4, int(round(10 / speed)))
                kp, feats = [], []
                for w in words:
                    g = glosses[w]
                    t = np.arange(frames_per_gloss)[:, None, None] / frames_per_gloss
                    kp.append(g["pose"] + g["amp"] * np.sin(2 * np.pi * g["freq"] * t) + offset)
                    feats.append(np.repeat(g["rgb"][None], frames_per_gloss, 0))
                kp = np.concatenate(kp).astype(np.float32)
                kp += rng.normal(0, 0.05, kp.shape).astype(np.float32)
                n_frames = len(kp)
                mask = (rng.random((n_frames, points)) > 0.05).astype(np.uint8)
                kp[mask == 0] = 0.0
                frames = np.arange(n_frames, dtype=np.int64) * 2  # every other clip frame was kept
                select_item = Item(
                    f"sel-{sid}",
                    sid,
                    {"keypoints": kp, "scores": mask.astype(np.float32) * 0.9, "mask": mask, "frames": frames},
                    {"parts": list(chosen.parts)},
                )
                status = "failed" if sid in fail else "ok"
                if status == "ok":
                    select_writer.add(select_item)
                text = " ".join(words)
                select_rows.append(
                    {
                        "sample_id": sid,
                        "text": text.capitalize() + ".",
                        "split": split,
                        "content_hash": f"hash-{sid}",
                        "start_s": 0.0,
                        "end_s": n_frames / 12.5,
                        "select_key": f"sel-{sid}",
                        "select_status": status,
                        "select_reason": None if status == "ok" else "error",
                    }
                )
                starts = np.arange(0, 2 * n_frames - 2 * WINDOW + 1)
                windows = starts[:, None] + np.arange(WINDOW)[None]
                centre_frame = np.clip(np.round(windows.mean(1) / 2).astype(int), 0, n_frames - 1)
                base = rgb_signal * np.concatenate(feats)[centre_frame]
                for stage, writer, stage_dir in zip(rgb_stages, writers, rgb_dirs):
                    noise = rng.normal(0, 1.0, base.shape)
                    # Keyed as the runner keys items: content hash, clip bounds, stage fingerprint.
                    key = item_key(f"hash-{sid}", 0.0, n_frames / 12.5, stage_dir.fingerprint)
                    writer.add(
                        Item(
                            key,
                            sid,
                            {"features": (base + noise).astype(np.float16), "windows": windows.astype(np.int64)},
                            {"num_windows": len(windows)},
                        )
                    )
                    rgb_rows[stage].append(
                        {
                            "sample_id": sid,
                            "text": text,
                            "split": split,
                            f"{stage}_key": key,
                            f"{stage}_status": "ok",
                            f"{stage}_reason": None,
                        }
                    )
        for writer in writers:
            writer.close()
    _write_view(views, "select", select_dir.fingerprint, select_rows)
    for stage, d in zip(rgb_stages, rgb_dirs):
        _write_view(views, stage, d.fingerprint, rgb_rows[stage])
    return {"sentences": sentence_words, "splits": splits, "rgb_fingerprints": [d.fingerprint for d in rgb_dirs]}


# pose_windows rgb_aligned: the tiny store's pose keeps every other frame of the rgb windows' frames, so
# windows slid over the kept frames (the release's) would be fewer than the rgb windows and leave every clip out.
TINY_TRAIN = {
    **TINY_MODEL,
    "steps": 16,
    "batch_size": 8,
    "epochs": 2,
    "lr_clip": 2e-3,
    "lr_pose": 2e-3,
    "lr_cgaf": 2e-3,
    "warmup": 0.1,
    "progress": False,
    "cgaf_dropout": 0.0,
    "pose_windows": "rgb_aligned",
}


def write_project_params(root: Path, train: dict | None = None, evaluate: dict | None = None) -> Path:
    params = {
        "runtime": {"store": "cache", "manifests": "manifests", "device": "cpu", "threads_per_worker": 2},
        "train": {**TINY_TRAIN, **(train or {})},
        "evaluate": {**(evaluate or {})},
    }
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def write_clips(root: Path, clips: list[dict]) -> None:
    """select and rgb views and items of hand-made clips, for the rules of pipeline/train/data.py. Each clip:
    sample_id, frames (the kept pose frames' clip frame numbers), windows ((n, L) rgb window frame
    numbers), and optionally text, split ("train"), sentence_id and attrs (the select item's attrs). Every
    keypoint of kept frame f is f + 1, so the keypoints an index reads name the frame it reads."""
    store, views = root / "cache", root / "manifests"
    select_dir, rgb_dir = _stage_dir(store, "select"), _stage_dir(store, "rgb")
    select_rows, rgb_rows = [], []
    with ShardWriter(select_dir, max_items=1000) as select_writer, ShardWriter(rgb_dir, max_items=1000) as rgb_writer:
        for clip in clips:
            sid, frames = clip["sample_id"], np.asarray(clip["frames"], dtype=np.int64)
            windows = np.asarray(clip["windows"], dtype=np.int64)
            keypoints = np.repeat((frames + 1).astype(np.float32)[:, None, None], 49, axis=1).repeat(2, axis=2)
            select_writer.add(
                Item(
                    f"sel-{sid}",
                    sid,
                    {
                        "keypoints": keypoints,
                        "scores": np.ones(keypoints.shape[:2], np.float32),
                        "mask": np.ones(keypoints.shape[:2], np.uint8),
                        "frames": frames,
                    },
                    {"parts": ["body", "left_hand", "right_hand"], **clip.get("attrs", {})},
                )
            )
            rgb_writer.add(
                Item(
                    f"rgb-{sid}",
                    sid,
                    {"features": np.ones((len(windows), RGB_DIM), np.float16), "windows": windows},
                    {"num_windows": len(windows)},
                )
            )
            row = {
                "sample_id": sid,
                "text": clip.get("text", sid),
                "split": clip.get("split", "train"),
                "content_hash": f"hash-{sid}",
                "start_s": None,
                "end_s": None,
                "sentence_id": clip.get("sentence_id"),
                "annotation_source": "csv clips.csv",
            }
            select_rows.append({**row, "select_key": f"sel-{sid}", "select_status": "ok", "select_reason": None})
            rgb_rows.append({**row, "rgb_key": f"rgb-{sid}", "rgb_status": "ok"})
    _write_view(views, "select", select_dir.fingerprint, select_rows)
    _write_view(views, "rgb", rgb_dir.fingerprint, rgb_rows)
