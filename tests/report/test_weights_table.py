"""report.md's weights table over real stage outputs where every checkpoint is `random`, as issue 22's
tester ran the How2Sign profile: pose and two rgb feature sets computed over one decode per clip (the
extract stage), train reading the feature sets by name (`set:NAME`, no view), then evaluate. Each part
must say it was random: the feature sets once had no weights line at all."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from pipeline.cli import main
from pipeline.runner.plan import read_view
from pipeline.train.checkpoint import load_checkpoint
from tests_support import TINY_GRAPH_PARAMS

RANDOM_I3D = {"checkpoint": "random", "family": "bsl1k"}
RANDOM_RUN = {
    "pose": {**TINY_GRAPH_PARAMS["pose"], "checkpoint": "random"},
    "select": {"source": "pose", "normalisation": "none"},
    "rgb": {
        **TINY_GRAPH_PARAMS["rgb"],
        "feature_set": "aware",
        "feature_sets": {"aware": RANDOM_I3D, "agnostic": RANDOM_I3D},
    },
    "train": {
        **TINY_GRAPH_PARAMS["train"],
        "rgb_views": ["set:aware", "set:agnostic"],
        "epochs": 1,
        "select": "last",
        "pose_windows": "rgb_aligned",
        "clip_checkpoint": "random",
        "signbert_checkpoint": None,
    },
}


def _row(report: str, part: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith(f"| {part} |")]


@pytest.mark.slow
def test_every_random_part_is_named_random_in_the_weights_table(project, capsys):
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in RANDOM_RUN.items():
        params[section] = {**params.get(section, {}), **values}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (
        ["run", "pose", "rgb", "--used-feature-sets", "--no-progress"],
        ["run", "select", "--no-progress"],
        ["train", "--no-progress"],
        ["evaluate", "--set", "evaluate.figure_queries=0"],
    ):
        assert main(command) == 0, (command, capsys.readouterr())

    # train recorded the store folders it read; both random sets are one computation (one fingerprint).
    _, chain = read_view(project / "manifests", "rgb")
    inputs = load_checkpoint(project / "runs/train/model.pt")["inputs"]
    assert [(i["entry"], i["stage"]) for i in inputs] == [
        ("select", "select"),
        ("set:aware", "rgb"),
        ("set:agnostic", "rgb"),
    ]
    assert {i["fingerprint"] for i in inputs[1:]} == {chain["rgb"]}

    report = (project / "runs/evaluate/report.md").read_text()
    (pose,) = _row(report, "pose (RTMPose-WholeBody)")
    assert re.search(r"rtmpose-\w+.*: random \(explicit, checkpoint: random\)", pose), pose
    assert _row(report, "keypoints the model saw") == ["| keypoints the model saw | select of pose |"]
    i3d = f"(fingerprint `{chain['rgb'][:12]}`): I3D 'aware' random (explicit, checkpoint: random), family bsl1k"
    assert _row(report, "RGB features (I3D)") == [
        f"| RGB features (I3D) | set:aware {i3d} |",
        f"| RGB features (I3D) | set:agnostic {i3d} |",
    ]
    initial = " ".join(_row(report, "SEDS initial weights"))
    assert "train.clip_checkpoint: random" in initial and "hand GCN: random (no train.signbert_checkpoint" in initial

    # A checkpoint from before train recorded its inputs: a feature set's fingerprint is not guessed.
    from pipeline.config import load_params
    from pipeline.report.checkpoint_info import checkpoint_info
    from pipeline.report.run_report import write_run_report

    old = {k: v for k, v in checkpoint_info(project / "runs/train/model.pt").items() if k != "inputs"}
    report = write_run_report(load_params(project / "params.yaml"), project / "runs/evaluate", old).read_text()
    assert _row(report, "RGB features (I3D)")[0].startswith(
        "| RGB features (I3D) | set:aware: not recorded (the checkpoint predates train recording the fingerprints"
    )
    assert json.loads((project / "runs/evaluate/metrics.json").read_text())["selection"]["rule"] == "last"
