"""Helpers for tests that build small projects by hand (not fixtures: plain functions)."""

from __future__ import annotations

import csv
from pathlib import Path

import yaml

BASE_RUNTIME = {"store": "cache", "views": "views", "scheduler": "synchronous", "workers": 1,
                "threads_per_worker": 1, "chunk_items": 4, "max_failures": 0, "decode_timeout_s": 60}


def write_csv_manifest(project: Path, rows: list[dict], root: str = "data", extra_params: dict | None = None) -> Path:
    """A plain-CSV annotation file plus a params.yaml that imports it (split 'test' unless a row says)."""
    fields = ["sample_id", "video_path", "text", "split", "start_s", "end_s"]
    path = project / "annotations.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    params = {"runtime": dict(BASE_RUNTIME), "data": {"root": root, "annotations": [
        {"format": "csv", "file": "annotations.csv", "split": "test"}]}}
    for section, values in (extra_params or {}).items():
        params.setdefault(section, {}).update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return path
