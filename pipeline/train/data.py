"""Clips for training and evaluation, read from the store through the pose (select) and rgb views.

A clip's inputs, as the authors' loaders give them (longtaojiang/SEDS dataloaders/
dataloader_H2_retrieval_train_pose.py and dataloader_H2_retrieval_pose.py):
- keypoints: every kept frame of the pose view (`keypoints` (F, K, 2), plus `scores` with
  pose_channels xy_score), in the select stage's units; the authors' loader zeroes what the select
  stage's `seds` normalisation zeroes, so no mask is applied here;
- rgb: `features` (n, 1024) of the n I3D windows and `windows` (n, L) their clip frame numbers, from a
  view (`rgb`, or a .parquet path) or a named rgb feature set (`set:NAME`, an rgb.feature_sets entry read
  by item key as pipeline.rgb.sets does); with two sources, (1 - a) * first + a * second (they must
  share their windows);
- windows: for each RGB window, the index of each of its L frames in the clip's kept pose frames, so
  the Pose encoder sees the frames of the same windows as I3D. A window frame the pose view does not
  keep (the `seds` normalisation drops frames where neither hand has a box) takes the nearest kept
  frame (the earlier one on a tie).
When a clip has more than `steps` windows, an evenly spaced subset is kept (np.linspace truncated to
integers, the authors' rule in training and test alike); fewer are padded (window index -1, zero features).

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
from pipeline.video.sampling import linspace_floor


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
        from pipeline.models.seds.model import SEDS_SPANS

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


def sentence_groups(texts: list[str]) -> list[list[int]]:
    """Clip indices grouped by sentence (identical text after stripping), groups in order of first clip:
    the authors' sentence ids, which pair one sentence with all the clips that sign it."""
    groups: dict[str, list[int]] = {}
    for index, text in enumerate(texts):
        groups.setdefault(text.strip(), []).append(index)
    return list(groups.values())


# -- per-clip arrays ----------------------------------------------------------------------------

