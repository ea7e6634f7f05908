"""Planning a run: which rows of the input view become which item keys, and which are this shard's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.fingerprint import StageFingerprint, hash_bytes, item_key
from pipeline.hashmemo import content_hashes, publish_memos
from pipeline.manifest.schema import ManifestError
from pipeline.runner.stage import ItemRequest, Stage
from pipeline.store.layout import StageDir
from pipeline.store.records import ItemFailed

FINGERPRINTS_META = b"seds.fingerprints"


@dataclass(frozen=True)
class ShardSpec:
    """`--shard I/N`: this task takes the rows whose sample_id hashes to I modulo N."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "ShardSpec":
        if not text:
            return cls()
        try:
            i, n = (int(v) for v in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/8") from None
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"--shard {text!r}: need 0 <= I < N")
        return cls(i, n)

    def owns(self, sample_id: str) -> bool:
        return self.count == 1 or int(hash_bytes(sample_id.encode())[:8], 16) % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass
class Blocked:
    """A row that cannot become a request: its upstream failed, or its file cannot be hashed (missing,
    not a regular file, unreadable)."""

    row: dict[str, Any]
    status: str  # "upstream_failed", "failed" or "skipped" (the stage's own params leave it out)
    reason: str
    error: str


@dataclass
class Plan:
    stage: Stage
    fingerprint: StageFingerprint
    stage_dir: StageDir
    view: pa.Table  # the input view (all rows, all shards)
    upstream_fingerprints: dict[str, str]
    requests: list[ItemRequest]  # this shard's rows that have a key
    blocked: list[Blocked]  # this shard's rows that do not
    shard: ShardSpec
    content_hash_column: list[str | None] | None = None  # set when this stage hashed the clips (probe): this
    # shard's rows, None for the others'


def view_path(manifests_dir: Path, stage: str) -> Path:
    return Path(manifests_dir) / f"{stage}.parquet"


def read_view(manifests_dir: Path, stage: str) -> tuple[pa.Table, dict[str, str]]:
    path = view_path(manifests_dir, stage)
    if not path.is_file():
        raise ManifestError(
            f"{path} does not exist: run the {stage} stage first (dvc repro {stage}, or seds run {stage})"
        )
    table = pq.read_table(path)
    meta = table.schema.metadata or {}
    return table, json.loads(meta.get(FINGERPRINTS_META, b"{}"))


def build_plan(stage: Stage, manifests_dir: Path, store_root: Path, data_root: Path, shard: ShardSpec) -> Plan:
    """Keys for this shard's rows. The first stage after the manifest hashes the clips itself: only the
    rows this shard owns and can compute, so an array task reads no clip of another task's."""
    view, upstream_fps = read_view(manifests_dir, stage.upstream)
    upstream_fp = upstream_fps.get(stage.upstream)
    fingerprint = stage.fingerprint(upstream_fp)
    rows = view.to_pylist()
    data_root = Path(data_root)
    owned = [i for i, row in enumerate(rows) if shard.owns(row["sample_id"])]
    ready = [
        i for i in owned if rows[i].get(f"{stage.upstream}_status", "ok") == "ok" and stage.skip_reason(rows[i]) is None
    ]
    hashed: dict[int, str | ItemFailed] | None = None
    if "content_hash" not in view.column_names:  # the first stage after the manifest hashes the clips
        digests = content_hashes([data_root / rows[i]["video_path"] for i in ready], store_root)
        publish_memos()
        hashed = dict(zip(ready, digests))
    requests, blocked = [], []
    for i in owned:
        row = rows[i]
        status = row.get(f"{stage.upstream}_status", "ok")
        if status != "ok":
            blocked.append(
                Blocked(
                    row,
                    "upstream_failed",
                    row.get(f"{stage.upstream}_reason") or status,
                    f"{stage.upstream} did not produce this item",
                )
            )
            continue
        skip = stage.skip_reason(row)
        if skip is not None:
            blocked.append(Blocked(row, "skipped", skip, f"{stage.name} leaves this clip out: {skip}"))
            continue
        content = hashed[i] if hashed is not None else row["content_hash"]
        path = data_root / row["video_path"]
        if isinstance(content, ItemFailed):  # missing, not a regular file, unreadable: never decoded
            blocked.append(Blocked(row, "failed", content.reason, content.message))
            continue
        key = item_key(stage.item_content(row, content), row["start_s"], row["end_s"], fingerprint.digest)
        requests.append(ItemRequest(row["sample_id"], key, path, row["start_s"], row["end_s"], content, row))
    hashes = None if hashed is None else [h if isinstance(h := hashed.get(i), str) else None for i in range(len(rows))]
    return Plan(
        stage,
        fingerprint,
        StageDir(Path(store_root), stage.name, fingerprint.digest),
        view,
        upstream_fps,
        requests,
        blocked,
        shard,
        hashes,
    )
