"""Write throughput of ShardWriter through its Python file object (`_ShardFile`, which keeps a failed
write such as ENOSPC away from HDF5) against HDF5's own sec2 driver, the naive way it wrote before.

    python benchmarks/store_write_bench.py [--clips 500] [--out results.json]

Same items on both sides (per clip: RGB features (64, 1024) float16, keypoints (T, 133, 2) float32,
scores (T, 133) float32, T ~ 100), lzf, 256 items per shard, fsync at publication. One run each.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_clip(i: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(i)
    t = 80 + i % 40
    walk = np.cumsum(rng.normal(0, 1.5, size=(t, 133, 2)), axis=0) + 128
    return {
        "features": rng.normal(0, 1, size=(64, 1024)).astype(np.float16),
        "keypoints": walk.astype(np.float32),
        "scores": rng.random((t, 133)).astype(np.float32),
    }


def write_rate(root: Path, clips: list[dict[str, np.ndarray]], sec2: bool) -> float:
    import h5py

    from pipeline.fingerprint import StageFingerprint
    from pipeline.store import Item, ShardWriter, StageDir

    class Sec2Writer(ShardWriter):
        """The writer as it was: HDF5 opens the temporary itself."""

        def _open_shard(self) -> None:
            self._tmp_path = self.stage_dir.shards / (".tmp-" + self._final_name())
            self._file = None
            self._h5 = h5py.File(self._tmp_path, "w", libver="latest")
            self._opened_at = time.monotonic()

        def flush(self) -> None:
            if self._h5 is not None:
                self._h5.close()
                self._h5 = None
                import os

                with open(self._tmp_path, "rb") as f:
                    os.fsync(f.fileno())
                final = self.stage_dir.shards / self._final_name()
                os.replace(self._tmp_path, final)
                self._publish_rows(final)
                self._seq += 1

    fp = StageFingerprint("bench", 1, {"sec2": sec2})
    stage_dir = StageDir(root, "bench", fp.digest)
    stage_dir.create(fp)
    start = time.perf_counter()
    with (Sec2Writer if sec2 else ShardWriter)(stage_dir, max_items=256) as writer:
        for i, arrays in enumerate(clips):
            writer.add(Item(f"k{i}", f"s{i}", arrays, {}, {}))
    return len(clips) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=500)
    parser.add_argument("--out")
    args = parser.parse_args()
    clips = [synthetic_clip(i) for i in range(args.clips)]
    work = Path(tempfile.mkdtemp(prefix="store_write_bench_"))
    try:
        sec2 = write_rate(work / "sec2", clips, sec2=True)
        fileobj = write_rate(work / "fileobj", clips, sec2=False)
    finally:
        shutil.rmtree(work)
    result = {
        "clips": args.clips,
        "sec2_items_per_s": round(sec2, 1),
        "shardfile_items_per_s": round(fileobj, 1),
        "ratio_shardfile_over_sec2": round(fileobj / sec2, 3),
    }
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
