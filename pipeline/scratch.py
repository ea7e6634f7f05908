"""Throwaway projects built by hand, for the tests and the benchmarks (never used by a stage).

- `fresh_clone`: this checkout's tracked files, as they are in the working tree, in a new git
  repository: what a user gets from `git clone`, plus uncommitted edits (only in a source checkout);
- `write_csv_manifest`: a plain-CSV annotation file and a params.yaml that imports it.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]  # the checkout this package was imported from

BASE_RUNTIME = {
    "store": "cache",
    "manifests": "manifests",
    "scheduler": "synchronous",
    "workers": 1,
    "threads_per_worker": 1,
    "chunk_items": 4,
    "max_failures": 0,
    "decode_timeout_s": 60,
}


def fresh_clone(dest: Path) -> Path:
    """The tracked files of this checkout (its working-tree state) in a new git repository at `dest`."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout.split(b"\0")
    for name in filter(None, files):
        src = ROOT / name.decode()
        if src.is_file():
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    return dest


def write_csv_manifest(project: Path, rows: list[dict], root: str = "data", extra_params: dict | None = None) -> Path:
    """A plain-CSV annotation file plus a params.yaml that imports it (split 'test' unless a row says);
    `extra_params` sections update the written params key by key."""
    fields = ["sample_id", "video_path", "text", "split", "start_s", "end_s"]
    path = project / "annotations.csv"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in fields})
    params = {
        "runtime": dict(BASE_RUNTIME),
        "data": {"root": root, "annotations": [{"format": "csv", "file": "annotations.csv", "split": "test"}]},
    }
    for section, values in (extra_params or {}).items():
        params.setdefault(section, {}).update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return path
