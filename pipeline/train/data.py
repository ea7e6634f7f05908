"""Clips for training and evaluation, read from the store through the pose (select) and rgb views.

A clip's inputs, as the authors' loaders give them (longtaojiang/SEDS dataloaders/
dataloader_H2_retrieval_train_pose.py and dataloader_H2_retrieval_pose.py):
- keypoints: every kept frame of the pose view (`keypoints` (F, K, 2), plus `scores` with
  pose_channels xy_score), in the select stage's units; the authors' loader zeroes what the select
  stage's `seds` normalisation zeroes, so no mask is applied here. A clip with fewer kept frames than
  a window (16) gets copies of its last frame appended, as the release's `_get_pose_clips` does before
  the network (dataloader_H2_retrieval_train_pose.py:262-265, dataloader_H2_retrieval_pose.py:200-203),
  so the temporal blocks see that frame, not zeros;
- rgb: `features` (n, 1024) of the n I3D windows and `windows` (n, L) their clip frame numbers, from a
  view (`rgb`, or a .parquet path) or a named rgb feature set (`set:NAME`, an rgb.feature_sets entry read
  by item key as pipeline.rgb.sets does); with two sources, (1 - a) * first + a * second (they must
  share their windows);
- windows: for each of the n windows, the index of each of its L frames in the clip's (padded) pose
  frames, by `ClipRules.pose_windows`:
  `kept_frames` (the release's `_get_pose_clips`, :250-303 of the train loader): windows slide over the
  kept frames at the rgb stage's stride, starts as pipeline/rgb/windows.py `window_starts`, thinned to
  the n rgb windows by the same truncating linspace; frames dropped by the `seds` normalisation shift
  them off the rgb windows, and a clip with fewer pose windows than rgb windows is left out (the
  release's loaders assert equal counts, :118 of the train loader);
  `rgb_aligned`: each rgb window's own frames, a frame the pose view does not keep read from the
  nearest kept one (the earlier on a tie), a repeated last frame (a short clip) from the appended copies.
  The two agree when no frame was dropped.
When a clip has more than `steps` windows, an evenly spaced subset is kept (np.linspace truncated to
integers, the authors' rule in training and test alike); fewer are padded (window index -1, zero features).

Items whose status in either view is not ok, that have no RGB window or no pose frame, or that
`ClipRules` leaves out are skipped and counted (`ClipSet.skipped`). Readers open the HDF5 shards lazily
in each DataLoader worker (pipeline.store.reader.StageReader is fork-safe); `preload` reads every clip
into RAM once instead.
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
from pipeline.rgb.params import SET_PREFIX
from pipeline.rgb.windows import choose_windows, window_starts
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


POSE_WINDOWS = ("kept_frames", "rgb_aligned")
NO_SOURCE = "not recorded"


@dataclass(frozen=True)
class ClipRules:
    """How clips are read where the release's loaders and our first design differ (train params
    pose_windows, hand_without_box; `window_stride` is rgb.stride, the release's --windows_stride)."""

    pose_windows: str = "rgb_aligned"
    window_stride: int = 1
    drop_unboxed_hand: bool = False

    def __post_init__(self) -> None:
        if self.pose_windows not in POSE_WINDOWS:
            raise ValueError(f"pose_windows must be one of {POSE_WINDOWS}, got {self.pose_windows!r}")

    @classmethod
    def of(cls, train: Any, params: Params) -> "ClipRules":
        """The rules a train params section sets (the checkpoint's, in evaluation), at the project's rgb.stride."""
        return cls(train.pose_windows, params["rgb"].stride, train.hand_without_box == "drop")


@dataclass
class Clip:
    sample_id: str
    text: str
    pose_key: str
    rgb_keys: list[str]
    sentence_id: str | None = None


@dataclass
class ClipSet:
    """The clips of one split, with the readers that hold their arrays. `sources` counts the clips by
    the annotation file that listed them (the manifest's annotation_source), `noted` the clips kept
    despite a rule (a hand never boxed, kept as zeros)."""

    clips: list[Clip]
    pose_reader: StageReader
    rgb_readers: list[StageReader]
    spans: dict[str, tuple[int, int]]
    skipped: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    rules: ClipRules = ClipRules()
    noted: Counter = field(default_factory=Counter)

    def describe(self) -> str:
        extra = "; ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
        kept = "; ".join(f"{n} {note}" for note, n in sorted(self.noted.items()))
        notes = [part for part in (kept, f"{extra} left out" if extra else "") if part]
        return f"{len(self.clips)} clips" + (f" ({'; '.join(notes)})" if notes else "")

    def source_note(self) -> str:
        """Where the split's clips were listed: each annotation source with its clip count."""
        return "; ".join(f"{source} ({n} clips)" for source, n in sorted(self.sources.items()))


