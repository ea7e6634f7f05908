"""Bringing outside files into the store, as items a train or select run can read.

`import_files` is the one loop: for every row of a view it reads `<folder>/<row[name_column]><suffix>`
into one item of the stage whose layout it matches, under a fingerprint naming the source:
    cache/<stage>/<fingerprint>/    fingerprint = {stage, VERSION, params: {import: <kind>, source: <name>,
                                    + what decides the arrays}}: STAGE.json names the source
    <manifests>/<stage>.parquet         the input view's rows + content_hash, <stage>_key/_status/_reason
The item key hashes the file's bytes (its content hash), the clip bounds and that fingerprint, so
re-importing unchanged files reuses them and a changed file is a new item. A file that is missing or
refused (its kind's errors name the file) becomes a recorded failure; nothing is lost and the other
clips are imported. Kinds: the authors' pkl files (`import_authors`: rgb features + windows, pose
keypoints, scores, frames) here; .pose files in pipeline/interop/pose_import.py.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.fingerprint import StageFingerprint, hash_file, hash_json, item_key
from pipeline.interop import authors_pkl
from pipeline.manifest.schema import ManifestError
from pipeline.rgb.windows import plan_windows
from pipeline.runner.plan import FINGERPRINTS_META
from pipeline.safe_unpickle import UnsafePickle
from pipeline.store import Failure, Item, ShardWriter, StageDir, StageIndex

VERSION = 2  # 2: the view values an item is made from (frame count, size) enter its key
KINDS = ("rgb", "pose")


@dataclass(frozen=True)
class WindowRule:
    """How the authors' features were windowed (SEDS/CiCo: 16 frames, stride 1, <= 300 frames, 64 kept).
    With a clip frame count (a probe view's num_frames) the windows are planned by that rule and must
    number N; without one, window i is taken to cover clip frames i*stride .. i*stride+window-1."""

    window: int = 16
    stride: int = 1
    max_frames: int = 300
    num_windows: int = 64

    def windows(self, n: int, num_frames: int | None, where: str) -> np.ndarray:
        if num_frames is None:
            return np.arange(n, dtype=np.int64)[:, None] * self.stride + np.arange(self.window, dtype=np.int64)
        plan = plan_windows(
            int(num_frames),
            window=self.window,
            stride=self.stride,
            max_frames=self.max_frames,
            num_windows=self.num_windows,
        )
        if len(plan.windows) != n:
            raise authors_pkl.AuthorsFormatError(
                f"{where}: holds {n} windows, but a clip of {num_frames} frames has {len(plan.windows)} by the "
                f"rule window {self.window}, stride {self.stride}, <= {self.max_frames} frames, {self.num_windows} "
                "kept; pass the rule the features were made with, or import over a view without num_frames"
            )
        return plan.windows


@dataclass
class ImportSummary:
    stage: str
    fingerprint: str
    view: Path
    imported: int = 0
    reused: int = 0
    failed: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        failed = sum(self.failed.values())
        reasons = f" ({', '.join(f'{n} {r}' for r, n in sorted(self.failed.items()))})" if failed else ""
        return (
            f"import {self.stage}: {self.imported} imported, {self.reused} reused, {failed} failed{reasons} "
            f"[fingerprint {self.fingerprint[:12]}] -> {self.view}"
        )


def _fingerprint(stage: str, source: str, params: dict[str, Any]) -> StageFingerprint:
    return StageFingerprint(stage, VERSION, {"import": "authors_pkl", "source": source, **params})


def _rgb_item(path: Path, row: dict[str, Any], rule: WindowRule) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    features = authors_pkl.read_rgb(path)
    windows = rule.windows(len(features), row.get("num_frames"), str(path))
    if np.abs(features).max() > np.finfo(np.float16).max:
        raise authors_pkl.AuthorsFormatError(f"{path}: 'feature' exceeds the float16 range the store keeps")
    attrs = {
        "num_windows": len(features),
        "total_windows": len(features),
        "padded": False,
        "family": "authors",
        "windows_from": "num_frames" if row.get("num_frames") is not None else "consecutive",
    }
    return {"features": features.astype(np.float16), "windows": windows}, attrs


def _pose_item(
    path: Path, row: dict[str, Any], frame_base: int, frame_size: tuple[int, int] | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    pose = authors_pkl.read_pose(path, frame_base)
    width, height = frame_size or (row.get("width"), row.get("height"))
    attrs = {"frames_sampled": len(pose.frames), "model": "authors_rtmpose", "backend": "imported"}
    if width and height:
        attrs.update(width=int(width), height=int(height))
    return {"keypoints": pose.keypoints, "scores": pose.scores, "frames": pose.frames}, attrs


def _read_rows(view: Path, name_column: str) -> tuple[pa.Table, dict[str, str]]:
    if not view.is_file():
        raise ManifestError(f"{view} does not exist (the view whose rows name the clips to import)")
    table = pq.read_table(view)
    missing = [c for c in ("sample_id", "start_s", "end_s", "video_path", name_column) if c not in table.column_names]
    if missing:
        raise ManifestError(f"{view} lacks column(s) {missing}; give the manifest or probe view")
    return table, json.loads((table.schema.metadata or {}).get(FINGERPRINTS_META, b"{}"))


@dataclass(frozen=True)
class FileImport:
    """One kind of import: files `<name><suffix>` made into items of `stage` under `fingerprint` by `make`
    (row -> arrays, attrs); an exception of a class in `refusals` is recorded as that failure reason.
    `row_inputs`: the view's columns `make` reads (fps, frame count, size); they enter each item's key with
    the file's content, so a clip whose probed values change is imported again, not served stale."""

    stage: str
    fingerprint: StageFingerprint
    suffix: str
    make: Callable[[Path, dict[str, Any]], tuple[dict[str, np.ndarray], dict[str, Any]]]
    refusals: tuple[tuple[type[Exception], str], ...]
    row_inputs: tuple[str, ...] = ()

    def item_content(self, content: str, row: dict[str, Any]) -> str:
        return hash_json({"file": content, "row": {name: row.get(name) for name in self.row_inputs}})

    def reason(self, err: Exception) -> str | None:
        return next((reason for cls, reason in self.refusals if isinstance(err, cls)), None)


def import_files(
    spec: FileImport,
    folder: Path,
    view: Path,
    out_manifests: Path,
    store_root: Path,
    source: str,
    *,
    name_column: str = "sample_id",
    compression: str = "lzf",
) -> ImportSummary:
    """Import `folder/<row[name_column]><suffix>` for every row of `view`; write out_manifests/<stage>.parquet."""
    table, upstream = _read_rows(Path(view), name_column)
    fingerprint = spec.fingerprint
    stage_dir = StageDir(Path(store_root), spec.stage, fingerprint.digest)
    stage_dir.create(fingerprint)
    index = StageIndex.load(stage_dir)
    summary = ImportSummary(spec.stage, fingerprint.digest, Path(out_manifests) / f"{spec.stage}.parquet")
    contents, outcomes = [], []
    with ShardWriter(stage_dir, compression=compression) as writer:
        for row in table.to_pylist():
            path = Path(folder) / f"{row[name_column]}{spec.suffix}"
            content = hash_file(path) if path.is_file() else None
            key = (
                item_key(spec.item_content(content, row), row["start_s"], row["end_s"], fingerprint.digest)
                if content
                else None
            )
            contents.append(content)
            if key is not None and key in index:
                summary.reused += 1
                outcomes.append((key, "ok", None))
                continue
            try:
                if content is None:
                    raise FileNotFoundError(f"{path} does not exist")
                arrays, attrs = spec.make(path, row)
            except Exception as err:
                reason = "missing_file" if isinstance(err, FileNotFoundError) else spec.reason(err)
                if reason is None:
                    raise
                failure = Failure(row["sample_id"], reason, str(err), key, {"file": str(path)})
                if not index.records(failure):  # a re-import meeting the same bad file records it once
                    writer.add_failure(failure)
                summary.failed[reason] += 1
                summary.errors.append(str(err))
                outcomes.append((key, "failed", reason))
                continue
            writer.add(
                Item(
                    key, row["sample_id"], arrays, attrs, {"file": str(path), "content_hash": content, "source": source}
                )
            )
            summary.imported += 1
            outcomes.append((key, "ok", None))
    _write_view(table, contents, outcomes, spec.stage, {**upstream, spec.stage: fingerprint.digest}, summary.view)
    return summary


def import_authors(
    kind: str,
    folder: Path,
    view: Path,
    out_manifests: Path,
    store_root: Path,
    source: str,
    *,
    name_column: str = "sample_id",
    frame_base: int = authors_pkl.FRAME_BASE,
    frame_size: tuple[int, int] | None = None,
    rule: WindowRule = WindowRule(),
    compression: str = "lzf",
) -> ImportSummary:
    """Import `folder/<row[name_column]>.pkl` for every row of `view`; write out_manifests/<stage>.parquet."""
    if kind not in KINDS:
        raise ValueError(f"import kind {kind!r}: expected one of {KINDS}")
    if kind == "rgb":
        fingerprint = _fingerprint(
            "rgb",
            source,
            {
                "window": rule.window,
                "stride": rule.stride,
                "max_frames": rule.max_frames,
                "num_windows": rule.num_windows,
            },
        )
        make: Callable[[Path, dict], tuple] = lambda path, row: _rgb_item(path, row, rule)
        row_inputs: tuple[str, ...] = ("num_frames",)
    else:
        fingerprint = _fingerprint("pose", source, {"frame_base": frame_base, "frame_size": frame_size})
        make = lambda path, row: _pose_item(path, row, frame_base, frame_size)
        row_inputs = () if frame_size else ("width", "height")
    spec = FileImport(
        kind,
        fingerprint,
        ".pkl",
        make,
        ((UnsafePickle, "unsafe_pickle"), (authors_pkl.AuthorsFormatError, "bad_format")),
        row_inputs,
    )
    return import_files(
        spec, folder, view, out_manifests, store_root, source, name_column=name_column, compression=compression
    )


def _write_view(
    table: pa.Table, contents: list, outcomes: list, stage: str, fingerprints: dict[str, str], path: Path
) -> None:
    """The input rows with the imported item's content hash (the pkl file's), key, status and reason."""
    columns = {
        "content_hash": contents,
        f"{stage}_key": [o[0] for o in outcomes],
        f"{stage}_status": [o[1] for o in outcomes],
        f"{stage}_reason": [o[2] for o in outcomes],
    }
    for name, values in columns.items():
        if name in table.column_names:
            table = table.drop_columns([name])
        table = table.append_column(name, pa.array(values, type=pa.string()))
    meta = dict(table.schema.metadata or {})
    meta[FINGERPRINTS_META] = json.dumps(fingerprints, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(path)
