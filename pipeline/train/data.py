"""Clips for training and evaluation, read from the store through the pose (select) and rgb views.

A clip's inputs, aligned on the RGB feature steps:
- rgb: `features` (n, 1024) float16 of n I3D windows, `windows` (n, window) their clip frame indices,
  from a view (`rgb`, or a .parquet path) or from a named rgb feature set (`set:NAME`, an entry of
  rgb.feature_sets, read by item key as pipeline.rgb.sets does); with two sources,
  (1 - a) * first + a * second (they must share their windows);
- pose: `keypoints` (T', K, 2), `scores` (T', K), `mask` (T', K) uint8 and `frames` (T',) from the pose view.
Alignment rule: RGB step i takes the kept pose frame nearest to its window's centre (the midpoint of the
window's first and last frame; on a tie the earlier pose frame). Temporal sampling then keeps `steps`
of the n steps: in training a random sorted subset (seeded by seed, epoch and clip), in evaluation the
evenly spaced linspace choice; clips with fewer steps are padded with zeros and masked (step_mask).

Items whose status in either view is not ok, or that have no RGB window or no pose frame, are left out
and counted (`ClipSet.skipped`). Readers open the HDF5 shards lazily in each DataLoader worker
(pipeline.store.reader.StageReader is fork-safe); `preload` reads every clip into RAM once instead.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset, Sampler

from pipeline.config import Params
from pipeline.fingerprint import item_key
from pipeline.runner.plan import read_view
from pipeline.store.layout import StageDir, StoreError
from pipeline.store.reader import StageReader
from pipeline.video.sampling import linspace_choice


@dataclass(frozen=True)
class ViewRef:
    """A view by name (in the views folder) or by path; its stage name is the file's stem."""

    stage: str
    folder: Path

    @classmethod
    def parse(cls, text: str, manifests_dir: Path) -> "ViewRef":
        path = Path(text)
        if path.suffix == ".parquet":
            return cls(path.stem, path.parent)
        return cls(text, Path(manifests_dir))

    @property
    def path(self) -> Path:
        return self.folder / f"{self.stage}.parquet"


@dataclass
class Clip:
    sample_id: str
    text: str
    pose_key: str
    rgb_keys: list[str]


@dataclass
class ClipSet:
    """The clips of one split, with the readers that hold their arrays."""

    clips: list[Clip]
    pose_reader: StageReader
    rgb_readers: list[StageReader]
    spans: dict[str, tuple[int, int]]
    skipped: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        extra = "; ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        return f"{len(self.clips)} clips" + (f" ({extra} left out)" if extra else "")


def _table_rows(table: pa.Table, columns: list[str], where: Path) -> list[dict[str, Any]]:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise StoreError(f"{where} lacks column(s) {missing}; it has {table.column_names}")
    return table.select(columns).to_pylist()


def _open_view(ref: ViewRef, store_root: Path, need_text: bool) -> tuple[dict[str, dict], StageReader]:
    table, fingerprints = read_view(ref.folder, ref.stage)
    if ref.stage not in fingerprints:
        raise StoreError(f"{ref.path} has no fingerprint for stage {ref.stage!r} in its metadata "
                         f"(found {sorted(fingerprints)}); rebuild it with seds finalize {ref.stage}")
    columns = ["sample_id", f"{ref.stage}_key", f"{ref.stage}_status"]
    if need_text:
        columns += ["text", "split", "content_hash", "start_s", "end_s"]
    rows = {r["sample_id"]: r for r in _table_rows(table, columns, ref.path)}
    reader = StageReader(StageDir(Path(store_root), ref.stage, fingerprints[ref.stage]))
    return rows, reader


@dataclass
class RgbSource:
    """Where one rgb input comes from: a view (key per sample id) or a named feature set (key from the
    clip's content hash and bounds at the set's fingerprint, as pipeline.rgb.sets addresses them)."""

    label: str
    reader: StageReader
    view_rows: dict[str, dict] | None = None
    fingerprint: str | None = None

    def key(self, pose_row: dict[str, Any]) -> str | None:
        if self.view_rows is not None:
            row = self.view_rows.get(pose_row["sample_id"])
            if row is None or row[f"{self.label}_status"] != "ok":
                return None
            key = row[f"{self.label}_key"]
        else:
            key = item_key(pose_row["content_hash"], pose_row["start_s"], pose_row["end_s"], self.fingerprint)
        return key if key in self.reader else None


SET_PREFIX = "set:"