def _table_rows(table: pa.Table, columns: list[str], where: Path) -> list[dict[str, Any]]:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise StoreError(f"{where} lacks column(s) {missing}; it has {table.column_names}")
    return table.select(columns).to_pylist()


OPTIONAL_COLUMNS = ("sentence_id", "annotation_source")  # manifest columns older views or other importers lack


def _open_view(ref: ViewRef, store_root: Path, need_text: bool) -> tuple[dict[str, dict], StageReader]:
    table, fingerprints = read_view(ref.folder, ref.stage)
    if ref.stage not in fingerprints:
        raise StoreError(
            f"{ref.path} has no fingerprint for stage {ref.stage!r} in its metadata "
            f"(found {sorted(fingerprints)}); rebuild it with seds finalize {ref.stage}"
        )
    columns = ["sample_id", f"{ref.stage}_key", f"{ref.stage}_status"]
    columns += (
        [f"{ref.stage}_reason"] if f"{ref.stage}_reason" in table.column_names else []
    )  # views of imports lack it
    if need_text:
        columns += ["text", "split", "content_hash", "start_s", "end_s"]
        columns += [c for c in OPTIONAL_COLUMNS if c in table.column_names]
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

    def reason(self, pose_row: dict[str, Any]) -> str:
        """Why this source has no item for the clip: its view's failure reason, or the store's."""
        if self.view_rows is not None:
            row = self.view_rows.get(pose_row["sample_id"])
            if row is None:
                return f"not in the {self.label} view"
            return row.get(f"{self.label}_reason") or "not in the store"
        key = item_key(pose_row["content_hash"], pose_row["start_s"], pose_row["end_s"], self.fingerprint)
        failure = self.reader.index.failure_for(key, pose_row["sample_id"])
        return failure.reason if failure else "not computed for this feature set"


def open_rgb_sources(
    entries: list[str], manifests_dir: Path, store_root: Path, params: Params | None
) -> list[RgbSource]:
    """`train.rgb_views` entries: a view name or .parquet path, or `set:NAME` (an rgb.feature_sets entry)."""
    sources, set_names = [], [e[len(SET_PREFIX) :] for e in entries if e.startswith(SET_PREFIX)]
    stores = {}
    if set_names:
        if params is None:
            raise StoreError("rgb feature sets (set:NAME) need the project's params to find their fingerprints")
        from pipeline.rgb.sets import open_feature_sets

        stores = open_feature_sets(params, set_names)
    for entry in entries:
        if entry.startswith(SET_PREFIX):
            store = stores[entry[len(SET_PREFIX) :]]
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


UNBOXED_HAND = "with a hand never boxed"
FEWER_POSE_WINDOWS = "with fewer pose windows (kept frames) than rgb windows"


def unboxed_hands(attrs: dict[str, Any]) -> list[str]:
    """Hands that got no box (from joints or from the arm) in any frame, from the select item's
    `hand_boxes` counts (seds normalisation only: other normalisations record none): the clips on which
    the release's `_get_single_hand` raises (dataloader_H2_retrieval_train_pose.py:375-376,
    dataloader_H2_retrieval_pose.py:313-314)."""
    boxes = attrs.get("hand_boxes") or {}
    return sorted(part for part, count in boxes.items() if count["joints"] + count["arm"] == 0)


def _rule_out(
    rules: ClipRules, pose_reader: StageReader, pose_key: str, rgb_reader: StageReader, rgb_key: str
) -> str | None:
    """Why `rules` leave the clip out, or None."""
    if rules.drop_unboxed_hand and unboxed_hands(pose_reader.attrs(pose_key)):
        return UNBOXED_HAND
    if rules.pose_windows == "kept_frames":
        window = int(rgb_reader.row(rgb_key).array("windows")["shape"][1])
        kept = _length(pose_reader, pose_key, "frames")
        if len(window_starts(kept, window, rules.window_stride)) < _length(rgb_reader, rgb_key, "features"):
            return FEWER_POSE_WINDOWS
    return None


