"""Read items back: by key, lazily, from any process (DataLoader workers included).

HDF5 handles are opened on first use and re-opened after a fork (a handle inherited across fork is
not safe to use), so a reader can be built in the parent and used in workers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.store.index import IndexRow, StageIndex
from pipeline.store.layout import StageDir
from pipeline.store.writer import array_checksum


class CorruptItem(RuntimeError):
    """An item's bytes do not match its index row (checksum, bounds, shape or dataset)."""


_PLAIN_KINDS = "biuf"  # bool, ints, floats: what stages write; never objects, strings, references or compounds


def shard_problems(handle: h5py.File, stage_dir: StageDir, expected: set[str]) -> list[str]:
    """Why an open shard is not one our writer made for this stage: another stage's or fingerprint's
    file, or members we never write (groups, links to other files, virtual or externally stored data,
    non-numeric dtypes, datasets no index row names). Checked once per shard when reading with verify."""
    problems = []
    stage, fingerprint = handle.attrs.get("stage"), handle.attrs.get("fingerprint")
    if (stage, fingerprint) != (stage_dir.stage, stage_dir.fingerprint):
        problems.append(f"it belongs to {stage}/{fingerprint}, not {stage_dir.stage}/{stage_dir.fingerprint}")
    for name in handle:
        link = handle.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            problems.append(f"member {name!r} is a {type(link).__name__}")
            continue
        member = handle[name]
        if not isinstance(member, h5py.Dataset):
            problems.append(f"member {name!r} is a {type(member).__name__}, not a dataset")
        elif member.dtype.kind not in _PLAIN_KINDS or member.dtype.fields is not None:
            problems.append(f"dataset {name!r} has dtype {member.dtype}, not a plain number type")
        elif member.is_virtual or member.external:
            problems.append(f"dataset {name!r} keeps its data outside the shard")
        elif name not in expected:
            problems.append(f"dataset {name!r} is named by no index row")
    return problems


@dataclass(frozen=True)
class _Dataset:
    """A shard's dataset with what every read checks, looked up once: published shards never change,
    and each h5py property (dtype, shape) is a call into HDF5."""

    id: h5py.h5d.DatasetID
    dtype: np.dtype
    rows: int
    inner: tuple[int, ...]
    plain: bool
    space: h5py.h5s.SpaceID

    @classmethod
    def of(cls, handle: h5py.Dataset) -> "_Dataset":
        dtype = handle.dtype
        plain = dtype.kind in _PLAIN_KINDS and dtype.fields is None
        return cls(handle.id, dtype, int(handle.shape[0]), tuple(handle.shape[1:]), plain, handle.id.get_space())