def open_rgb_sources(entries: list[str], manifests_dir: Path, store_root: Path, params: Params | None) -> list[RgbSource]:
    """`train.rgb_views` entries: a view name or .parquet path, or `set:NAME` (an rgb.feature_sets entry)."""
    sources, set_names = [], [e[len(SET_PREFIX):] for e in entries if e.startswith(SET_PREFIX)]
    stores = {}
    if set_names:
        if params is None:
            raise StoreError("rgb feature sets (set:NAME) need the project's params to find their fingerprints")
        from pipeline.rgb.sets import open_feature_sets

        stores = open_feature_sets(params, set_names)
    for entry in entries:
        if entry.startswith(SET_PREFIX):
            store = stores[entry[len(SET_PREFIX):]]
            sources.append(RgbSource(entry, store.reader, fingerprint=store.fingerprint))
        else:
            ref = ViewRef.parse(entry, manifests_dir)
            rows, reader = _open_view(ref, store_root, need_text=False)
            sources.append(RgbSource(ref.stage, reader, view_rows=rows))
    return sources


def _part_spans(attrs: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """Columns of body / left_hand / right_hand from the select item's `parts` attr (SEDS 49 if absent)."""
    from pipeline.keypoints.layout import PART_INDICES

    parts = attrs.get("parts")
    if not parts:
        from pipeline.models.seds.pose_encoder import SEDS_SPANS

        return dict(SEDS_SPANS)
    spans, start = {}, 0
    for part in parts:
        size = len(PART_INDICES[part])
        spans[part] = (start, start + size)
        start += size
    return spans


def _length(reader: StageReader, key: str, name: str) -> int:
    return int(reader.row(key).array(name)["length"])


def load_clips(manifests_dir: Path, store_root: Path, pose_view: str, rgb_views: list[str], split: str,
               params: Params | None = None) -> ClipSet:
    """The clips of `split` with a usable pose item and rgb item(s); see the module docstring.
    `params` (the project's) is needed only for `set:NAME` rgb entries."""
    pose_ref = ViewRef.parse(pose_view, manifests_dir)
    pose_rows, pose_reader = _open_view(pose_ref, store_root, need_text=True)
    rgb = open_rgb_sources(rgb_views, Path(manifests_dir), Path(store_root), params)
    clips, skipped, spans = [], Counter(), None
    for sample_id, row in pose_rows.items():
        if row["split"] != split:
            continue
        if row[f"{pose_ref.stage}_status"] != "ok" or row[f"{pose_ref.stage}_key"] not in pose_reader:
            skipped[f"{pose_ref.stage} not ok"] += 1
            continue
        keys = [source.key(row) for source in rgb]
        if any(k is None for k in keys):
            skipped["rgb not ok"] += 1
            continue
        pose_key = row[f"{pose_ref.stage}_key"]
        if _length(pose_reader, pose_key, "frames") == 0 or any(
                _length(source.reader, k, "features") == 0 for source, k in zip(rgb, keys)):
            skipped["no frames or windows"] += 1
            continue
        if spans is None:
            spans = _part_spans(pose_reader.attrs(pose_key))
        clips.append(Clip(sample_id, row["text"] or "", pose_key, keys))
    if not clips:
        raise StoreError(f"no usable clips of split {split!r} in {pose_ref.path} and {', '.join(rgb_views)}"
                         + (f" ({dict(skipped)})" if skipped else "") + ": check the split name and the views")
    clips.sort(key=lambda c: c.sample_id)
    return ClipSet(clips, pose_reader, [source.reader for source in rgb], spans, skipped)


# -- per-clip arrays ----------------------------------------------------------------------------

def align_to_windows(pose_frames: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(n,) index into pose_frames of the kept pose frame nearest each window's centre (ties: earlier)."""
    centre = (windows[:, 0].astype(np.float64) + windows[:, -1]) / 2
    right = np.clip(np.searchsorted(pose_frames, centre, side="left"), 0, len(pose_frames) - 1)
    left = np.clip(right - 1, 0, len(pose_frames) - 1)
    take_left = np.abs(centre - pose_frames[left]) <= np.abs(pose_frames[right] - centre)
    return np.where(take_left, left, right)


def choose_steps(n: int, steps: int, rng: np.random.Generator | None) -> np.ndarray:
    """Indices of the steps kept: all when n <= steps; else a sorted random subset (rng) or linspace."""
    if n <= steps:
        return np.arange(n)
    if rng is None:
        return linspace_choice(n, steps)
    return np.sort(rng.choice(n, size=steps, replace=False))


@dataclass
class AlignedClip:
    keypoints: np.ndarray   # (n, K, C) float32
    joint_mask: np.ndarray  # (n, K) bool
    rgb: np.ndarray         # (n, D) float16 or float32


def read_clip(clips: ClipSet, clip: Clip, with_scores: bool, alpha: float) -> AlignedClip:
    pose = clips.pose_reader.read(clip.pose_key, ["keypoints", "scores", "mask", "frames"])
    rgb = [r.read(k, ["features", "windows"]) for r, k in zip(clips.rgb_readers, clip.rgb_keys)]
    windows = rgb[0]["windows"]
    features = rgb[0]["features"]
    if len(rgb) == 2:
        if rgb[1]["windows"].shape != windows.shape or not np.array_equal(rgb[1]["windows"], windows):
            raise StoreError(f"sample {clip.sample_id}: the two rgb views have different windows "
                             f"({windows.shape} vs {rgb[1]['windows'].shape}); they must share the frame list")
        features = (1 - alpha) * features.astype(np.float32) + alpha * rgb[1]["features"].astype(np.float32)
    frames = pose["frames"]
    if np.any(np.diff(frames) <= 0):
        raise StoreError(f"sample {clip.sample_id}: pose frames are not increasing")
    take = align_to_windows(frames, windows)
    keypoints = pose["keypoints"][take].astype(np.float32)
    if with_scores:
        keypoints = np.concatenate([keypoints, pose["scores"][take, :, None].astype(np.float32)], axis=-1)
    return AlignedClip(keypoints, pose["mask"][take].astype(bool), features)


class ClipDataset(Dataset):
    """Items: keypoints (steps,K,C) float32, joint_mask (steps,K) bool, rgb (steps,D) float32,
    step_mask (steps,) bool, index. Set `epoch` before each epoch's DataLoader is iterated."""

    def __init__(self, clips: ClipSet, steps: int, train: bool, seed: int, with_scores: bool = False,
                 alpha: float = 0.0, preload: bool = False):
        self.clips = clips
        self.steps = steps
        self.train = train
        self.seed = seed
        self.with_scores = with_scores
        self.alpha = alpha
        self.epoch = 0
        self.cache = [self._read(i) for i in range(len(clips.clips))] if preload else None

    def __len__(self) -> int:
        return len(self.clips.clips)

    def _read(self, index: int) -> AlignedClip:
        return read_clip(self.clips, self.clips.clips[index], self.with_scores, self.alpha)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.cache[index] if self.cache is not None else self._read(index)
        n = len(clip.rgb)
        rng = np.random.default_rng([self.seed, self.epoch, index]) if self.train else None
        keep = choose_steps(n, self.steps, rng)
        m = len(keep)
        k, c = clip.keypoints.shape[1:]
        keypoints = np.zeros((self.steps, k, c), np.float32)
        joint_mask = np.zeros((self.steps, k), bool)
        rgb = np.zeros((self.steps, clip.rgb.shape[1]), np.float32)
        step_mask = np.zeros(self.steps, bool)
        keypoints[:m], joint_mask[:m], rgb[:m], step_mask[:m] = clip.keypoints[keep], clip.joint_mask[keep], \
            clip.rgb[keep], True
        return {"keypoints": torch.from_numpy(keypoints), "joint_mask": torch.from_numpy(joint_mask),
                "rgb": torch.from_numpy(rgb), "step_mask": torch.from_numpy(step_mask), "index": index}


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    out = {k: torch.stack([it[k] for it in items]) for k in ("keypoints", "joint_mask", "rgb", "step_mask")}
    out["index"] = torch.tensor([it["index"] for it in items])
    return out


class EpochBatches(Sampler[list[int]]):
    """The batches of one epoch: a permutation seeded by (seed, epoch), cut into batch_size pieces, a
    last piece of one clip dropped (contrastive losses need two). `start` skips batches already done
    (resuming mid-epoch reads nothing for them)."""

    def __init__(self, size: int, batch_size: int, seed: int, epoch: int, start: int = 0, shuffle: bool = True):
        self.size, self.batch_size, self.seed, self.epoch, self.start, self.shuffle = \
            size, batch_size, seed, epoch, start, shuffle

    @staticmethod
    def count(size: int, batch_size: int) -> int:
        full, rest = divmod(size, batch_size)
        return full + (1 if rest >= 2 else 0)

    def __len__(self) -> int:
        return max(0, self.count(self.size, self.batch_size) - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch, 7]).permutation(self.size)
        else:
            order = np.arange(self.size)
        for b in range(self.start, self.count(self.size, self.batch_size)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size].tolist()


def random_swap(text: str, alpha: float, rng: np.random.Generator) -> str:
    """EDA random swap (Wei & Zou 2019): swap two random words, max(1, round(alpha * words)) times."""
    words = text.split()
    if len(words) < 2:
        return text
    for _ in range(max(1, round(alpha * len(words)))):
        i, j = rng.choice(len(words), size=2, replace=False)
        words[i], words[j] = words[j], words[i]
    return " ".join(words)
