"""The smoke runs (profiles/<dataset>-smoke.yaml for How2Sign, PHOENIX-2014T and CSL-Daily): each the
dataset's profile but for the keys it marks, from a fresh clone to evaluate with `dvc repro`, offline, on
the CPU, on clips the sample renderer writes in the dataset's own files.

The How2Sign run is the profile as shipped, full-size networks included. The three profiles share their
networks and differ in the data path (docs/datasets.md), so the PHOENIX-2014T and CSL-Daily runs keep
their data path as shipped and narrow the networks (NARROWED), which saves CI about ten minutes;
SEDS_FULL_SMOKE=1 runs them as shipped too."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time

import pyarrow.parquet as pq
import pytest
import yaml

from tests_support import ROOT, TINY_MODEL, dvc, fresh_clone

# What a smoke profile may change, and nothing else: data it can render offline, random weights (the
# documented offline choice), few clips, windows and steps, a 2-core machine's workers.
SMOKE_KEYS = {
    "runtime.threads_per_worker",
    "graph.sample",
    "sample",
    "data.root",
    "data.annotations",
    "pose.checkpoint",
    "select.seds_box_score",
    "rgb.feature_sets",
    "rgb.num_windows",
    "rgb.decoders",
    "train.steps",
    "train.num_workers",
    "train.clip_checkpoint",
    "train.batch_size",
    "train.epochs",
}


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and prefix.count(".") < 1:
            out.update(_flat(value, name + "."))
        else:
            out[name] = value
    return out


DATASETS = ("how2sign", "phoenix2014t", "csl_daily")
# What each smoke run renders: the sample layout, the frame size, and the decoder its clips need.
RENDERED = {
    "how2sign": ("how2sign", (1280, 720), "decord"),
    "phoenix2014t": ("phoenix2014t", (210, 260), "frames"),
    "csl_daily": ("csl_daily", (512, 512), "frames"),
}


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_smoke_profile_is_the_datasets_profile_but_for_the_keys_it_marks(dataset):
    smoke_text = (ROOT / f"profiles/{dataset}-smoke.yaml").read_text()
    smoke = _flat(yaml.safe_load(smoke_text))
    real = _flat(yaml.safe_load((ROOT / f"profiles/{dataset}.yaml").read_text()))
    changed = {k for k in smoke.keys() | real.keys() if smoke.get(k) != real.get(k)}
    assert {k.split(".")[0] if k.startswith("sample.") else k for k in changed} == SMOKE_KEYS
    marked = [line for line in smoke_text.splitlines() if "# SMOKE" in line and not line.startswith("#")]
    assert len(marked) >= 12  # each changed key (or its section) says so where it is set
    layout, size, _ = RENDERED[dataset]
    assert (smoke.get("sample.layout", "how2sign"), smoke["sample.width"], smoke["sample.height"]) == (layout, *size)


# The networks of the PHOENIX-2014T and CSL-Daily runs unless SEDS_FULL_SMOKE=1: the sample's pose model
# without flip test, and narrow SEDS towers; their data path (layout, frame size, keypoint rules, thinning,
# boxes, windows, grouping, protocol) stays as the profile ships it.
NARROWED = {
    "pose": {"model": "rtmpose-m_8xb64-270e_coco-wholebody-256x192", "flip_test": False},
    "train": TINY_MODEL,
}
FULL_SIZE = os.environ.get("SEDS_FULL_SMOKE") == "1"
# Runs its arguments and prints the peak RSS of their process tree's largest process: this run's alone (the
# pytest process's own RUSAGE_CHILDREN would keep an earlier run's peak).
PEAK_OF = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print(f'peak_rss_kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}', file=sys.stderr); "
    "sys.exit(code)"
)


def _smoke_params(project, dataset: str) -> str:
    """Write the dataset's smoke profile as the clone's params.yaml (narrowed, see NARROWED); say which."""
    if dataset == "how2sign" or FULL_SIZE:
        shutil.copy(project / f"profiles/{dataset}-smoke.yaml", project / "params.yaml")
        return "full-size networks"
    params = yaml.safe_load((project / f"profiles/{dataset}-smoke.yaml").read_text())
    for section, values in NARROWED.items():
        params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return "narrowed networks"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS)
def test_the_smoke_run_reaches_evaluate_from_a_fresh_clone(dataset, tmp_path, capsys):
    project = fresh_clone(tmp_path / "clone")
    networks = _smoke_params(project, dataset)
    started = time.monotonic()
    run = dvc(project, "repro", runner=(sys.executable, "-c", PEAK_OF))
    seconds = time.monotonic() - started
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    for stage in ("sample@synthetic", "manifest", "probe", "extract", "select", "train", "evaluate"):
        assert f"Running stage '{stage}'" in run.stdout, stage
    assert "gt_keypoints" not in run.stdout
    probe = pq.read_table(project / "manifests/probe.parquet").to_pylist()
    clips = len(probe)
    assert clips == (6 if dataset == "how2sign" else 8)
    rgb_lines = [line for line in run.stdout.splitlines() if line.startswith("rgb: ")]
    assert rgb_lines and rgb_lines[0].startswith(f"rgb: {clips} items: {clips} computed")
    assert len(rgb_lines) == 1  # one feature set: aware, the one train reads
    _, size, decoder = RENDERED[dataset]
    assert {(r["decoder"], r["width"], r["height"]) for r in probe} == {(decoder, *size)}  # the dataset's clip files
    metrics = json.loads((project / "runs/evaluate/metrics.json").read_text())
    assert metrics["split"] == "test" and metrics["grouping"].startswith("sentence_id")
    assert set(metrics["t2v"]) >= {"R@1", "R@5", "R@10", "MedR"} and metrics["selection"]["on_test"]
    report = (project / "runs/evaluate/report.md").read_text()
    assert report.count("random") >= 3  # pose, I3D and CLIP weights each said to be random
    # One copy of the weights (DVC links its cache entry, it does not copy it) and one resume state.
    model = project / "runs/train/model.pt"
    assert model.stat().st_nlink == 2 or os.path.islink(model)
    assert sorted(p.name for p in (project / "runs/train/checkpoints").iterdir()) == ["last.pt"]
    peak_gib = int(re.search(r"peak_rss_kib=(\d+)", run.stderr).group(1)) / 2**20
    disk_gib = sum(p.stat().st_size for p in project.rglob("*") if p.is_file() and not p.is_symlink()) / 2**30
    with capsys.disabled():
        print(
            f"\n{dataset} smoke run ({networks}): dvc repro {seconds:.0f} s, peak RSS of a stage {peak_gib:.1f} GiB, "
            f"project on disk {disk_gib:.1f} GiB (hard links counted once per name)"
        )
