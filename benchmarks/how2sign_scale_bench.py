"""How2Sign at its real cardinality: 1k, 10k and 35,263 clips through the item stages, one process each.

    python benchmarks/how2sign_scale_bench.py [--sizes 1000 10000 35263] [--loader-clips 35263] [--out FILE]

Per size, a fresh clone of this checkout gets a How2Sign-shaped dataset: the realigned CSVs (TAB, CRLF,
How2Sign's columns) with How2Sign's split proportions (train 31,165 : val 1,741 : test 2,357) and the
release's sentence groups (a SENTENCE_ID holds 1, 2 or 3 clips as 1,619 : 312 : 33 do in its test
split), one distinct clip per row (32x24 noise, 4 frames, H.264: a decoder does real work, the files
stay tiny), and ground-truth keypoints for each clip (keypoints.h5, groups hard-linked to a few shared
arrays). Then, each `seds` command in its own measured process (wall time, time per item, peak RSS of
the process and of each child, benchmarks/measured.py):
- manifest; probe (every clip hashed and decoded in the decoder child); gt_keypoints; select (the
  SEDS 49 from the pose store); each run again with nothing to do (the no-op `seds run`);
- planning alone (plan = keys for every row, and the reuse check against the store), per stage;
- pose and rgb: their reuse path (`seds run pose rgb` with every item stored: plan, reuse, views). The
  items are not computed by the models at this size on 2 CPU cores: pose's are the clip's ground-truth
  keypoints (gt_keypoints' items) stored under pose's keys, rgb's are copies of 16 clips' real I3D
  items (random weights) under rgb's keys; every such item says so in its provenance
  (`replicated_for_benchmark`). Select then computes on those pose items for real;
- train: opening the train split's clips through the views and the store (`load_clips`), the
  trainer's planning before its first step;
- the store's index and the views on disk, per stage;
- `dvc commit` of manifest, probe, extract and select, then a no-op `dvc repro select` (the deps of
  those stages include the data folder of every clip) and `dvc status`;
- 1% more clips (new rows in the train CSV): manifest, probe, gt_keypoints, pose + rgb (the real models
  on the new clips) and select run again; each must compute exactly the new items.
Finally the trainer's data loader read path over a store of `--loader-clips` items against one .npy per
array per clip at equal dtypes, page cache warm and dropped (benchmarks/store_bench.py's measurement).

The goals (issue 18): time per item at 35k within 1.2x of 1k; no-op `dvc repro` under 10 s and
planning under 5 s at 35k; peak RSS under 2 GiB; 1% more clips computes 1% of the items.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measured import measured  # noqa: E402
from pipeline.scratch import fresh_clone  # noqa: E402

HOW2SIGN_SPLITS = {"train": 31_165, "val": 1_741, "test": 2_357}
HOW2SIGN_CLIPS = sum(HOW2SIGN_SPLITS.values())  # 35,263
GROUP_SIZES = {1: 1_619, 2: 312, 3: 33}  # clips per sentence id, the release's data_h2/test.pkl
CLIP_FRAMES, CLIP_W, CLIP_H = 4, 32, 24
SUMMARY = re.compile(r"^(\w+)(?: shard \S+)?: (\d+) items: (\d+) computed, (\d+) reused.*?(\d+) failed", re.M)


# -- the dataset ------------------------------------------------------------------------------


def split_sizes(total: int) -> dict[str, int]:
    """How2Sign's split proportions at `total` clips (largest remainders, so they add up)."""
    exact = {s: total * n / HOW2SIGN_CLIPS for s, n in HOW2SIGN_SPLITS.items()}
    sizes = {s: math.floor(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - sizes[s], reverse=True)[: total - sum(sizes.values())]:
        sizes[s] += 1
    return sizes


def group_sizes(clips: int, rng: np.random.Generator) -> list[int]:
    """Sentence groups of 1-3 clips in the release's proportions, adding up to `clips`."""
    sizes, weights = np.array(list(GROUP_SIZES)), np.array(list(GROUP_SIZES.values()), dtype=float)
    out: list[int] = []
    while sum(out) < clips:
        out.append(min(int(rng.choice(sizes, p=weights / weights.sum())), clips - sum(out)))
    return out


def _render(job: tuple[str, int]) -> None:
    from pipeline.sample.layouts import write_mp4

    path, seed = job
    frames = np.random.default_rng(seed).integers(0, 256, (CLIP_FRAMES, CLIP_H, CLIP_W, 3), dtype=np.uint8)
    write_mp4(Path(path), frames, fps=24)


def render_clips(folder: Path, names: list[str], first_seed: int) -> float:
    """Distinct tiny clips (each its own noise), rendered on every core; returns the seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    jobs = [(str(folder / f"{name}.mp4"), first_seed + i) for i, name in enumerate(names)]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_render, jobs, chunksize=256))
    return time.perf_counter() - started


def how2sign_rows(total: int, seed: int, start: int = 0) -> dict[str, list[list[str]]]:
    """CSV rows per split: groups of clips sharing a SENTENCE_ID and a SENTENCE, How2Sign's name scheme."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[list[str]]] = {}
    clip = start
    for split, count in split_sizes(total).items():
        rows[split] = []
        for g, size in enumerate(group_sizes(count, rng)):
            video_id = f"v{seed:02d}{split[:2]}{clip:06d}"
            for k in range(size):
                name = f"{video_id}_{k}-1-rgb_front"
                rows[split].append(
                    [
                        video_id,
                        f"{video_id}-1-rgb_front",
                        f"{video_id}_0",
                        name,
                        "0.0",
                        "0.17",
                        f"sentence {seed}-{split}-{g} of the benchmark.",
                    ]
                )
                clip += 1
    return rows


def ground_truth(path: Path, names: list[str]) -> None:
    """keypoints.h5 as the sample writes it (/<sample_id>/{keypoints, scores}, one row per frame); the
    groups are hard links to 8 shared ones, so the file stays small at 35k clips."""
    import h5py

    rng = np.random.default_rng(0)
    mode = "a" if path.exists() else "w"
    with h5py.File(path, mode) as f:
        if "shared0" not in f:
            for s in range(8):
                group = f.create_group(f"shared{s}")
                kp = rng.uniform(2, CLIP_W - 2, (CLIP_FRAMES, 133, 2)).astype(np.float32)
                kp[..., 1] = rng.uniform(2, CLIP_H - 2, (CLIP_FRAMES, 133))
                group["keypoints"] = kp
                group["scores"] = rng.uniform(0.5, 1.0, (CLIP_FRAMES, 133)).astype(np.float32)
        for i, name in enumerate(names):
            if name not in f:
                f[name] = f[f"shared{i % 8}"]


def write_dataset(data: Path, rows: dict[str, list[list[str]]], seed_base: int) -> dict:
    from pipeline.sample.layouts import write_how2sign_csv

    names = [r[3] for split_rows in rows.values() for r in split_rows]
    seconds = render_clips(data / "sentence_clips", names, seed_base)
    for split, split_rows in rows.items():
        write_how2sign_csv(data / f"how2sign_realigned_{split}.csv", split_rows)
    ground_truth(data / "keypoints.h5", names)
    return {"clips": len(names), "render_s": round(seconds, 1)}


def params_for(project: Path) -> None:
    """The sample profile's params on the How2Sign-shaped data: select reads pose (as How2Sign's profile
    does), a synchronous runner (one process per command, as an array task), tiny pose and rgb work."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["runtime"].update(
        scheduler="synchronous", chunk_items=256, threads_per_worker=2, device="cpu", decoder="cpu"
    )
    params["data"].update(
        root="data/h2s",
        annotations=[
            {"format": "how2sign", "file": f"data/h2s/how2sign_realigned_{s}.csv", "split": s} for s in HOW2SIGN_SPLITS
        ],
    )
    params["select"].update(
        source="pose", gt_file="data/h2s/keypoints.h5", seds_frame=[CLIP_W, CLIP_H], seds_crop=CLIP_W
    )
    params["pose"].update(splits=None, frames="uniform", frames_value=2, flip_test=False)  # every split, as How2Sign's
    params["rgb"].update(window=4, num_windows=2, size=32, resize=36, batch_size=8)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# -- measuring ----------------------------------------------------------------------------------


def run_measured(*command: str) -> dict:
    record = measured(*command)
    record["summaries"] = {
        m[1]: {"items": int(m[2]), "computed": int(m[3]), "reused": int(m[4]), "failed": int(m[5])}
        for m in SUMMARY.finditer(record["output"])
    }
    return record


PLAN_BODY = """
def run():
    import time
    from pathlib import Path
    from pipeline.config import load_params
    from pipeline.runner.plan import ShardSpec, build_plan
    from pipeline.commands.item_stages import item_stage
    from pipeline.store.index import StageIndex
    params = load_params("params.yaml")
    out = {}
    for name in sys.argv[1:]:
        started = time.perf_counter()
        data_root = Path(params["data"].root)
        plan = build_plan(item_stage(name)(params), Path("manifests"), Path("cache"), data_root, ShardSpec())
        planned = time.perf_counter()
        index = StageIndex.load(plan.stage_dir)
        todo = [r for r in plan.requests
                if r.item_key not in index and index.failure_for(r.item_key, r.sample_id) is None]
        out[name] = {"plan_s": planned - started, "reuse_check_s": time.perf_counter() - planned,
                     "rows": len(plan.requests) + len(plan.blocked), "todo": len(todo)}
    print("EXTRA " + json.dumps({"planning": out}))
    return 0
"""

TRAIN_BODY = """
def run():
    import time
    from pathlib import Path
    from pipeline.config import load_params
    from pipeline.train.data import load_clips
    params = load_params("params.yaml")
    t = params["train"]
    started = time.perf_counter()
    clips = load_clips(Path("manifests"), Path("cache"), t.pose_view, t.rgb_views, "train", params)
    print("EXTRA " + json.dumps({"train_clips": len(clips.clips), "skipped": dict(clips.skipped),
                                 "load_clips_s": time.perf_counter() - started}))
    return 0
"""

REPLICATE_BODY = """
def run():
    # Store every pose and rgb item of the probe view without running the models (see the module
    # docstring): pose from gt_keypoints' item of the same clip, rgb from the 16 real items round robin.
    import time
    from pathlib import Path
    from pipeline.config import load_params
    from pipeline.runner.plan import ShardSpec, build_plan, read_view
    from pipeline.commands.item_stages import item_stage
    from pipeline.store import Item, ShardWriter, StageDir, StageIndex, StageReader
    params = load_params("params.yaml")
    started = time.perf_counter()
    gt_view, gt_fingerprints = read_view(Path("manifests"), "gt_keypoints")
    gt_rows = {r["sample_id"]: r["gt_keypoints_key"] for r in gt_view.to_pylist()}
    gt = StageReader(StageDir(Path("cache"), "gt_keypoints", gt_fingerprints["gt_keypoints"]))
    written = {}
    for name in ("pose", "rgb"):
        data_root = Path(params["data"].root)
        plan = build_plan(item_stage(name)(params), Path("manifests"), Path("cache"), data_root, ShardSpec())
        plan.stage_dir.create(plan.fingerprint)
        index = StageIndex.load(plan.stage_dir)
        real = [k for k in index.rows]
        reader = StageReader(plan.stage_dir, index=index)
        count = 0
        with ShardWriter(plan.stage_dir) as writer:
            for i, request in enumerate(plan.requests):
                if request.item_key in index:
                    continue
                source = (gt, gt_rows[request.sample_id]) if name == "pose" else (reader, real[i % len(real)])
                arrays = source[0].read(source[1])
                attrs = dict(source[0].attrs(source[1]))
                attrs.update({k: request.row[k] for k in ("width", "height") if k in attrs and k in request.row})
                origin = f"{'gt_keypoints' if name == 'pose' else 'rgb'}:{source[1]}"
                writer.add(Item(request.item_key, request.sample_id, arrays, attrs,
                                {"replicated_for_benchmark": origin}))
                count += 1
        written[name] = count
    print("EXTRA " + json.dumps({"replicated": written, "replicate_s": time.perf_counter() - started}))
    return 0
"""


def _dvc(project: Path, *args: str) -> tuple[float, str]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *args], cwd=project, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def _bytes(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def store_sizes(project: Path) -> dict[str, dict[str, int]]:
    out = {}
    for stage in ("probe", "gt_keypoints", "pose", "rgb", "select"):
        out[stage] = {
            "index_bytes": _bytes((project / "cache" / stage).glob("*/index/*.parquet")),
            "shards_bytes": _bytes((project / "cache" / stage).glob("*/shards/*.h5")),
            "view_bytes": _bytes([project / "manifests" / f"{stage}.parquet"]),
        }
    return out


def _stage(record: dict, stage: str) -> dict:
    summary = record["summaries"].get(stage, {})
    items = summary.get("items", 0)
    return {
        "seconds": round(record["seconds"], 2),
        "per_item_ms": round(1000 * record["seconds"] / items, 3) if items else None,
        "peak_rss_mib": record["peak_rss_mib"],
        "children_peak_rss_mib": record.get("children_peak_rss_mib", []),
        **summary,
    }


def one_size(work: Path, size: int) -> dict:
    """Every measurement of one size, in a project of its own under `work`."""
    project = fresh_clone(work / f"h2s-{size}")
    params_for(project)
    data = project / "data" / "h2s"
    rows = how2sign_rows(size, seed=size % 97)
    result: dict = {
        "size": size,
        "splits": {s: len(r) for s, r in rows.items()},
        "groups": dict(Counter(Counter(r[2] for rs in rows.values() for r in rs).values())),
        "dataset": write_dataset(data, rows, seed_base=size * 10),
    }
    os.chdir(project)
    stages: dict[str, dict] = {}
    stages["manifest"] = {"seconds": round(measured("manifest")["seconds"], 2)}
    for stage in ("probe", "gt_keypoints"):
        stages[stage] = _stage(run_measured("run", stage, "--no-progress"), stage)
        stages[stage]["noop"] = _stage(run_measured("run", stage, "--no-progress"), stage)
    sixteen = max(1, size // 16)  # one shard of about 16 clips: the real rgb items the others copy
    real = run_measured("run", "pose", "rgb", "--no-progress", "--shard", f"0/{sixteen}")
    result["real_pose_rgb_items"] = real["summaries"]
    replicated = measured(body=REPLICATE_BODY)
    result["replicated"] = {"items": replicated["replicated"], "seconds": round(replicated["replicate_s"], 1)}
    together = run_measured("run", "pose", "rgb", "--no-progress")
    stages["pose+rgb reuse"] = {**_stage(together, "pose"), "rgb": _stage(together, "rgb")}
    stages["select"] = _stage(run_measured("run", "select", "--no-progress"), "select")
    stages["select"]["noop"] = _stage(run_measured("run", "select", "--no-progress"), "select")
    planning = measured("probe", "gt_keypoints", "pose", "rgb", "select", body=PLAN_BODY)
    result["planning"] = {
        k: {m: round(v, 3) if isinstance(v, float) else v for m, v in p.items()}
        for k, p in planning["planning"].items()
    }
    result["planning_peak_rss_mib"] = planning["peak_rss_mib"]
    train = measured(body=TRAIN_BODY)
    stages["train planning"] = {
        "seconds": round(train["load_clips_s"], 2),
        "clips": train["train_clips"],
        "skipped": train["skipped"],
        "peak_rss_mib": train["peak_rss_mib"],
    }
    result["stages"] = stages
    result["sizes"] = store_sizes(project)
    commit_s, _ = _dvc(project, "commit", "-f", "manifest", "probe", "extract", "select")
    noop = [_dvc(project, "repro", "select")[0] for _ in range(2)]
    status_s, status = _dvc(project, "status", "select")
    result["dvc"] = {
        "commit_s": round(commit_s, 1),
        "noop_repro_s": [round(s, 2) for s in noop],
        "status_s": round(status_s, 2),
        "status": status.strip()[-300:],
    }
    result["grow"] = grow(project, data, rows, size, stages)
    return result


def grow(project: Path, data: Path, rows: dict[str, list[list[str]]], size: int, full: dict) -> dict:
    """1% more clips in the train split: each item stage must compute exactly those."""
    new = max(1, round(size / 100))
    extra = how2sign_rows(new, seed=size % 97 + 50, start=size)
    new_rows = [r for rs in extra.values() for r in rs]
    grown = {**rows, "train": rows["train"] + new_rows}
    names = [r[3] for r in new_rows]
    render_clips(data / "sentence_clips", names, size * 10 + 10_000_000)
    from pipeline.sample.layouts import write_how2sign_csv

    write_how2sign_csv(data / "how2sign_realigned_train.csv", grown["train"])
    ground_truth(data / "keypoints.h5", names)
    out = {"new_clips": len(names), "stages": {}}
    out["stages"]["manifest"] = {"seconds": round(measured("manifest")["seconds"], 2)}
    for stage in ("probe", "gt_keypoints"):
        out["stages"][stage] = _stage(run_measured("run", stage, "--no-progress"), stage)
    together = run_measured("run", "pose", "rgb", "--no-progress")
    out["stages"]["pose+rgb"] = {**_stage(together, "pose"), "rgb": _stage(together, "rgb")}
    out["stages"]["select"] = _stage(run_measured("run", "select", "--no-progress"), "select")
    for name, record in out["stages"].items():  # pose+rgb has no full run to compare with (see the docstring)
        base = full.get(name)
        if record.get("seconds") and base and base.get("seconds"):
            record["vs_full"] = round(record["seconds"] / base["seconds"], 3)
    return out


def loader(clips: int) -> dict:
    """store_bench.py's DataLoader read path at `clips` items, warm and dropped page cache."""
    import store_bench

    return store_bench.run(clips=clips, workers=2, repeats=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, HOW2SIGN_CLIPS])
    parser.add_argument("--loader-clips", type=int, default=HOW2SIGN_CLIPS, help="0: skip the loader measurement")
    parser.add_argument("--work", type=Path, help="keep the projects here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="h2s-scale-"))
    results: dict = {"sizes": [], "cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    old = os.getcwd()
    try:
        for size in args.sizes:
            results["sizes"].append(one_size(work, size))
            os.chdir(old)
            if args.out:
                args.out.write_text(json.dumps(results, indent=2) + "\n")
        if args.loader_clips:
            results["loader"] = loader(args.loader_clips)
    finally:
        os.chdir(old)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
