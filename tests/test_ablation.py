"""`seds report ablation` over real `dvc exp run -S ...` experiments of the train and evaluate stages, in a
fresh clone holding the tiny sample project (its select and rgb views computed by the real stages)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from pipeline.cli import main
from pipeline.report.experiments import ablation_rows, format_markdown
from pipeline.report.paper_tables import format_tables
from tests_support import TINY_MODEL, TINY_PARAMS, dvc, fresh_clone

# The smallest train and evaluate that still run every module (narrow model, one epoch).
ABLATION_PARAMS = {
    **TINY_PARAMS,
    "select": {"source": "gt_keypoints"},
    "pose": {"frames": "uniform", "frames_value": 2, "flip_test": False},  # extract runs pose too (one decode)
    "rgb": {"size": 32, "resize": 32, "window": 4, "num_windows": 4, "batch_size": 16},
    "train": {
        **TINY_MODEL,
        "steps": 4,
        "batch_size": 4,
        "epochs": 1,
        "eval_every": 0,
        "select": "last",
        "preload": True,
    },
    "evaluate": {"figure_queries": 0},  # no figures: evaluate in seconds
}
UPSTREAM = ("sample", "manifest", "probe", "gt_keypoints", "select", "extract")  # of evaluate (select.source: gt)
METRIC_COLUMNS = ["T2V R@1", "T2V R@5", "T2V R@10", "T2V MedR", "V2T R@1", "V2T R@5", "V2T R@10", "V2T MedR"]


def _git(project, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def _ablation_clone(tmp_path, template, chdir):
    """The baseline commit: params, and dvc.lock recording the upstream stages as done (their outputs
    computed here by the real stages, then `dvc commit`), so an experiment reruns train and evaluate."""
    project = fresh_clone(tmp_path / "clone")
    params = yaml.safe_load((project / "params.yaml").read_text())
    for section, values in ABLATION_PARAMS.items():
        params[section] = {**params.get(section, {}), **values}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for folder in ("data", "manifests", "cache"):  # sample, manifest and probe of the session's tiny project
        shutil.copytree(template / folder, project / folder, symlinks=True, dirs_exist_ok=True)
    chdir(project)
    for stage in ("gt_keypoints", "select"):
        assert main(["run", stage, "--no-progress"]) == 0, stage
    assert main(["run", "pose", "rgb", "--no-progress", "--used-feature-sets"]) == 0  # dvc.yaml's extract stage
    done = dvc(project, "commit", "-f", *UPSTREAM)
    assert done.returncode == 0, done.stdout + done.stderr
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "baseline")
    return project


def _exp_ref(project, name: str) -> str:
    refs = subprocess.run(
        ["git", "for-each-ref", "refs/exps", "--format=%(refname)"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    (ref,) = [r for r in refs if r.endswith(f"/{name}")]
    return ref


@pytest.mark.slow
def test_report_ablation_tables_two_dvc_experiments(tmp_path, tiny_project_template, chdir, capsys):
    project = _ablation_clone(tmp_path, tiny_project_template, chdir)
    experiments = {
        "no-cgaf": ["-S", "train.cgaf_layers=0"],
        "hand-body-lr": ["-S", "train.lr_pose=0.01", "-S", "train.lr_cgaf=0.0005"],
    }
    for name, sets in experiments.items():
        done = dvc(project, "exp", "run", "evaluate", "-n", name, *sets)
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.findall(r"Running stage '([\w@]+)'", done.stdout) == ["train", "evaluate"], done.stdout
        _git(project, "checkout", "params.yaml")  # the next experiment starts from the baseline again

    capsys.readouterr()
    assert main(["report", "ablation", "--out", "ablation.md"]) == 0
    out = capsys.readouterr()
    first, tables = out.out.split("## The paper's tables")
    lines = first.strip().splitlines()
    assert lines[0] == "| experiment | changed params | " + " | ".join(METRIC_COLUMNS) + " |"
    body = {line.split(" | ")[0].strip("| "): line for line in lines[2:]}
    assert set(body) == set(experiments)
    assert "| train.cgaf_layers=0 |" in body["no-cgaf"]
    assert "| train.lr_cgaf=0.0005, train.lr_pose=0.01 |" in body["hand-body-lr"]
    assert "### Table 5: CGAF layers" in tables and "| 0 layer(s) (w/o CGAF) | no-cgaf |" in tables
    assert "### Figure 3:" in tables and "| lr_pose 0.01, lr_cgaf 0.0005 | hand-body-lr |" in tables
    assert "2 experiment(s) with metrics" in out.err
    assert (project / "ablation.md").read_text().strip() == out.out.strip()

    # The figures are the experiments' own metrics files, as DVC kept them with each experiment.
    for name in experiments:
        metrics = json.loads(
            subprocess.run(
                ["git", "show", f"{_exp_ref(project, name)}:runs/evaluate/metrics.json"],
                cwd=project,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        cells = [c.strip() for c in body[name].strip("|").split("|")][2:]
        expected = [metrics[d][k] for d in ("t2v", "v2t") for k in ("R@1", "R@5", "R@10", "MedR")]
        assert cells == [f"{v:.1f}" for v in expected], name


def _entry(rev: str, params: dict, metrics: dict | None, name: str | None = None) -> dict:
    files = {
        "runs/evaluate/metrics.json": {"data": metrics}
        if metrics
        else {"error": {"type": "FileNotFoundError", "msg": "no such file"}}
    }
    return {
        "rev": rev,
        "name": name,
        "data": {
            "rev": rev,
            "timestamp": f"2026-01-01T00:00:0{rev[-1]}",
            "params": {"params.yaml": {"data": params}},
            "metrics": files,
        },
    }


def test_ablation_rows_count_unfinished_and_show_removed_params():
    """The parts of `dvc exp show --json` a two-experiment run does not produce: a baseline with metrics,
    an experiment that failed before evaluate, a param an experiment removed."""
    scores = {
        "t2v": {"R@1": 12.5, "R@5": 50, "R@10": 75, "MedR": 6},
        "v2t": {"R@1": 25, "R@5": 50, "R@10": 100, "MedR": 3.5},
    }
    base = {"train": {"cgaf_layers": 2, "signbert_checkpoint": "signbert.pth"}, "select": {"parts": ["body", "hand"]}}
    commit = _entry("aaaaaaa1", base, scores, "main")
    commit["experiments"] = [
        {
            "name": "no-signbert",
            "revs": [_entry("bbbbbbb2", {"train": {"cgaf_layers": 2}, "select": base["select"]}, scores)],
        },
        {
            "name": "crashed",
            "revs": [_entry("ccccccc3", {"train": {"cgaf_layers": 9}, "select": base["select"]}, None)],
        },
        {
            "name": "face",
            "revs": [
                _entry("ddddddd4", {"train": base["train"], "select": {"parts": ["body", "hand", "face"]}}, scores)
            ],
        },
    ]
    rows, unfinished = ablation_rows([{"rev": "workspace", "name": None, "data": {}}, commit])
    assert [r.experiment for r in rows] == ["main", "no-signbert", "face"] and unfinished == 1
    assert rows[1].changed == {"train.signbert_checkpoint": None}
    table = format_markdown(rows).splitlines()
    assert table[2] == "| main | (baseline) | 12.5 | 50.0 | 75.0 | 6.0 | 25.0 | 50.0 | 100.0 | 3.5 |"
    assert table[3].startswith("| no-signbert | train.signbert_checkpoint=null | 12.5")
    assert table[4].startswith('| face | select.parts=["body","hand","face"] | 12.5')


def test_paper_tables_place_each_experiment_by_what_it_changed():
    scores = {
        "t2v": {"R@1": 12.5, "R@5": 50, "R@10": 75, "MedR": 6},
        "v2t": {"R@1": 25, "R@5": 50, "R@10": 100, "MedR": 3.5},
    }
    base = {
        "train": {
            "cgaf_layers": 2,
            "batch_size": 128,
            "variant": "seds",
            "signbert_checkpoint": "s.pth",
            "parts": ["hand", "body"],
        },
        "select": {"parts": ["body", "hand"]},
    }
    commit = _entry("aaaaaaa1", base, scores, "main")
    commit["experiments"] = [
        {
            "name": "cgaf-4",
            "revs": [_entry("bbbbbbb2", {**base, "train": {**base["train"], "cgaf_layers": 4}}, scores)],
        },
        {
            "name": "pose-only-random",
            "revs": [
                _entry(
                    "ccccccc3",
                    {**base, "train": {**base["train"], "variant": "pose_only", "signbert_checkpoint": None}},
                    scores,
                )
            ],
        },
        {
            "name": "face",
            "revs": [
                _entry(
                    "ddddddd4",
                    {
                        "train": {**base["train"], "parts": ["hand", "body", "face"]},
                        "select": {"parts": ["body", "hand", "face"]},
                    },
                    scores,
                )
            ],
        },
        {
            "name": "two-things",
            "revs": [
                _entry("eeeeeee5", {**base, "train": {**base["train"], "cgaf_layers": 1, "batch_size": 16}}, scores)
            ],
        },
    ]
    rows, _ = ablation_rows([commit])
    tables = format_tables(rows)
    section = {"### " + block.splitlines()[0]: block for block in tables.split("### ")[1:]}
    cgaf = section["### Table 5: CGAF layers"]
    assert (
        "| 2 layer(s) | main | 12.5 | 50.0 | 75.0 | 62.5 | 75.1 | 80.1 | 25.0 | 50.0 | 100.0 | 57.9 | 70.4 | 74.9 |"
        in cgaf
    )
    assert "| 4 layer(s) | cgaf-4 | 12.5 | 50.0 | 75.0 | n/a | n/a | n/a |" in cgaf and "two-things" not in tables
    init = section["### Table 3: SignBERT initialisation of the hand GCN"]
    assert "| Pose-only, without SignBERT init | pose-only-random |" in init
    assert "| SEDS, with SignBERT init | main | 12.5 | 50.0 | 75.0 | 62.5 |" in init
    assert "| hand + body + face | face |" in section["### Table 4: body parts the Pose encoder sees"]
    assert "cgaf-4" not in section["### Table 6: batch size"]
