"""train and evaluate on what the real stages write: sample -> manifest -> probe -> gt_keypoints -> select
and rgb (random I3D at 32 px), then `seds train` and `seds evaluate` through the CLI. Checks the data
contract between the stages and the trainer end to end, and that a held-out render of each sentence
is retrieved above chance."""

from __future__ import annotations

import json

import pytest
import yaml
from train_support import TINY_TRAIN

import pipeline.cli as cli

PARAMS = {
    "runtime": {
        "store": "cache",
        "manifests": "manifests",
        "scheduler": "synchronous",
        "workers": 1,
        "threads_per_worker": 1,
        "device": "cpu",
    },
    "sample": {
        "out": "data/sample",
        "sentences": 6,
        "renders": ["train", "train", "test"],
        "width": 160,
        "height": 120,
        "gloss_frames": 8,
        "min_glosses": 2,
        "max_glosses": 3,
        "seed": 1,
    },
    "data": {
        "root": "data/sample",
        "annotations": [
            {"format": "how2sign", "file": f"data/sample/how2sign_sample_{s}.csv", "split": s}
            for s in ("train", "test")
        ],
    },
    "select": {"source": "gt_keypoints"},
    "rgb": {"size": 32, "resize": 32, "window": 8, "num_windows": 8},
    "train": {
        **TINY_TRAIN,
        "steps": 8,
        "epochs": 30,
        "batch_size": 6,
        "val_split": None,
        "select": "last",
        "sampling": "clip",
        "lr_pose": 4e-3,
        "lr_clip": 1e-3,
        "lr_cgaf": 1e-3,
    },
    "evaluate": {"split": "test"},
}


@pytest.mark.slow
def test_train_and_evaluate_on_the_real_stage_outputs(tmp_path, chdir, capsys):
    chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    for command in (
        ["sample"],
        ["manifest"],
        ["run", "probe", "--no-progress"],
        ["run", "gt_keypoints", "--no-progress"],
        ["run", "select", "--no-progress"],
        ["run", "rgb", "--no-progress"],
        ["train", "--no-progress"],
        ["evaluate"],
    ):
        assert cli.main(command) == 0, command
    out = capsys.readouterr().out
    assert "train: 12 clips" in out and "step 60/60" in out
    metrics = json.loads((tmp_path / "runs/evaluate/metrics.json").read_text())
    assert metrics["clips"] == 6 and metrics["repeated_texts"] == 0
    chance = metrics["chance_R@1"]
    assert metrics["t2v"]["R@1"] >= 2 * chance and metrics["v2t"]["R@1"] >= 2 * chance, metrics