def load_clips(
    manifests_dir: Path,
    store_root: Path,
    pose_view: str,
    rgb_views: list[str],
    split: str,
    params: Params | None = None,
    rules: ClipRules = ClipRules(),
) -> ClipSet:
    """The clips of `split` with a usable pose item and rgb item(s) that `rules` keep; see the module
    docstring. `params` (the project's) is needed only for `set:NAME` rgb entries."""
    pose_ref = ViewRef.parse(pose_view, manifests_dir)
    pose_rows, pose_reader = _open_view(pose_ref, store_root, need_text=True)
    rgb = open_rgb_sources(rgb_views, Path(manifests_dir), Path(store_root), params)
    clips, skipped, noted, sources, spans = [], Counter(), Counter(), Counter(), None
    why: dict[str, Counter] = {}  # upstream stage -> its failure reasons for the clips left out
    for sample_id, row in pose_rows.items():
        if row["split"] != split:
            continue
        if row[f"{pose_ref.stage}_status"] != "ok" or row[f"{pose_ref.stage}_key"] not in pose_reader:
            skipped[f"{pose_ref.stage} not ok"] += 1
            why.setdefault(pose_ref.stage, Counter())[row.get(f"{pose_ref.stage}_reason") or "not in the store"] += 1
            continue
        keys = [source.key(row) for source in rgb]
        if any(k is None for k in keys):
            skipped["rgb not ok"] += 1
            for source, key in zip(rgb, keys):
                if key is None:
                    why.setdefault(source.label, Counter())[source.reason(row)] += 1
            continue
        pose_key = row[f"{pose_ref.stage}_key"]
        if _length(pose_reader, pose_key, "frames") == 0 or any(
            _length(source.reader, k, "features") == 0 for source, k in zip(rgb, keys)
        ):
            skipped["no frames or windows"] += 1
            continue
        reason = _rule_out(rules, pose_reader, pose_key, rgb[0].reader, keys[0])
        if reason is not None:
            skipped[reason] += 1
            continue
        if unboxed_hands(pose_reader.attrs(pose_key)):
            noted[f"{UNBOXED_HAND} (kept, that hand zero)"] += 1
        if spans is None:
            spans = _part_spans(pose_reader.attrs(pose_key))
        sources[row.get("annotation_source") or NO_SOURCE] += 1
        clips.append(Clip(sample_id, row["text"] or "", pose_key, keys, row.get("sentence_id") or None))
    if not clips:
        raise StoreError(_no_clips(split, pose_ref, rgb_views, pose_rows, skipped, why))
    clips.sort(key=lambda c: c.sample_id)
    return ClipSet(clips, pose_reader, [source.reader for source in rgb], spans, skipped, sources, rules, noted)


def _no_clips(
    split: str,
    pose_ref: ViewRef,
    rgb_views: list[str],
    pose_rows: dict[str, dict],
    skipped: Counter,
    why: dict[str, Counter],
) -> str:
    """Why a split has no usable clip, in the terms of the stage that left them out: a split the views
    do not hold, or upstream items that failed (by reason, with where each failure is listed)."""
    splits = sorted({row["split"] for row in pose_rows.values()})
    if not skipped:
        return (
            f"{pose_ref.path} holds no clip of split {split!r} (its splits: {', '.join(splits) or 'none'}): "
            "check train.split / train.val_split / evaluate.split"
        )
    parts = [
        f"{sum(reasons.values())} have no {stage} item ("
        + ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common())
        + ")"
        for stage, reasons in why.items()
    ]
    parts += [f"{n} left out: {reason}" for reason, n in skipped.items() if not reason.endswith(" not ok")]
    stages = " / ".join(f"seds cache failures {stage}" for stage in why)
    return (
        f"no usable clip of split {split!r} in {pose_ref.path} and {', '.join(rgb_views)}: of its "
        f"{sum(skipped.values())} clip(s), {'; '.join(parts)}"
        + (f". The upstream stage failed on them: {stages} lists each clip with its message" if stages else "")
    )


# -- per-clip arrays ----------------------------------------------------------------------------