class StageReader:
    def __init__(self, stage_dir: StageDir, index: StageIndex | None = None, verify: bool = False):
        self.stage_dir = stage_dir
        self.index = index or StageIndex.load(stage_dir)
        self.verify = verify
        self._handles: dict[str, h5py.File] = {}
        self._datasets: dict[tuple[str, str], _Dataset] = {}
        self._pid = os.getpid()
        self._untrusted: dict[str, str] = {}  # shard -> why it is refused (verify mode)
        self._names: dict[str, set[str]] | None = None

    def __contains__(self, item_key: str) -> bool:
        return item_key in self.index

    def row(self, item_key: str) -> IndexRow:
        try:
            return self.index.rows[item_key]
        except KeyError:
            raise KeyError(f"item {item_key} is not in {self.stage_dir.path}") from None

    def attrs(self, item_key: str) -> dict[str, Any]:
        return self.row(item_key).attrs

    def _file(self, shard: str) -> h5py.File:
        if os.getpid() != self._pid:  # forked: inherited handles must not be touched
            self._handles, self._datasets = {}, {}
            self._pid = os.getpid()
        handle = self._handles.get(shard)
        if handle is None:
            handle = h5py.File(self.stage_dir.shards / shard, "r", locking=False)  # stores sit on NFS without locks
            self._handles[shard] = handle
            if self.verify:
                if self._names is None:  # array names the index gives each shard, built once
                    self._names = {}
                    for r in self.index.rows.values():
                        self._names.setdefault(r.shard, set()).update(a["name"] for a in r.arrays)
                problems = shard_problems(handle, self.stage_dir, self._names.get(shard, set()))
                if problems:
                    self._untrusted[shard] = "; ".join(problems)
        return handle

    def read(self, item_key: str, names: list[str] | None = None, verify: bool | None = None) -> dict[str, np.ndarray]:
        row = self.row(item_key)
        verify = self.verify if verify is None else verify
        wanted = names if names is not None else [a["name"] for a in row.arrays]
        return {name: self._read_array(row, row.array(name), verify) for name in wanted}

    def _dataset(self, shard: str, name: str) -> _Dataset:
        if os.getpid() != self._pid:
            self._file(shard)  # forked: drops the inherited handles and datasets
        dataset = self._datasets.get((shard, name))
        if dataset is None:
            dataset = _Dataset.of(self._file(shard)[name])
            self._datasets[(shard, name)] = dataset
        return dataset

    def _where(self, row: IndexRow, entry: dict[str, Any]) -> str:
        """Where an item's array lives, for error messages (built only when one is raised)."""
        return (
            f"{self.stage_dir.shards / row.shard} (item {row.item_key}, sample {row.sample_id}, array {entry['name']})"
        )

    def _read_array(self, row: IndexRow, entry: dict[str, Any], verify: bool) -> np.ndarray:
        try:
            dataset = self._dataset(row.shard, entry["name"])
        except (OSError, KeyError) as err:
            raise CorruptItem(f"cannot open {self._where(row, entry)}: {err}") from err
        if row.shard in self._untrusted:
            raise CorruptItem(
                f"shard is not one of this store's at {self._where(row, entry)}: {self._untrusted[row.shard]}"
            )
        if not dataset.plain:
            raise CorruptItem(f"dtype {dataset.dtype} is not a plain number type at {self._where(row, entry)}")
        start, length, shape = entry["offset"], entry["length"], tuple(entry["shape"])
        if start + length > dataset.rows or dataset.inner != shape[1:] or shape[:1] != (length,):
            raise CorruptItem(
                f"index row points outside the shard's data at {self._where(row, entry)}: rows "
                f"{start}:{start + length} of {(dataset.rows, *dataset.inner)}"
            )
        if dataset.dtype.str != entry["dtype"]:
            raise CorruptItem(f"dtype {dataset.dtype.str} != indexed {entry['dtype']} at {self._where(row, entry)}")
        array = np.empty(shape, dtype=dataset.dtype)
        if length:
            # h5py's low-level hyperslab read: a random read of one item costs about half of
            # dataset[start:stop], which matters for shuffled training reads.
            file_space = dataset.space.copy()
            file_space.select_hyperslab((start,) + (0,) * (len(shape) - 1), shape)
            try:
                dataset.id.read(h5py.h5s.create_simple(shape), file_space, array)
            except OSError as err:  # damaged compressed chunks, a file cut short
                raise CorruptItem(f"cannot read {self._where(row, entry)}: {err}") from err
        if verify and array_checksum(array) != entry["checksum"]:
            raise CorruptItem(f"checksum mismatch at {self._where(row, entry)}")
        return array

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles, self._datasets, self._untrusted = {}, {}, {}

    def __enter__(self) -> "StageReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self):  # picklable for DataLoader workers: handles are not carried
        state = self.__dict__.copy()
        state["_handles"], state["_datasets"] = {}, {}
        return state


def open_stage(root: Path | str, stage: str, fingerprint: str, verify: bool = False) -> StageReader:
    return StageReader(StageDir(Path(root), stage, fingerprint), verify=verify)
