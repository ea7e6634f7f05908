"""`dvc repro` of the whole graph in a fresh clone (tiny sizes): every stage runs, a second repro does
nothing, a param change reruns exactly the stages that depend on it, and new clips are the only items
computed inside the item stages."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from tests_support import dvc, tiny_clone

GRAPH = ["sample@synthetic", "manifest", "probe", "extract", "gt_keypoints@sample", "select", "train", "evaluate"]


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '([\w@]+)'", output)


def set_param(project, section: str, key: str, value) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section][key] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.slow
def test_dvc_repro_full_graph_then_only_what_changed(tmp_path):
    project = tiny_clone(tmp_path / "clone")
    first = dvc(project, "repro")
    assert first.returncode == 0, first.stdout + first.stderr
    assert sorted(stages_run(first.stdout)) == sorted(GRAPH)
    for stage in ("probe", "gt_keypoints", "select", "rgb"):
        assert f"{stage}: 12 items: 12 computed, 0 reused, 0 failed" in first.stdout, stage
    # the sample's pose.splits: [test] (training reads ground truth): pose for the 4 test clips alone
    assert "pose: 12 items: 4 computed, 0 reused, 0 failed, 8 left out by its params" in first.stdout
    assert "decodes: 12 clip(s) decoded once each (4 for pose+rgb[default], 8 for rgb[default])" in first.stdout
    metrics = json.loads((project / "runs/evaluate/metrics.json").read_text())
    assert metrics["clips"] == 4 and set(metrics["t2v"]) >= {"R@1", "R@5", "R@10", "MedR"}

    again = dvc(project, "repro")
    assert again.returncode == 0 and stages_run(again.stdout) == [], again.stdout

    set_param(project, "train", "epochs", 3)  # a training knob: train and evaluate only
    retrain = dvc(project, "repro")
    assert retrain.returncode == 0, retrain.stdout + retrain.stderr
    assert stages_run(retrain.stdout) == ["train", "evaluate"]

    pose_view = (project / "manifests/pose.parquet").read_bytes()
    set_param(project, "rgb", "num_windows", 3)  # an rgb knob: rgb's items and what reads its features
    rgb = dvc(project, "repro")
    assert stages_run(rgb.stdout) == ["extract", "train", "evaluate"], rgb.stdout  # select is not rerun
    assert "pose: 12 items: 0 computed, 4 reused" in rgb.stdout
    assert "rgb: 12 items: 12 computed, 0 reused" in rgb.stdout
    assert "decodes: 12 clip(s) decoded once each (12 for rgb[default])" in rgb.stdout
    assert (project / "manifests/pose.parquet").read_bytes() == pose_view

    set_param(project, "sample", "sentences", 5)  # one more sentence = 3 new clips; the 12 old ones are reused
    grown = dvc(project, "repro")
    assert grown.returncode == 0, grown.stdout + grown.stderr
    for stage in ("probe", "gt_keypoints", "select", "rgb"):
        assert f"{stage}: 15 items: 3 computed, 12 reused, 0 failed" in grown.stdout, stage
    assert "pose: 15 items: 1 computed, 4 reused, 0 failed, 10 left out by its params" in grown.stdout
    assert "decodes: 3 clip(s) decoded once each (1 for pose+rgb[default], 2 for rgb[default])" in grown.stdout


def test_a_real_dataset_profile_has_no_sample_stages_in_dvc_status(tmp_path):
    """params.yaml's `graph` decides which optional stages dvc.yaml holds: under the How2Sign profile
    `dvc status` and `dvc repro` never speak of the sample or its ground-truth keypoints."""
    project = tiny_clone(tmp_path / "clone")
    listed = dvc(project, "stage", "list", "--names-only")
    assert listed.returncode == 0 and {"sample@synthetic", "gt_keypoints@sample"} <= set(listed.stdout.split())
    shutil.copy(project / "profiles/how2sign.yaml", project / "params.yaml")
    listed = dvc(project, "stage", "list", "--names-only")
    assert listed.stdout.split() == ["manifest", "probe", "select", "extract", "train", "evaluate"], listed.stdout
    status = dvc(project, "status")
    assert status.returncode == 0 and "sample" not in status.stdout and "gt_keypoints" not in status.stdout
    assert "manifest:" in status.stdout  # the stages it does run are reported (no data here yet)
