"""The manifest: one row per clip, typed, validated, stored as Parquet.

Columns (docs/data-model.md): sample_id (unique), video_path (relative to the data root: a video file
or a folder of frames), start_s / end_s (seconds; null = whole file), text, split, and free metadata
(gloss, signer, video_id, ... as strings). Importers hand rows here with their origin (file and line)
so every rejection names the file, row and column.
"""

from __future__ import annotations

import math
import posixpath
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import UserError

REQUIRED = ("sample_id", "video_path", "start_s", "end_s", "text", "split")
CORE_SCHEMA = pa.schema(
    [
        ("sample_id", pa.string()),
        ("video_path", pa.string()),
        ("start_s", pa.float64()),
        ("end_s", pa.float64()),
        ("text", pa.string()),
        ("split", pa.string()),
    ]
)


class ManifestError(UserError, ValueError):
    """A manifest row or file is unusable. The message names the file, row and column."""


@dataclass(frozen=True)
class Origin:
    """Where a row came from, for error messages: file and 1-based line (header = line 1)."""

    file: str
    line: int

    def at(self, column: str) -> str:
        return f"{self.file}, row {self.line}, column {column}"


def check_relative_path(path: str, where: str) -> str:
    """A video path must stay inside the data root: relative, no '..' escaping it. Returns it normalised."""
    if not path or not path.strip():
        raise ManifestError(f"{where}: empty video path")
    posix = path.replace("\\", "/")
    if posix.startswith("/") or PurePosixPath(posix).is_absolute() or (len(posix) > 1 and posix[1] == ":"):
        raise ManifestError(f"{where}: {path!r} is an absolute path; video paths are relative to data.root")
    normal = posixpath.normpath(posix)
    if normal == ".." or normal.startswith("../"):
        raise ManifestError(f"{where}: {path!r} escapes the data root ('..'); refusing it")
    return normal


def _float_or_none(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return float(value)


def validate_rows(rows: list[dict[str, Any]], origins: list[Origin], require_text: bool = True) -> list[dict[str, Any]]:
    """Check and normalise rows; raise ManifestError on the first bad one (file, row, column)."""
    seen: dict[str, Origin] = {}
    out = []
    for row, origin in zip(rows, origins):
        for column in REQUIRED:
            if column not in row:
                raise ManifestError(f"{origin.at(column)}: missing column {column!r}")
        sample_id = str(row["sample_id"] or "").strip()
        if not sample_id:
            raise ManifestError(f"{origin.at('sample_id')}: empty sample_id")
        if sample_id in seen:
            raise ManifestError(
                f"{origin.at('sample_id')}: duplicate sample_id {sample_id!r} "
                f"(first at {seen[sample_id].file}, row {seen[sample_id].line})"
            )
        seen[sample_id] = origin
        try:
            start, end = _float_or_none(row["start_s"]), _float_or_none(row["end_s"])
        except (TypeError, ValueError) as err:
            raise ManifestError(f"{origin.at('start_s/end_s')}: not a number ({err})") from None
        if start is not None and start < 0:
            raise ManifestError(f"{origin.at('start_s')}: negative start {start}")
        if start is not None and end is not None and end <= start:
            raise ManifestError(f"{origin.at('end_s')}: end {end} is not after start {start}")
        if (start is None) != (end is None):
            raise ManifestError(f"{origin.at('start_s/end_s')}: give both clip bounds or neither")
        text = row["text"]
        text = "" if text is None else str(text).strip()
        if require_text and not text:
            raise ManifestError(f"{origin.at('text')}: empty text for sample {sample_id!r}")
        split = str(row["split"] or "").strip()
        if not split:
            raise ManifestError(f"{origin.at('split')}: empty split")
        clean = dict(row)
        clean.update(
            sample_id=sample_id,
            video_path=check_relative_path(str(row["video_path"] or ""), origin.at("video_path")),
            start_s=start,
            end_s=end,
            text=text,
            split=split,
        )
        out.append(clean)
    return out


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Core columns typed; every other column stored as (nullable) strings."""
    extra = sorted({k for r in rows for k in r} - set(REQUIRED))
    columns = {name: pa.array([r.get(name) for r in rows], type=CORE_SCHEMA.field(name).type) for name in REQUIRED}
    for name in extra:
        columns[name] = pa.array([None if r.get(name) is None else str(r.get(name)) for r in rows], type=pa.string())
    return pa.table(columns)


def write_manifest(table: pa.Table, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_manifest(path: str | Path) -> pa.Table:
    """Read a manifest (or any stage view) and re-check its core invariants."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"manifest {path} does not exist; run the manifest stage first (dvc repro manifest)")
    table = pq.read_table(path)
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ManifestError(f"{path}: missing columns {missing}")
    ids = table.column("sample_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ManifestError(f"{path}: duplicate sample_id {dup!r}")
    return table


def concat_rows(parts: Iterable[tuple[list[dict[str, Any]], list[Origin]]]) -> tuple[list[dict], list[Origin]]:
    rows: list[dict] = []
    origins: list[Origin] = []
    for r, o in parts:
        rows.extend(r)
        origins.extend(o)
    return rows, origins
