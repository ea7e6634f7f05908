"""The Parquet index of a stage fingerprint: one row per item, one row per failure.

Index parts are written by one writer each and published by atomic rename; the index is their union.
No lock guards them (store/writer.py says how a key is kept from being recorded twice, and what the
rare remaining duplicate costs: nothing, as every reader picks the same copy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.store.layout import StageDir, StoreError, published_files
from pipeline.store.records import Failure

ARRAY_TYPE = pa.struct(
    [
        ("name", pa.string()),
        ("offset", pa.int64()),  # first row of this item in the shard's dataset `name`
        ("length", pa.int64()),  # rows (first axis) of this item
        ("shape", pa.list_(pa.int64())),
        ("dtype", pa.string()),
        ("checksum", pa.string()),  # blake3 of the C-ordered bytes as stored
    ]
)

INDEX_SCHEMA = pa.schema(
    [
        ("item_key", pa.string()),
        ("sample_id", pa.string()),
        ("shard", pa.string()),
        ("arrays", pa.list_(ARRAY_TYPE)),
        ("attrs", pa.string()),  # JSON of small per-item values (fps, sizes, ...)
        ("provenance", pa.string()),  # JSON: inputs and timing of the computation; never part of a key
    ]
)

FAILURE_SCHEMA = pa.schema(
    [
        ("item_key", pa.string()),
        ("sample_id", pa.string()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("provenance", pa.string()),
    ]
)


def to_json(value: dict[str, Any]) -> str:
    """Stable JSON for attrs/provenance: sorted keys, numpy scalars as Python numbers, types kept."""
    return json.dumps(value, sort_keys=True, default=lambda v: v.item() if hasattr(v, "item") else str(v))


@dataclass
class IndexRow:
    item_key: str
    sample_id: str
    shard: str
    arrays: list[dict[str, Any]]
    attrs: dict[str, Any]
    provenance: dict[str, Any]
    part: str = ""

    def array(self, name: str) -> dict[str, Any]:
        for entry in self.arrays:
            if entry["name"] == name:
                return entry
        raise KeyError(
            f"item {self.item_key} ({self.sample_id}) has no array {name!r}; it has {[a['name'] for a in self.arrays]}"
        )


def rows_to_table(rows: Iterable[IndexRow]) -> pa.Table:
    rows = list(rows)
    return pa.table(
        {
            "item_key": [r.item_key for r in rows],
            "sample_id": [r.sample_id for r in rows],
            "shard": [r.shard for r in rows],
            "arrays": [r.arrays for r in rows],
            "attrs": [to_json(r.attrs) for r in rows],
            "provenance": [to_json(r.provenance) for r in rows],
        },
        schema=INDEX_SCHEMA,
    )


def failures_to_table(failures: Iterable[Failure]) -> pa.Table:
    failures = list(failures)
    return pa.table(
        {
            "item_key": [f.item_key for f in failures],
            "sample_id": [f.sample_id for f in failures],
            "reason": [f.reason for f in failures],
            "error": [f.error for f in failures],
            "provenance": [to_json(f.provenance) for f in failures],
        },
        schema=FAILURE_SCHEMA,
    )


class IndexRows(Mapping[str, IndexRow]):
    """item_key -> IndexRow over the published parts, decoded lazily, a part at a time.

    Opening reads each part's Parquet table but turns only its key column into Python; the first time
    a row is asked for, its whole part is decoded (nested array entries, JSON attrs) in one to_pylist,
    a fraction of the cost of decoding its rows one by one (which shuffled reads in fresh DataLoader
    workers paid for every clip of every epoch). So an index of tens of thousands of items opens in well under a second
    and a reader pays for the parts it reads from. A key recorded in two parts (two tasks that computed
    it at the same moment, see store/writer.py) is read from the part whose name sorts first, so every
    reader picks the same one.
    """

    def __init__(self) -> None:
        self._where: dict[str, tuple[int, int]] = {}  # key -> (part number, row in that part)
        self._parts: list[tuple[str, pa.Table]] = []
        self._decoded: set[int] = set()
        self._built: dict[str, IndexRow] = {}
        self.recorded_twice: set[str] = set()  # keys more than one part holds (see store/writer.py)

    def add_part(self, name: str, table: pa.Table) -> None:
        number = len(self._parts)
        self._parts.append((name, table))
        for i, key in enumerate(table.column("item_key").to_pylist()):
            held = self._where.get(key)
            if held is None:
                self._where[key] = (number, i)
                continue
            self.recorded_twice.add(key)
            if name < self._parts[held[0]][0]:  # a key recorded twice: the part first in name order wins,
                self._where[key] = (number, i)  # whatever order this reader met the parts in
                self._built.pop(key, None)

    def part_of(self, key: str) -> str:
        """The name of the index part this key is read from."""
        return self._parts[self._where[key][0]][0]

    def _decode(self, number: int) -> None:
        name, table = self._parts[number]
        for i, rec in enumerate(table.to_pylist()):
            key = rec["item_key"]
            if self._where[key] == (number, i):
                self._built[key] = _index_row(rec, name)
        self._decoded.add(number)

    def __getitem__(self, key: str) -> IndexRow:
        row = self._built.get(key)
        if row is None:
            self._decode(self._where[key][0])
            row = self._built[key]
        return row

    def __contains__(self, key: object) -> bool:
        return key in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def _build_all(self) -> dict[str, IndexRow]:
        for number in range(len(self._parts)):
            if number not in self._decoded:
                self._decode(number)
        return {key: self._built[key] for key in self._where}

    def items(self):
        return self._build_all().items()

    def values(self):
        return self._build_all().values()


@dataclass
class StageIndex:
    """The union of a fingerprint's index and failure parts, refreshed incrementally.

    Reading is by part file; `refresh()` only reads parts it has not seen, so the commit path stays
    cheap as a store grows to tens of thousands of items.
    """

    stage_dir: StageDir
    rows: IndexRows = field(default_factory=IndexRows)
    failures: dict[str, Failure] = field(default_factory=dict)  # by item_key, or "sample:<id>"
    _seen_parts: set[str] = field(default_factory=set)

    @classmethod
    def load(cls, stage_dir: StageDir) -> "StageIndex":
        index = cls(stage_dir)
        index.refresh()
        return index

    def refresh(self) -> "StageIndex":
        for part in published_files(self.stage_dir.index, ".parquet"):
            if part.name in self._seen_parts:
                continue
            self.rows.add_part(part.name, _read_part(part, INDEX_SCHEMA))
            self._seen_parts.add(part.name)
        for part in published_files(self.stage_dir.failures, ".parquet"):
            key = "failures/" + part.name
            if key in self._seen_parts:
                continue
            for failure in read_failure_part(part):
                self.failures[failure.item_key or f"sample:{failure.sample_id}"] = failure
            self._seen_parts.add(key)
        return self

    def __contains__(self, item_key: str) -> bool:
        return item_key in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def failure_for(self, item_key: str | None, sample_id: str) -> Failure | None:
        if item_key is not None and item_key in self.rows:
            return None  # a later success supersedes an earlier failure
        return self.failures.get(item_key) if item_key else self.failures.get(f"sample:{sample_id}")

    def records(self, failure: Failure) -> bool:
        """Whether `failure` is recorded already as it stands (same key or sample, reason and message):
        a rerun that meets the same bad input then adds no second row for it."""
        previous = self.failure_for(failure.item_key, failure.sample_id)
        return previous is not None and (previous.reason, previous.error) == (failure.reason, failure.error)


def _read_part(path: Path, schema: pa.Schema) -> pa.Table:
    try:
        return pq.read_table(path, schema=schema)
    except (pa.ArrowException, OSError) as err:
        raise StoreError(
            f"{path} is not a readable index part of this store: {err}; move it away (or restore it) "
            "and rerun the stage: its items count as missing and are recomputed"
        ) from err


def _index_row(rec: dict[str, Any], part: str) -> IndexRow:
    return IndexRow(
        item_key=rec["item_key"],
        sample_id=rec["sample_id"],
        shard=rec["shard"],
        arrays=rec["arrays"],
        attrs=json.loads(rec["attrs"]),
        provenance=json.loads(rec["provenance"]),
        part=part,
    )


def read_failure_part(path: Path) -> list[Failure]:
    table = _read_part(path, FAILURE_SCHEMA)
    return [
        Failure(
            sample_id=r["sample_id"],
            reason=r["reason"],
            error=r["error"],
            item_key=r["item_key"],
            provenance=json.loads(r["provenance"]),
        )
        for r in table.to_pylist()
    ]