def window_frames(pose_frames: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(n, L) index into `pose_frames` (sorted clip frame numbers) of each window frame: the same frame,
    or the nearest kept one (the earlier on a tie)."""
    right = np.clip(np.searchsorted(pose_frames, windows, side="left"), 0, len(pose_frames) - 1)
    left = np.clip(right - 1, 0, len(pose_frames) - 1)
    take_left = np.abs(windows - pose_frames[left]) <= np.abs(pose_frames[right] - windows)
    return np.where(take_left, left, right).astype(np.int64)


@dataclass
class ClipArrays:
    keypoints: np.ndarray   # (F, K, C) float32, every kept frame
    windows: np.ndarray     # (n, L) int64 indices into the F frames
    rgb: np.ndarray         # (n, D) float32


def read_clip(clips: ClipSet, clip: Clip, with_scores: bool, alpha: float) -> ClipArrays:
    pose = clips.pose_reader.read(clip.pose_key, ["keypoints", "scores", "frames"])
    rgb = [r.read(k, ["features", "windows"]) for r, k in zip(clips.rgb_readers, clip.rgb_keys)]
    windows = rgb[0]["windows"]
    features = rgb[0]["features"].astype(np.float32)
    if len(rgb) == 2:
        if rgb[1]["windows"].shape != windows.shape or not np.array_equal(rgb[1]["windows"], windows):
            raise StoreError(f"sample {clip.sample_id}: the two rgb views have different windows "
                             f"({windows.shape} vs {rgb[1]['windows'].shape}); they must share the frame list")
        features = (1 - alpha) * features + alpha * rgb[1]["features"].astype(np.float32)
    frames = pose["frames"]
    if np.any(np.diff(frames) <= 0):
        raise StoreError(f"sample {clip.sample_id}: pose frames are not increasing")
    keypoints = pose["keypoints"].astype(np.float32)
    if with_scores:
        keypoints = np.concatenate([keypoints, pose["scores"][..., None].astype(np.float32)], axis=-1)
    return ClipArrays(keypoints, window_frames(frames, windows), features)


class ClipDataset(Dataset):
    """Items: keypoints (F, K, C) float32, windows (steps, L) int64 (-1: padding), rgb (steps, D) float32,
    index. Windows beyond `steps` are thinned with linspace (module docstring)."""

    def __init__(self, clips: ClipSet, steps: int, with_scores: bool = False, alpha: float = 0.0,
                 preload: bool = False):
        self.clips = clips
        self.steps = steps
        self.with_scores = with_scores
        self.alpha = alpha
        self.cache = [self._read(i) for i in range(len(clips.clips))] if preload else None

    def __len__(self) -> int:
        return len(self.clips.clips)

    def _read(self, index: int) -> ClipArrays:
        return read_clip(self.clips, self.clips.clips[index], self.with_scores, self.alpha)

    def __getitem__(self, index: int) -> dict[str, Any]:
        clip = self.cache[index] if self.cache is not None else self._read(index)
        n, length = clip.windows.shape
        keep = linspace_floor(n, self.steps)
        windows = np.full((self.steps, length), -1, np.int64)
        rgb = np.zeros((self.steps, clip.rgb.shape[1]), np.float32)
        windows[:len(keep)], rgb[:len(keep)] = clip.windows[keep], clip.rgb[keep]
        return {"keypoints": torch.from_numpy(clip.keypoints), "windows": torch.from_numpy(windows),
                "rgb": torch.from_numpy(rgb), "index": index}


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack a batch; keypoints are zero-padded at the end to the longest clip (the authors' collate)."""
    frames = max(it["keypoints"].shape[0] for it in items)
    keypoints = torch.zeros((len(items), frames, *items[0]["keypoints"].shape[1:]))
    for row, it in enumerate(items):
        keypoints[row, :it["keypoints"].shape[0]] = it["keypoints"]
    return {"keypoints": keypoints, "windows": torch.stack([it["windows"] for it in items]),
            "rgb": torch.stack([it["rgb"] for it in items]), "index": torch.tensor([it["index"] for it in items])}


class EpochBatches(Sampler[list[int]]):
    """The batches of one epoch. sampling `clip`: a permutation of the clips; `sentence`: a permutation
    of the sentence groups, each contributing one of its clips drawn at random (the authors' training
    set: one sample per sentence). Seeded by (seed, epoch), cut into batch_size pieces, a last piece of
    one clip dropped (a contrastive loss needs two). `start` skips batches already done (resuming)."""

    def __init__(self, groups: list[list[int]], batch_size: int, seed: int, epoch: int, start: int = 0):
        self.groups, self.batch_size, self.seed, self.epoch, self.start = groups, batch_size, seed, epoch, start

    @staticmethod
    def count(size: int, batch_size: int) -> int:
        full, rest = divmod(size, batch_size)
        return full + (1 if rest >= 2 else 0)

    def __len__(self) -> int:
        return max(0, self.count(len(self.groups), self.batch_size) - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch, 7])
        order = rng.permutation(len(self.groups))
        picks = [group[int(rng.integers(len(group)))] for group in self.groups]
        chosen = [picks[g] for g in order]
        for b in range(self.start, self.count(len(chosen), self.batch_size)):
            yield chosen[b * self.batch_size:(b + 1) * self.batch_size]


SWAP_DRAWS = 3  # textaugment EDA.swap_word: a fourth draw ends the attempt whatever it gives


def random_swap(text: str, swaps: int, rng: np.random.Generator) -> str:
    """EDA random swap as the textaugment package the authors call does it (EDA.random_swap and
    swap_word): `swaps` times, a first word position is drawn, then a second one until it differs; an
    attempt whose first three second draws all equal the first gives up and swaps nothing, so a sentence
    of n words stays as it is with probability (1/n)^3 per swap (1/8 for two words)."""
    words = text.split()
    if len(words) < 2:
        return text
    for _ in range(swaps):
        i = int(rng.integers(len(words)))
        for _ in range(SWAP_DRAWS):
            j = int(rng.integers(len(words)))
            if j != i:
                words[i], words[j] = words[j], words[i]
                break
    return " ".join(words)
