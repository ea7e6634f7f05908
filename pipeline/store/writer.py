"""The one way anything is written to the store: append items to a private shard, publish atomically.

A writer owns its shard files outright (the writer id is unique per process and never reused), so no
two processes ever open one HDF5 file for writing. Items are appended to `shards/.tmp-<id>-<seq>.h5`;
when the shard is full (items or seconds) it is closed, fsynced and renamed to `<id>-<seq>.h5`, and
only then is its index part published, minus any keys another writer published meanwhile. Nothing
here takes a lock: stores live on NFS and cluster filesystems that may refuse them, and array tasks
must never wait on each other. A kill at any moment leaves only temporaries (never read; removed by
`cleanup_temporaries`) and loses at most the items of the open shard. A write that fails (disk full,
quota) abandons the open shard, removes its temporary and raises StoreWriteError: the store keeps
only complete, published shards.
"""

from __future__ import annotations

import errno
import io
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pyarrow.parquet as pq

from pipeline.fingerprint import hash_bytes
from pipeline.store.index import IndexRow, StageIndex, failures_to_table, rows_to_table
from pipeline.store.layout import (
    STALE_TEMPORARY_S,
    TMP_PREFIX,
    StageDir,
    StoreError,
    StoreWriteError,
    fsync_directory,
    new_writer_id,
    remove_dead_temporaries,
    write_then_publish,
)
from pipeline.store.records import Failure, Item

COMPRESSIONS = ("lzf", "gzip", "none")
_MIN_CHUNK_BYTES = 4 << 10  # below this, per-chunk bookkeeping outweighs the bytes a read saves
_MAX_CHUNK_BYTES = 1 << 20  # HDF5's default chunk cache per dataset
_COMPRESSION_PAYS = 0.5  # keep a filter only where it at least halves the bytes


