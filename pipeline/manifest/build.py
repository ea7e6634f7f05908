"""Build the manifest view from the `data` params: import every annotation file, validate, write."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from pipeline.manifest import importers
from pipeline.manifest.params import DataParams
from pipeline.manifest.schema import ManifestError, concat_rows, rows_to_table, validate_rows
from pipeline.manifest.seds_release import ReleaseClipDirs, import_seds_release


def _import(data: DataParams, fmt: str, file: Path, split: str) -> importers.Rows:
    if fmt == "how2sign":
        return importers.import_how2sign(
            file, split, data.how2sign_clips, data.how2sign_clips_dir, data.how2sign_videos_dir
        )
    if fmt == "phoenix":
        return importers.import_phoenix_parallel(file, split)
    if fmt == "phoenix_corpus":
        return importers.import_phoenix_corpus(file, split, data.phoenix_frames_dir)
    if fmt == "csl_daily":
        return importers.import_csl_daily(file, split, data.csl_frames_dir)
    if fmt == "seds_release":
        if data.how2sign_clips != "sentence_files":
            raise ManifestError(
                f"{file}: the SEDS release splits name How2Sign's sentence clips; "
                "data.how2sign_clips: ranges cannot serve them (set sentence_files)"
            )
        dirs = ReleaseClipDirs(data.how2sign_clips_dir, data.phoenix_frames_dir, data.csl_frames_dir)
        return import_seds_release(file, split, data.seds_release_text, dirs)
    return importers.import_plain_csv(file, split)


def import_annotation(data: DataParams, entry: dict) -> importers.Rows:
    """The rows of one data.annotations entry, each with `annotation_source` ("<format> <file>"), so the
    evaluation can say which annotation listed the clips of a split (metrics.json, report.md)."""
    fmt, file, split = entry["format"], Path(entry["file"]), entry["split"]
    rows, origins = _import(data, fmt, file, split)
    for row in rows:
        row["annotation_source"] = f"{fmt} {entry['file']}"
    return rows, origins


def build_manifest(data: DataParams) -> pa.Table:
    if not data.annotations:
        raise ManifestError("data.annotations is empty: name at least one annotation file in params.yaml")
    rows, origins = concat_rows(import_annotation(data, entry) for entry in data.annotations)
    if data.limit is not None:
        rows, origins = rows[: data.limit], origins[: data.limit]
    return rows_to_table(validate_rows(rows, origins, require_text=data.require_text))


def add_videos(root: Path, csv_path: Path, videos: list[Path], text: str, split: str) -> list[str]:
    """Link real videos from anywhere into <root>/extra/ and list them in a plain manifest CSV, so
    clips outside the data root (e.g. ../shared/testdata/videos) can join a manifest safely."""
    import csv

    extra = Path(root) / "extra"
    extra.mkdir(parents=True, exist_ok=True)
    existing = []
    if csv_path.is_file():
        with open(csv_path, newline="") as f:
            existing = list(csv.DictReader(f))
    added = []
    for video in videos:
        video = Path(video).resolve()
        if not video.exists():
            raise ManifestError(f"{video}: does not exist")
        link = extra / video.name
        if link.is_symlink() or link.exists():
            if link.resolve() != video:
                raise ManifestError(f"{link} already links to {link.resolve()}, not {video}; rename one of them")
        else:
            os.symlink(video, link)
        rel = f"extra/{video.name}"
        if not any(r["video_path"] == rel for r in existing):
            existing.append({"sample_id": rel, "video_path": rel, "text": text or video.stem, "split": split})
            added.append(rel)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["sample_id", "video_path", "text", "split"])
        writer.writeheader()
        writer.writerows(existing)
    return added
