"""Load: the probe stage over a manifest of many rows, through the real runner, with its memory bound.

    python benchmarks/load_bench.py [--rows 20000]

The manifest has `rows` rows pointing at 4 tiny clips (32x24, 50-53 frames) with distinct [start, end]
ranges, so every row is its own item key (as How2Sign's realigned ranges of shared videos are).
Reports: probe items/s through `seds run probe` (synchronous scheduler) beside the naive way
(count_decodable called in this process per row, no store, no child; measured on the first 500
rows), their ratio, the time to open the store index, and whether the view accounts for every row.
Then select at the same size: every row gets ground-truth keypoints (one HDF5 group per clip,
hard-linked under each sample id, so the file stays small), `seds run gt_keypoints` writes them in
the pose layout, and `seds run select` (the SEDS 49, seds normalisation) is timed over all rows.

Memory, per process: each `seds run` is its own process, which reports its own peak RSS and that of
each child it started (probe's decoder child), so the runner of probe, of gt_keypoints and of
select, and the decoder child are each measured alone (not the whole script's maximum).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measured import measured as _measured  # noqa: E402


def _write_project(root: Path, rows: int) -> None:
    import numpy as np

    from pipeline.sample.layouts import write_mp4
    from pipeline.scratch import write_csv_manifest

    (root / "data").mkdir()
    rng = np.random.default_rng(0)
    for c in range(4):  # noise, 32x24: the decoder works on every frame, the files stay tiny
        write_mp4(root / "data" / f"clip{c}.mp4", rng.integers(0, 256, (50 + c, 24, 32, 3), dtype=np.uint8), fps=25)
    manifest = []
    for i in range(rows):
        k = i // 4  # distinct bounds (whole ms, as keys round them) per clip: every row is its own item
        start_ms, end_ms = k % 1000, k % 1000 + 500 + k // 1000
        manifest.append(
            {
                "sample_id": f"row{i:06d}",
                "video_path": f"clip{i % 4}.mp4",
                "text": "t",
                "start_s": f"{start_ms / 1000:.3f}",
                "end_s": f"{end_ms / 1000:.3f}",
            }
        )
    write_csv_manifest(
        root,
        manifest,
        root="data",
        extra_params={"runtime": {"chunk_items": 512, "shard_items": 1024, "max_failures": 0}},
    )


def _ground_truth(path: Path, sample_ids: list[str]) -> None:
    """keypoints.h5 as the sample writes it: /<sample_id>/{keypoints (T,133,2), scores (T,133)} per row of
    clip i % 4 (T = its frame count); rows of one clip share its group through HDF5 hard links."""
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for c in range(4):
            frames = 50 + c
            group = f.create_group(f"clip{c}")
            group["keypoints"] = rng.uniform(0, 24, (frames, 133, 2)).astype(np.float32)
            group["scores"] = rng.uniform(0.5, 1, (frames, 133)).astype(np.float32)
        for i, sid in enumerate(sample_ids):
            f[sid] = f[f"clip{int(sid[3:]) % 4}"]


def _select_at_scale(read_view, sample_ids: list[str]) -> tuple[dict, dict, float]:
    """gt_keypoints' and select's measured runs over every row, and the seconds to open select's index."""
    from pipeline.store import StageDir, StageIndex

    _ground_truth(Path("data/keypoints.h5"), sample_ids)
    source = ["--set", "select.source=gt_keypoints", "--set", "select.gt_file=data/keypoints.h5"]
    gt = _measured("run", "gt_keypoints", "--no-progress", *source)
    select = _measured("run", "select", "--no-progress", *source)
    fingerprint = read_view(Path("manifests"), "select")[1]["select"]
    opened = time.perf_counter()
    StageIndex.load(StageDir(Path("cache"), "select", fingerprint))
    return gt, select, time.perf_counter() - opened


def run(rows: int = 20000) -> dict:
    """Build the project, run the manifest and probe stages, and return the figures."""
    from pipeline.cli import main
    from pipeline.runner.plan import read_view
    from pipeline.store import StageDir, StageIndex
    from pipeline.video.decode import count_decodable

    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_project(root, rows)
        os.chdir(root)
        try:
            assert main(["manifest"]) == 0
            probe = _measured("run", "probe", "--no-progress")
            view, fingerprints = read_view(Path("manifests"), "probe")
            opened = time.perf_counter()
            index = StageIndex.load(StageDir(Path("cache"), "probe", fingerprints["probe"]))
            index_open_s = time.perf_counter() - opened
            gt, select, select_index_s = _select_at_scale(read_view, view.column("sample_id").to_pylist())
            naive_rows = min(rows, 500)
            started = time.perf_counter()
            for i in range(naive_rows):
                count_decodable(Path("data") / f"clip{i % 4}.mp4")
            naive_s = time.perf_counter() - started
        finally:
            os.chdir(old)
        statuses = view.column("probe_status").to_pylist()
        stage_rate, naive_rate = rows / probe["seconds"], naive_rows / naive_s
        return {
            "rows": rows,
            "probe_s": round(probe["seconds"], 1),
            "probe_items_per_s": round(stage_rate, 1),
            "naive_items_per_s": round(naive_rate, 1),
            "ratio_stage_over_naive": round(stage_rate / naive_rate, 2),
            "index_open_s": round(index_open_s, 3),
            "index_items": len(index),
            "view_rows_ok": statuses.count("ok"),
            "gt_keypoints_items_per_s": round(rows / gt["seconds"], 1),
            "select_s": round(select["seconds"], 1),
            "select_items_per_s": round(rows / select["seconds"], 1),
            "select_index_open_s": round(select_index_s, 3),
            "peak_rss_mib": {
                "probe_runner": probe["peak_rss_mib"],
                "probe_decoder_child": max(probe["children_peak_rss_mib"], default=None),
                "gt_keypoints_runner": gt["peak_rss_mib"],
                "select_runner": select["peak_rss_mib"],
            },
            "probe_children": len(probe["children_peak_rss_mib"]),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    result = run(args.rows)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
