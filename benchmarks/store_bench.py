"""Store vs one .npy file per array per clip (as common extraction scripts write), at equal dtypes:
size on disk, and random-access read throughput through a DataLoader as training reads it.

    python benchmarks/store_bench.py [--clips 2000] [--workers 2] [--repeats 5] [--compression lzf] [--out FILE]

Both sides hold the same arrays in the same dtypes: per clip, RGB features (64, 1024) float16 (what the
rgb stage stores), keypoints (T, 49, 2) float32 and scores (T, 49) float16, T 80..119. The store is
written as the stages write it (ShardWriter, 256 items per shard, `--compression` = runtime.compression).

Size: bytes as files report them and as the file system allocates them (one small file per array costs
whole blocks), and what each side keeps besides the arrays' bytes: the store's HDF5 metadata (less what
compression saves on arrays it compresses), its Parquet index (key, sample id, shard, per array offset,
shape, dtype and a blake3 checksum, attrs, provenance) and STAGE.json; the .npy headers.

Reads: each epoch is a fresh shuffled DataLoader (batch 32, `--workers` processes), as the trainer
builds one per epoch; an item is every array of one clip read into memory; timing starts at the first
batch. Two conditions, each repeated `--repeats`
times with the two sides alternating, reported as median and spread (min..max) in clips/s:
- warm: one untimed epoch per side first, so every file is in the page cache;
- cold: before each epoch the side's files are synced and dropped from the page cache
  (posix_fadvise POSIX_FADV_DONTNEED per file); the fraction still resident is checked with mincore
  and reported (a file system that ignores the advice, such as tmpfs, would make "cold" warm).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import mmap
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ARRAYS = ("features", "keypoints", "scores")


def synthetic_clip(i: int) -> dict[str, np.ndarray]:
    """One clip's arrays, deterministic in i, in the dtypes the stages store."""
    rng = np.random.default_rng(i)
    t = 80 + i % 40
    walk = np.cumsum(rng.normal(0, 1.5, size=(t, 49, 2)), axis=0) + 128  # smooth like real trajectories
    return {
        "features": rng.normal(0, 1, size=(64, 1024)).astype(np.float16),
        "keypoints": walk.astype(np.float32),
        "scores": rng.random((t, 49)).astype(np.float16),
    }


# -- writing both sides ------------------------------------------------------------------------


def write_store(stage_dir, clips: int, compression: str) -> None:
    from pipeline.store import Item, ShardWriter

    with ShardWriter(stage_dir, max_items=256, compression=compression) as writer:
        for i in range(clips):
            writer.add(Item(f"k{i:06d}", f"clip{i}", synthetic_clip(i)))


def npy_path(folder: Path, i: int, name: str) -> Path:
    return folder / f"clip{i:06d}_{name}.npy"


def write_npy(folder: Path, clips: int) -> None:
    for i in range(clips):
        for name, array in synthetic_clip(i).items():
            np.save(npy_path(folder, i, name), array)


# -- sizes -------------------------------------------------------------------------------------


def files_of(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def apparent_bytes(files: list[Path]) -> int:
    return sum(p.stat().st_size for p in files)


def allocated_bytes(files: list[Path]) -> int:
    """Bytes the file system allocates (st_blocks are 512-byte units on Linux)."""
    return sum(p.stat().st_blocks * 512 for p in files)


def payload_bytes(clips: int) -> int:
    """The arrays' own bytes, the same on both sides."""
    return sum(a.nbytes for i in range(clips) for a in synthetic_clip(i).values())


def store_sizes(stage_dir) -> dict[str, int]:
    shards, index = files_of(stage_dir.shards), files_of(stage_dir.index)
    everything = files_of(stage_dir.path)
    return {
        "store_bytes": apparent_bytes(everything),
        "store_allocated_bytes": allocated_bytes(everything),
        "store_files": len(everything),
        "store_shard_bytes": apparent_bytes(shards),
        "store_index_bytes": apparent_bytes(index),
        "store_other_bytes": apparent_bytes(everything) - apparent_bytes(shards) - apparent_bytes(index),
    }


# -- page cache --------------------------------------------------------------------------------


def drop_page_cache(files: list[Path]) -> None:
    """Write back, then ask the kernel to drop these files' cached pages (clean pages only go)."""
    os.sync()
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long)
_libc.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte))
_libc.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)


