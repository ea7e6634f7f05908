"""Content hashes, stage fingerprints and item keys: the addresses of everything in the store.

The rules (docs/cache-format.md):
- a file's content hash is blake3 over its bytes; paths and mtimes never enter a key, so moving or
  renaming a data root keeps every cache entry valid;
- a stage fingerprint hashes the stage name, its VERSION, the canonical JSON of the params that change
  its output, the content hashes of model configs and checkpoints, and the upstream fingerprint;
  batch size, worker count, device and shard count are deliberately left out;
- an item key hashes (content hash, clip bounds, stage fingerprint).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import blake3

KEY_HEX_CHARS = 32  # 128-bit keys: collision-free at any dataset size we will see
_READ_CHUNK = 8 << 20


def hash_bytes(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()[:KEY_HEX_CHARS]


def hash_file(path: str | os.PathLike) -> str:
    """blake3 of a file's bytes, streamed (multi-GB videos never sit in memory)."""
    hasher = blake3.blake3()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()[:KEY_HEX_CHARS]


def _canonical(value: Any) -> Any:
    """Normalise values so equal params hash equally (tuples == lists, 1.0 == 1, paths as text)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return repr(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _canonical(value.item())
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hash_json(value: Any) -> str:
    return hash_bytes(canonical_json(value).encode())


@dataclass(frozen=True)
class StageFingerprint:
    """Everything that decides what a stage writes, in clear text (it becomes STAGE.json).

    `params` holds only output-changing params; `artifacts` maps a role ("checkpoint", "config")
    to the content hash of the file, or to an explicit non-file choice such as "random".
    """

    stage: str
    version: int
    params: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)
    upstream: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "version": self.version,
            "params": _canonical(self.params),
            "artifacts": _canonical(self.artifacts),
            "upstream": self.upstream,
        }

    @property
    def digest(self) -> str:
        return hash_json(self.as_record())


def clip_bounds(start_s: float | None, end_s: float | None) -> list[float | None]:
    """Clip bounds as they enter keys: milliseconds, so 1.2300000001 and 1.23 are one clip."""
    return [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v) * 1000) / 1000
        for v in (start_s, end_s)
    ]


def item_key(content_hash: str, start_s: float | None, end_s: float | None, fingerprint: str) -> str:
    return hash_json({"content": content_hash, "bounds": clip_bounds(start_s, end_s), "stage": fingerprint})
