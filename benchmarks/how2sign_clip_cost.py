"""What one How2Sign clip costs through the How2Sign profile's item stages, on this machine: time, memory, disk.

    python benchmarks/how2sign_clip_cost.py [--clips 3] [--out FILE]

The clips are How2Sign-like (1280x720, 24 fps, 7 s: the sample renderer's HOW2SIGN_LIKE). The params are
profiles/how2sign.yaml's for probe, pose (RTMPose-WholeBody-l 384x288, flip test, thin 300 frames,
two-pass box), rgb (I3D, 64 windows of 16 frames at 224 px) and select, with two changes a machine
without the real files needs: every checkpoint is `random` (real architectures; the arithmetic is the
same as with the published weights) and select reads pose with seds_box_score 0 (random keypoint scores
are too low to give hands a box). `batch_size: auto` sizes the batches from the memory budget, as the
profile does. Each stage runs as `seds run` in its own measured process (benchmarks/measured.py):
seconds per clip, peak RSS of the stage process and of its children, and the bytes each stage stores
per clip (shards and index), from which the store for How2Sign's 35,263 clips follows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from measured import measured  # noqa: E402
from pipeline.sample.generate import how2sign_like_clips  # noqa: E402
from pipeline.scratch import write_csv_manifest  # noqa: E402

HOW2SIGN_CLIPS = 35_263
STAGES = (("probe",), ("pose", "rgb"), ("select",))


def profile_params(project: Path) -> None:
    profile = yaml.safe_load((ROOT / "profiles/how2sign.yaml").read_text())
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section in ("probe", "pose", "select", "rgb"):
        params[section] = dict(profile[section])
    params["pose"]["checkpoint"] = "random"
    params["rgb"]["feature_sets"] = {"aware": {"checkpoint": "random", "family": "bsl1k"}}
    params["select"].update(seds_box_score=0.0)
    params["runtime"].update(
        scheduler="synchronous", threads_per_worker=os.cpu_count(), device="cpu", decoder="cpu", max_failures=0
    )
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def stored_bytes(project: Path, stage: str) -> int:
    folder = project / "cache" / stage
    return sum(
        p.stat().st_size
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".h5", ".parquet") and not p.name.startswith(".tmp-") and "runs" not in p.parts
    )


def run(clips: int) -> dict:
    old = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        paths = how2sign_like_clips(project / "data", clips)
        write_csv_manifest(
            project, [{"video_path": str(p.relative_to(project / "data")), "text": p.stem} for p in paths], root="data"
        )
        profile_params(project)
        os.chdir(project)
        try:
            assert measured("manifest")["code"] == 0
            result: dict = {"clips": clips, "clip": "1280x720, 24 fps, 7 s", "cpus": os.cpu_count(), "stages": {}}
            for stage in STAGES:
                record = measured("run", *stage, "--no-progress")
                result["stages"]["+".join(stage)] = {
                    "seconds_per_clip": round(record["seconds"] / clips, 2),
                    "peak_rss_mib": record["peak_rss_mib"],
                    "children_peak_rss_mib": max(record["children_peak_rss_mib"], default=None),
                }
            result["bytes_per_clip"] = {
                stage: round(stored_bytes(project, stage) / clips) for stage in ("probe", "pose", "rgb", "select")
            }
        finally:
            os.chdir(old)
    total = sum(result["bytes_per_clip"].values())
    result["how2sign_store_gib"] = round(total * HOW2SIGN_CLIPS / 2**30, 1)
    result["how2sign_cpu_hours"] = round(
        sum(s["seconds_per_clip"] for s in result["stages"].values()) * HOW2SIGN_CLIPS / 3600, 1
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = run(args.clips)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