def window_frames(pose_frames: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(n, L) index into `pose_frames` (sorted clip frame numbers) of each window frame: the same frame,
    or the nearest kept one (the earlier on a tie); a frame repeating the one before it (the padding of a
    window longer than its clip) takes the next copy of the last kept frame appended after the F kept
    frames (`with_last_frame_copies`), as the release's windows run into its copies."""
    right = np.clip(np.searchsorted(pose_frames, windows, side="left"), 0, len(pose_frames) - 1)
    left = np.clip(right - 1, 0, len(pose_frames) - 1)
    take_left = np.abs(windows - pose_frames[left]) <= np.abs(pose_frames[right] - windows)
    index = np.where(take_left, left, right).astype(np.int64)
    repeated = np.zeros(windows.shape, dtype=bool)
    repeated[:, 1:] = windows[:, 1:] == windows[:, :-1]
    copies = len(pose_frames) - 1 + np.cumsum(repeated, axis=1)
    return np.where(repeated, copies, index)


def kept_frame_windows(kept: int, window: int, stride: int, count: int) -> np.ndarray:
    """(count, window) indices into a clip's kept pose frames (copies of the last one appended up to one
    window, `with_last_frame_copies`): the release's `_get_pose_clips`, the rgb stage's sliding-window
    rule (`window_starts`) over the kept frames, `count` of them chosen by its truncating linspace."""
    starts = window_starts(kept, window, stride)
    starts = starts[choose_windows(len(starts), count)]
    return starts[:, None] + np.arange(window, dtype=np.int64)[None, :]


def with_last_frame_copies(keypoints: np.ndarray, window: int) -> np.ndarray:
    """Keypoints (F, K, C) with copies of the last frame appended up to `window` frames (the release's
    `_get_pose_clips` padding; the batch's zero padding comes after, in `collate`)."""
    missing = window - len(keypoints)
    if missing <= 0:
        return keypoints
    return np.concatenate([keypoints, np.repeat(keypoints[-1:], missing, axis=0)])


@dataclass
class ClipArrays:
    keypoints: np.ndarray  # (F, K, C) float32, every kept frame (last-frame copies up to one window)
    windows: np.ndarray  # (n, L) int64 indices into those frames
    rgb: np.ndarray  # (n, D) float32


def read_clip(clips: ClipSet, clip: Clip, with_scores: bool, alpha: float) -> ClipArrays:
    pose = clips.pose_reader.read(clip.pose_key, ["keypoints", "scores", "frames"])
    rgb = [r.read(k, ["features", "windows"]) for r, k in zip(clips.rgb_readers, clip.rgb_keys)]
    windows = rgb[0]["windows"]
    features = rgb[0]["features"].astype(np.float32)
    if len(rgb) == 2:
        if rgb[1]["windows"].shape != windows.shape or not np.array_equal(rgb[1]["windows"], windows):
            raise StoreError(
                f"sample {clip.sample_id}: the two rgb views have different windows "
                f"({windows.shape} vs {rgb[1]['windows'].shape}); they must share the frame list"
            )
        features = (1 - alpha) * features + alpha * rgb[1]["features"].astype(np.float32)
    frames = pose["frames"]
    if np.any(np.diff(frames) <= 0):
        raise StoreError(f"sample {clip.sample_id}: pose frames are not increasing")
    keypoints = pose["keypoints"].astype(np.float32)
    if with_scores:
        keypoints = np.concatenate([keypoints, pose["scores"][..., None].astype(np.float32)], axis=-1)
    rules, window = clips.rules, windows.shape[1]
    if rules.pose_windows == "kept_frames":
        index = kept_frame_windows(len(frames), window, rules.window_stride, len(windows))
    else:
        index = window_frames(frames, windows)
    return ClipArrays(with_last_frame_copies(keypoints, window), index, features)


class ClipDataset(Dataset):
    """Items: keypoints (F, K, C) float32, windows (steps, L) int64 (-1: padding), rgb (steps, D) float32,
    index. Windows beyond `steps` are thinned with linspace (module docstring)."""

    def __init__(
        self, clips: ClipSet, steps: int, with_scores: bool = False, alpha: float = 0.0, preload: bool = False
    ):
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
        windows[: len(keep)], rgb[: len(keep)] = clip.windows[keep], clip.rgb[keep]
        return {
            "keypoints": torch.from_numpy(clip.keypoints),
            "windows": torch.from_numpy(windows),
            "rgb": torch.from_numpy(rgb),
            "index": index,
        }


def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack a batch; keypoints are zero-padded at the end to the longest clip (the authors' collate)."""
    frames = max(it["keypoints"].shape[0] for it in items)
    keypoints = torch.zeros((len(items), frames, *items[0]["keypoints"].shape[1:]))
    for row, it in enumerate(items):
        keypoints[row, : it["keypoints"].shape[0]] = it["keypoints"]
    return {
        "keypoints": keypoints,
        "windows": torch.stack([it["windows"] for it in items]),
        "rgb": torch.stack([it["rgb"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }


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
            yield chosen[b * self.batch_size : (b + 1) * self.batch_size]


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