def resident_fraction(files: list[Path]) -> float:
    """Fraction of these files' pages in the page cache (mincore on a read-only mapping)."""
    resident = total = 0
    for path in files:
        size = path.stat().st_size
        if not size:
            continue
        pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
        fd = os.open(path, os.O_RDONLY)
        try:
            addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                raise OSError(ctypes.get_errno(), f"mmap of {path} failed")
            vec = (ctypes.c_ubyte * pages)()
            try:
                if _libc.mincore(addr, size, vec) != 0:
                    raise OSError(ctypes.get_errno(), f"mincore of {path} failed")
            finally:
                _libc.munmap(addr, size)
        finally:
            os.close(fd)
        resident += sum(v & 1 for v in vec)
        total += pages
    return resident / total if total else 0.0


# -- reading -----------------------------------------------------------------------------------


class StoreDataset:
    """Each item is one clip's arrays, read from the store (the DataLoader returns their byte count)."""

    def __init__(self, reader, keys: list[str]):
        self.reader, self.keys = reader, keys

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> int:
        return sum(a.nbytes for a in self.reader.read(self.keys[i]).values())


class NpyDataset:
    """Each item is one clip's arrays, read from its .npy files."""

    def __init__(self, folder: Path, n: int):
        self.folder, self.n = folder, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return sum(np.load(npy_path(self.folder, i, name)).nbytes for name in ARRAYS)


def epoch_rate(dataset, workers: int, seed: int) -> float:
    """Clips/s of one shuffled epoch through a fresh DataLoader, timed from its first batch on: worker
    start-up is the same on both sides and negligible in a real epoch (How2Sign: 35k clips)."""
    import torch

    loader = iter(
        torch.utils.data.DataLoader(
            dataset, batch_size=32, shuffle=True, num_workers=workers, generator=torch.Generator().manual_seed(seed)
        )
    )
    next(loader)
    start = time.perf_counter()
    count = sum(len(batch) for batch in loader)
    return count / (time.perf_counter() - start)


def spread(values: list[float]) -> dict[str, float | list[float]]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "all": values}


def measure(sides: dict[str, tuple[object, list[Path]]], workers: int, repeats: int, cold: bool) -> dict:
    """Alternate the sides for `repeats` rounds; in cold mode drop each side's files first."""
    rates: dict[str, list[float]] = {name: [] for name in sides}
    resident: dict[str, list[float]] = {name: [] for name in sides}
    if not cold:
        for dataset, _ in sides.values():  # untimed: page cache and imports warm
            epoch_rate(dataset, workers, seed=repeats)
    for r in range(repeats):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in order:
            dataset, files = sides[name]
            if cold:
                drop_page_cache(files)
                resident[name].append(resident_fraction(files))
            rates[name].append(epoch_rate(dataset, workers, seed=r))
    out = {name: spread(values) for name, values in rates.items()}
    first, second = list(sides)
    out["ratio"] = spread([a / b for a, b in zip(rates[first], rates[second])])
    out["ratio"]["of_medians"] = out[first]["median"] / out[second]["median"]
    if cold:
        out["resident_after_drop"] = {name: max(values) for name, values in resident.items()}
    return out