def chunk_rows(first: np.ndarray) -> int:
    """Rows per HDF5 chunk of a shard's dataset: the first item's rows, kept within 4 KiB..1 MiB.

    HDF5 reads (and decompresses) whole chunks, so chunks about one item long make a random read of
    an item touch about two chunks no bigger than itself (64 KiB chunks made a 7 KiB scores read
    decompress up to 128 KiB)."""
    row_bytes = max(1, int(np.prod(first.shape[1:], dtype=np.int64)) * first.dtype.itemsize)
    rows = max(len(first), _MIN_CHUNK_BYTES // row_bytes)
    return max(1, min(rows, _MAX_CHUNK_BYTES // row_bytes))


def compression_pays(first: np.ndarray, rows: int, compression: str) -> bool:
    """Whether `compression` (with shuffle) stores the first item in at most half its bytes.

    Decompressing whole chunks was most of the cost of a random read from the page cache, while lzf
    barely shrinks float features, keypoints and scores (and shrinks frame indices, windows and masks
    many times); so a shard's dataset is compressed only where that pays. An empty first item cannot
    tell: it is compressed."""
    if not first.size:
        return True
    with h5py.File(io.BytesIO(), "w") as trial:
        dataset = trial.create_dataset(
            "trial", data=first, chunks=(min(rows, len(first)), *first.shape[1:]), compression=compression, shuffle=True
        )
        return dataset.id.get_storage_size() <= _COMPRESSION_PAYS * first.nbytes


def array_checksum(array: np.ndarray) -> str:
    return hash_bytes(np.ascontiguousarray(array).tobytes())


def _publish_parquet(table, final: Path) -> None:
    write_then_publish(final, lambda tmp: pq.write_table(table, tmp))


class _ShardFile(io.FileIO):
    """The open shard's file, handed to HDF5 as a Python file object so that a failed write stays ours.

    HDF5 that has seen a write fail (ENOSPC) cannot close the file any more and the process dies with a
    segfault (measured: h5py 3.16, HDF5 2.0, with its own driver and with a file object that raises).
    So a failed write is never reported to HDF5: the first error is kept in `failed`, this and later
    writes are dropped, and the writer checks `failed` after every item and before publishing, then
    throws the doomed shard away.
    """

    failed: OSError | None = None

    def write(self, data) -> int:
        if self.failed is None:
            try:
                return super().write(data)
            except OSError as err:
                self.failed = err
        return len(memoryview(data))

    def truncate(self, size: int | None = None) -> int:
        if self.failed is None:
            try:
                return super().truncate(size)
            except OSError as err:
                self.failed = err
        return size if size is not None else self.tell()


class ShardWriter:
    """Append items and failures; `close()` (or leaving the `with` block) publishes what is complete."""

    def __init__(
        self,
        stage_dir: StageDir,
        *,
        max_items: int = 256,
        max_seconds: float = 300.0,
        compression: str = "lzf",
        writer_id: str | None = None,
    ):
        if compression not in COMPRESSIONS:
            raise ValueError(f"store.compression must be one of {COMPRESSIONS}, got {compression!r}")
        if not stage_dir.exists():
            raise StoreError(f"{stage_dir.path} has no STAGE.json; create the stage directory first")
        self.stage_dir = stage_dir
        self.writer_id = writer_id or new_writer_id()
        self.max_items = max_items
        self.max_seconds = max_seconds
        self.compression = None if compression == "none" else compression
        self._seq = 0
        self._h5: h5py.File | None = None
        self._file: _ShardFile | None = None
        self._tmp_path: Path | None = None
        self._rows: list[IndexRow] = []
        self._failures: list[Failure] = []
        self._opened_at = 0.0
        self.published_items = 0
        self.dropped_duplicates = 0
        self._index = StageIndex(stage_dir)

    # -- items -------------------------------------------------------------------------------
    def add(self, item: Item) -> None:
        if self._h5 is None:
            self._open_shard()
        entries = []
        try:
            for name, array in item.arrays.items():
                entries.append(self._append(name, np.asarray(array), item))
        except Exception as err:
            self._raise_if_write_failed(err, adding=True)
            raise
        self._raise_if_write_failed(None, adding=True)
        self._rows.append(
            IndexRow(item.item_key, item.sample_id, self._final_name(), entries, item.attrs, item.provenance)
        )
        if len(self._rows) >= self.max_items or time.monotonic() - self._opened_at >= self.max_seconds:
            self.flush()

    def add_failure(self, failure: Failure) -> None:
        self._failures.append(failure)

    def _append(self, name: str, array: np.ndarray, item: Item) -> dict[str, Any]:
        if array.ndim == 0:
            raise ValueError(f"array {name!r} of {item.sample_id} is a scalar; put scalars in attrs")
        assert self._h5 is not None
        inner = array.shape[1:]
        if name not in self._h5:  # laid out by this shard's first item (see chunk_rows, compression_pays)
            rows = chunk_rows(array)
            compression = (
                self.compression if self.compression and compression_pays(array, rows, self.compression) else None
            )
            self._h5.create_dataset(
                name,
                shape=(0, *inner),
                maxshape=(None, *inner),
                dtype=array.dtype,
                chunks=(rows, *inner),
                compression=compression,
                shuffle=compression is not None,
            )
        dataset = self._h5[name]
        if dataset.shape[1:] != inner or dataset.dtype != array.dtype:
            raise ValueError(
                f"array {name!r} of {item.sample_id} has shape {array.shape} {array.dtype}, "
                f"but this shard holds {dataset.shape[1:]} {dataset.dtype} for {name!r}"
            )
        offset = dataset.shape[0]
        dataset.resize(offset + array.shape[0], axis=0)
        if array.shape[0]:
            dataset[offset:] = array
        return {
            "name": name,
            "offset": offset,
            "length": int(array.shape[0]),
            "shape": list(array.shape),
            "dtype": array.dtype.str,
            "checksum": array_checksum(array),
        }

    # -- shard life cycle --------------------------------------------------------------------
    def _final_name(self) -> str:
        return f"{self.writer_id}-{self._seq:05d}.h5"

    def _open_shard(self) -> None:
        self._tmp_path = self.stage_dir.shards / (TMP_PREFIX + self._final_name())
        try:
            self._file = _ShardFile(self._tmp_path, "w+")
            self._h5 = h5py.File(self._file, "w", libver="latest")
            self._h5.attrs["writer"] = self.writer_id
            self._h5.attrs["stage"] = self.stage_dir.stage
            self._h5.attrs["fingerprint"] = self.stage_dir.fingerprint
        except Exception as err:
            self._raise_if_write_failed(err)
            raise
        self._opened_at = time.monotonic()

    def _raise_if_write_failed(self, err: BaseException | None, adding: bool = False) -> None:
        """A failed write dooms the open shard: drop it (items of complete shards stay) and say why."""
        failed = self._file.failed if self._file is not None else None
        if failed is None and isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            failed = err
        if failed is None:
            return
        lost = len(self._rows) + adding  # the item being added is lost too
        path = self._tmp_path
        self.abandon()
        raise StoreWriteError.of(failed, path, lost) from (err or failed)

    def flush(self) -> None:
        """Publish the open shard and the pending failures (no-op when there is nothing)."""
        if self._h5 is not None:
            try:
                self._h5.flush()
                self._h5.close()
                self._h5 = None
                os.fsync(self._file.fileno())
            except Exception as err:
                self._raise_if_write_failed(err)
                raise
            self._raise_if_write_failed(None)
            self._file.close()
            self._file = None
            final = self.stage_dir.shards / self._final_name()
            os.replace(self._tmp_path, final)  # the file was fsynced above, inside the write-error handling
            fsync_directory(final.parent)
            try:
                self._publish_rows(final)
            except BaseException:
                final.unlink(missing_ok=True)  # its index part was not published: nothing references it
                self._rows = []
                raise
            self._seq += 1
        if self._failures:
            name = f"{self.writer_id}-f{self._seq:05d}.parquet"
            _publish_parquet(failures_to_table(self._failures), self.stage_dir.failures / name)
            self._failures = []
            self._seq += 1

    def _publish_rows(self, shard: Path) -> None:
        """Publish the shard's index part without any lock (the store may sit on a filesystem with none).

        Before: keys another writer published meanwhile are dropped from the part. After: the index is
        read again, and keys that a part first in name order also holds (published in the moment
        between this writer's check and its rename) are dropped by rewriting this writer's own part.
        Only two writers that computed one key at the same time (two tasks given the same shard) can
        still both keep it: then both copies are valid items of that key, every reader takes the one
        in the part first in name order, and `seds cache verify` counts such keys."""
        present = self._index.refresh()  # incremental: only parts published since the last look
        fresh = [r for r in self._rows if r.item_key not in present]
        self.dropped_duplicates += len(self._rows) - len(fresh)
        self._rows = []
        part = self.stage_dir.index / shard.with_suffix(".parquet").name
        if not fresh:  # another writer published every key of this shard first: nothing references it
            shard.unlink()
            return
        _publish_parquet(rows_to_table(fresh), part)
        self._index.refresh()
        kept = [r for r in fresh if self._index.rows.part_of(r.item_key) == part.name]
        if len(kept) < len(fresh):
            self.dropped_duplicates += len(fresh) - len(kept)
            if kept:
                _publish_parquet(rows_to_table(kept), part)
            else:
                part.unlink()
                shard.unlink()
        self.published_items += len(kept)

    def abandon(self) -> None:
        """Drop the open shard without publishing (used when its contents cannot be trusted)."""
        if self._h5 is not None or self._file is not None:
            try:
                if self._h5 is not None:
                    self._h5.close()
            except Exception:
                pass  # the shard is being thrown away; a close that fails changes nothing
            finally:
                self._h5 = None
                if self._file is not None:
                    self._file.close()
                    self._file = None
                self._tmp_path.unlink(missing_ok=True)
        self._rows = []

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Items already added are complete and valid even if the caller failed afterwards: keep them.
        try:
            self.flush()
        except Exception:
            self.abandon()
            if exc is None:
                raise


def cleanup_temporaries(stage_dir: StageDir, older_than_s: float = STALE_TEMPORARY_S) -> list[Path]:
    """Remove temporaries left by killed writers of a stage fingerprint (see `remove_dead_temporaries`)."""
    return remove_dead_temporaries(
        [stage_dir.shards, stage_dir.index, stage_dir.failures, stage_dir.path], older_than_s
    )
