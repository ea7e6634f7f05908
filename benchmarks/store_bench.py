"""Store vs one .npy file per clip (as common extraction scripts write): size, and random-access read
throughput through a DataLoader as training reads it (several workers, shuffled).

    python benchmarks/store_bench.py [--clips 2000] [--workers 2] [--out results.json]

Both sides hold the same arrays: per clip, RGB features (64, 1024) and pose keypoints (T, 49, 2) with
scores (T, 49), T ~ 100. The store keeps them as the stages do (float16 features, float32
keypoints, lzf); the baseline as float32 .npy, one file per array per clip. Reads happen right after
writes, so both sides are served from the page cache (say so when quoting).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np


def synthetic_clip(i: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    t = 80 + i % 40
    walk = np.cumsum(rng.normal(0, 1.5, size=(t, 49, 2)), axis=0) + 128  # smooth like real trajectories
    return {"features": rng.normal(0, 1, size=(64, 1024)).astype(np.float32),
            "keypoints": walk.astype(np.float32), "scores": rng.random((t, 49)).astype(np.float32)}


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class StoreDataset:
    def __init__(self, reader, keys):
        self.reader, self.keys = reader, keys

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        arrays = self.reader.read(self.keys[i])
        return arrays["features"].astype(np.float32).sum() + arrays["keypoints"].sum()


class NpyDataset:
    def __init__(self, folder: Path, n: int):
        self.folder, self.n = folder, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        features = np.load(self.folder / f"clip{i:06d}_features.npy")
        keypoints = np.load(self.folder / f"clip{i:06d}_keypoints.npy")
        np.load(self.folder / f"clip{i:06d}_scores.npy")
        return features.sum() + keypoints.sum()


def read_rate(dataset, workers: int, epochs: int = 2) -> float:
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=32, shuffle=True, num_workers=workers,
                                         generator=torch.Generator().manual_seed(0), persistent_workers=workers > 0)
    best = 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        count = sum(len(batch) for batch in loader)
        best = max(best, count / (time.perf_counter() - start))
    return best


def run(clips: int = 2000, workers: int = 2, work: Path | None = None) -> dict:
    from pipeline.fingerprint import StageFingerprint
    from pipeline.store import Item, ShardWriter, StageDir, StageReader

    work = Path(work or tempfile.mkdtemp(prefix="store_bench_"))
    try:
        fp = StageFingerprint("bench", 1, {})
        stage_dir = StageDir(work / "store", "bench", fp.digest)
        stage_dir.create(fp)
        npy = work / "npy"
        npy.mkdir()
        start = time.perf_counter()
        with ShardWriter(stage_dir, max_items=256) as writer:
            for i in range(clips):
                a = synthetic_clip(i)
                writer.add(Item(f"k{i:06d}", f"clip{i}", {"features": a["features"].astype(np.float16),
                                                          "keypoints": a["keypoints"], "scores": a["scores"].astype(np.float16)}))
        store_write_s = time.perf_counter() - start
        start = time.perf_counter()
        for i in range(clips):
            for name, array in synthetic_clip(i).items():
                np.save(npy / f"clip{i:06d}_{name}.npy", array)
        npy_write_s = time.perf_counter() - start
        reader = StageReader(stage_dir)
        keys = sorted(reader.index.rows)
        store_rate = read_rate(StoreDataset(reader, keys), workers)
        npy_rate = read_rate(NpyDataset(npy, clips), workers)
        result = {
            "clips": clips, "workers": workers,
            "store_bytes": tree_bytes(stage_dir.path), "npy_bytes": tree_bytes(npy),
            "store_files": sum(1 for p in stage_dir.path.rglob("*") if p.is_file()),
            "npy_files": sum(1 for p in npy.iterdir()),
            "store_read_clips_per_s": store_rate, "npy_read_clips_per_s": npy_rate,
            "store_write_s": store_write_s, "npy_write_s": npy_write_s,
        }
        result["size_ratio"] = result["store_bytes"] / result["npy_bytes"]
        result["read_ratio"] = store_rate / npy_rate
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    result = run(args.clips, args.workers)
    print(f"store: {result['store_bytes'] / 2**20:.1f} MiB in {result['store_files']} files; "
          f"npy: {result['npy_bytes'] / 2**20:.1f} MiB in {result['npy_files']} files; size ratio {result['size_ratio']:.2f}")
    print(f"shuffled DataLoader ({args.workers} workers): store {result['store_read_clips_per_s']:.0f} clips/s, "
          f"npy {result['npy_read_clips_per_s']:.0f} clips/s; ratio {result['read_ratio']:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