def run(
    clips: int = 2000, workers: int = 2, repeats: int = 5, compression: str = "lzf", work: Path | None = None
) -> dict:
    from pipeline.fingerprint import StageFingerprint
    from pipeline.store import StageDir, StageReader

    if work is not None:
        Path(work).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="store_bench_", dir=work))
    try:
        fp = StageFingerprint("bench", 1, {})
        stage_dir = StageDir(work / "store", "bench", fp.digest)
        stage_dir.create(fp)
        npy = work / "npy"
        npy.mkdir()
        start = time.perf_counter()
        write_store(stage_dir, clips, compression)
        store_write_s = time.perf_counter() - start
        start = time.perf_counter()
        write_npy(npy, clips)
        npy_write_s = time.perf_counter() - start
        npy_files = files_of(npy)
        sizes = {
            **store_sizes(stage_dir),
            "npy_bytes": apparent_bytes(npy_files),
            "npy_allocated_bytes": allocated_bytes(npy_files),
            "npy_files": len(npy_files),
            "payload_bytes": payload_bytes(clips),
        }
        # what each side keeps besides the arrays' bytes: HDF5 metadata and chunk padding, less what
        # compression saved (frame-like arrays); .npy headers
        sizes["store_shard_overhead_bytes"] = sizes["store_shard_bytes"] - sizes["payload_bytes"]
        sizes["npy_overhead_bytes"] = sizes["npy_bytes"] - sizes["payload_bytes"]
        reader = StageReader(stage_dir)
        keys = sorted(reader.index.rows)
        sides = {
            "store": (StoreDataset(reader, keys), files_of(stage_dir.path)),
            "npy": (NpyDataset(npy, clips), npy_files),
        }
        warm = measure(sides, workers, repeats, cold=False)
        cold = measure(sides, workers, repeats, cold=True)
        return {
            "clips": clips,
            "workers": workers,
            "repeats": repeats,
            "compression": compression,
            "dtypes": {name: str(a.dtype) for name, a in synthetic_clip(0).items()},
            **sizes,
            "size_ratio": sizes["store_bytes"] / sizes["npy_bytes"],
            "allocated_ratio": sizes["store_allocated_bytes"] / sizes["npy_allocated_bytes"],
            "warm": warm,
            "cold": cold,
            "store_write_s": store_write_s,
            "npy_write_s": npy_write_s,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _line(label: str, m: dict) -> str:
    def fmt(s):
        return f"{s['median']:.0f} ({s['min']:.0f}..{s['max']:.0f})"

    r = m["ratio"]
    return (
        f"{label}: store {fmt(m['store'])} clips/s, npy {fmt(m['npy'])} clips/s; store/npy per round "
        f"{r['median']:.2f} ({r['min']:.2f}..{r['max']:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="timed epochs per side and condition")
    parser.add_argument(
        "--compression",
        default="lzf",
        choices=("lzf", "gzip", "none"),
        help="the store's runtime.compression (default: %(default)s, the runtime default)",
    )
    parser.add_argument(
        "--work",
        type=Path,
        help="folder to make the temporary work folder in (default: the system's); it must be on a disk "
        "file system for the cold pass, not tmpfs",
    )
    parser.add_argument("--out")
    args = parser.parse_args()
    result = run(args.clips, args.workers, args.repeats, args.compression, args.work)
    mib = 2**20
    print(
        f"payload {result['payload_bytes'] / mib:.1f} MiB "
        f"({', '.join(f'{k} {v}' for k, v in result['dtypes'].items())}) "
        f"on both sides"
    )
    kib = 1024
    print(
        f"store: {result['store_bytes'] / mib:.1f} MiB in {result['store_files']} files, allocated "
        f"{result['store_allocated_bytes'] / mib:.1f} MiB; beyond the arrays: shards "
        f"{result['store_shard_overhead_bytes'] / kib:+.0f} KiB (HDF5 metadata, less what compression saved), index "
        f"{result['store_index_bytes'] / kib:.0f} KiB (key, sample, shard, per array offset/shape/dtype/blake3 "
        f"checksum, attrs, provenance), STAGE.json {result['store_other_bytes'] / kib:.1f} KiB"
    )
    print(
        f"npy: {result['npy_bytes'] / mib:.1f} MiB in {result['npy_files']} files, allocated "
        f"{result['npy_allocated_bytes'] / mib:.1f} MiB; beyond the arrays: headers "
        f"{result['npy_overhead_bytes'] / kib:.0f} KiB"
    )
    print(f"size store/npy {result['size_ratio']:.3f}, allocated {result['allocated_ratio']:.3f}")
    print(_line(f"warm page cache, {args.workers} workers", result["warm"]))
    resident = result["cold"]["resident_after_drop"]
    print(
        _line(f"cold page cache, {args.workers} workers", result["cold"])
        + f" [resident after drop: store {100 * resident['store']:.1f}%, npy {100 * resident['npy']:.1f}%]"
    )
    if max(resident.values()) > 0.05:
        print(
            "WARNING: the page cache kept these files after POSIX_FADV_DONTNEED (tmpfs?): the cold figures are not "
            "cold; pass --work on a disk file system"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
