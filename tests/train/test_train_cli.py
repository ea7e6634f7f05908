"""The train and evaluate stages through their CLI on a tiny store; learnability; the efficiency report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from train_support import build_store, write_project_params

import pipeline.cli as cli
from pipeline.train.groups import sentence_groups
from pipeline.train.metrics import grouped_metrics, retrieval_metrics


@pytest.mark.slow
def test_train_then_evaluate_learns_from_pose_alone(tmp_path, chdir, capsys):
    """RGB features are pure noise here, so retrieval above chance must come through the Pose encoder
    (the fused stream can memorise the training clips' noise, so its bar is lower). Every clip is visited
    each epoch (sampling: clip): the authors' one clip per sentence halves this tiny training set."""
    chdir(tmp_path)
    build_store(tmp_path, sentences=12, rgb_signal=0.0)
    write_project_params(
        tmp_path,
        {"epochs": 40, "eval_every": 20, "sampling": "clip", "lr_pose": 4e-3, "lr_clip": 1e-3, "lr_cgaf": 1e-3},
        {"split": "test"},
    )
    assert cli.main(["train", "--no-progress"]) == 0
    out = capsys.readouterr().out
    # 24 training clips in batches of 8: 3 steps an epoch
    assert "step 120/120" in out and "random (explicit, train.clip_checkpoint: random" in out
    assert "model.pt = epoch" in out and "(val)" in out
    assert cli.main(["evaluate"]) == 0
    assert "evaluate: test, 12 clips" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "runs/evaluate/metrics.json").read_text())
    chance = metrics["chance_R@1"]
    assert chance == pytest.approx(100 / 12) and metrics["protocol"] == "authors"
    pose = metrics["streams"]["pose"]
    assert pose["t2v"]["R@1"] >= 4 * chance and pose["v2t"]["R@1"] >= 4 * chance, metrics
    # The fused stream also memorises the RGB noise of the 24 training clips: on 12 test clips its V2T R@1
    # swings with the augmentation draws (8.3, 58.3, 41.7 % for seeds 42, 43, 44), so its bar is on the mean.
    assert metrics["t2v"]["R@1"] + metrics["v2t"]["R@1"] >= 4 * chance, metrics
    assert metrics["selection"]["rule"] == "val" and not metrics["selection"]["on_test"]
    # The saved matrices read without pickle and give back the reported metrics under both protocols.
    with np.load(tmp_path / "runs/evaluate/similarity.npz", allow_pickle=False) as sims:
        assert sims["fused"].shape == sims["pose"].shape == sims["rgb"].shape == (12, 12)
        texts = sims["texts"].tolist()
        groups = sentence_groups(texts, sims["sentence_ids"].tolist())
        assert grouped_metrics(sims["fused"], groups) == {"t2v": metrics["t2v"], "v2t": metrics["v2t"]}
        assert retrieval_metrics(sims["fused"]) == {
            k: metrics["protocols"]["per_clip"]["fused"][k] for k in ("t2v", "v2t")
        }
        assert list(sims["sample_ids"]) == sorted(sims["sample_ids"]) and texts[0].endswith(".")
    plots = (tmp_path / "runs/train/plots/train.tsv").read_text().splitlines()
    assert plots[0].startswith("epoch\tstep\tloss") and len(plots) == 41
    val = (tmp_path / "runs/train/plots/val.tsv").read_text().splitlines()
    assert len(val) == 3 and "t2v_R@1" in val[0]
    summary = json.loads((tmp_path / "runs/train/metrics.json").read_text())
    assert summary["step"] == 120 and summary["sentences"] == 12 and summary["selection"]["epoch"] in (20, 40)
    report = (tmp_path / "runs/evaluate/report.md").read_text()
    assert "authors' protocol (clips grouped by sentence) (headline)" in report and "| per clip |" in report
    assert "FILIP softmaxes run over every token, padded ones included (the authors'" in report


def test_selection_on_the_test_set_is_labelled(tiny_store, capsys):
    write_project_params(tiny_store, {"epochs": 2, "eval_every": 1, "select": "best_test"}, {"split": "test"})
    assert cli.main(["train", "--no-progress"]) == 0
    assert "SELECTED ON THE TEST SET" in capsys.readouterr().out
    assert cli.main(["evaluate", "--set", "evaluate.figure_queries=0"]) == 0
    metrics = json.loads((tiny_store / "runs/evaluate/metrics.json").read_text())
    assert metrics["selection"]["on_test"] and metrics["selection"]["split"] == "test"
    report = (tiny_store / "runs/evaluate/report.md").read_text()
    assert "**Selected on the test set**" in report and "the selection split `test`" in report
    assert "validation" not in report.lower()


def test_bad_inputs_stop_with_one_line(tiny_store, capsys):
    write_project_params(tiny_store, {"split": "nope", "select": "last"})
    assert cli.main(["train", "--no-progress"]) == 2
    assert "holds no clip of split 'nope' (its splits: test, train, val)" in capsys.readouterr().err
    write_project_params(tiny_store, {"cgaf_keys": [5]})
    assert cli.main(["train"]) == 2
    assert "train.cgaf_keys: 1 entries for 2 layer(s)" in capsys.readouterr().err
    (tiny_store / "broken.pt").write_text("x")
    write_project_params(tiny_store, {}, {"checkpoint": "broken.pt"})
    assert cli.main(["evaluate"]) == 2
    assert "broken.pt does not load as a weights-only torch checkpoint" in capsys.readouterr().err
    write_project_params(tiny_store, {"signbert_checkpoint": "absent.pth", "max_steps": 1})
    assert cli.main(["train"]) == 2
    assert "absent.pth does not exist" in capsys.readouterr().err
    write_project_params(tiny_store, {"clip_checkpoint": "absent_clip.pt", "max_steps": 1})
    assert cli.main(["train"]) == 2
    assert "train.clip_checkpoint: checkpoint file absent_clip.pt does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_efficiency_report_gives_the_authors_counts(capsys, tmp_path):
    """The thop-style counts of the authors' modules (issue 11), the paper's Pose encoder row = the hand GCN."""
    assert cli.main(["report", "efficiency", "--json", str(tmp_path / "eff.json")]) == 0
    assert "The paper's Pose encoder row is one part GCN" in capsys.readouterr().out
    rows = {r["module"]: r for r in json.loads((tmp_path / "eff.json").read_text())}
    assert {m: rows[m]["thop_params"] for m in rows if rows[m]["thop_params"] is not None} == {
        "Text encoder": 25_196_544,
        "RGB interaction": 57_455_616,
        "Pose interaction": 57_848_832,
        "CGAF": 17_399_424,
        "hand GCN (paper: Pose encoder)": 9_658_708,
        "body GCN": 9_658_652,
        "window fusion": 30_680_064,
    }
    assert rows["RGB encoder (I3D)"]["params_m"] == pytest.approx(12.29, abs=0.01)
    assert rows["CGAF"]["gmacs"] == pytest.approx(18.1, abs=0.05)  # the paper's CGAF figure


def test_gpu_benchmark_step_trains_on_cpu():
    """benchmarks/train_gpu.py's step (autocast, clipping, BertAdam) on CPU with a tiny model: 30 steps on
    four repeated batches must lower the loss, and amp mode must run under bf16 autocast."""
    import importlib.util
    from pathlib import Path

    from pipeline.models.seds.model import SEDSConfig
    from pipeline.train.params import TrainParams

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "train_gpu.py"
    spec = importlib.util.spec_from_file_location("train_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tiny = SEDSConfig(
        gcn_joint_channels=(8, 8, 8),
        gcn_part_channels=8,
        tower_width=16,
        tower_layers=1,
        tower_heads=2,
        embed_dim=16,
        text_width=16,
        text_layers=1,
        text_heads=2,
        cgaf_heads=2,
        cgaf_ff=16,
        steps=8,
        max_words=8,
        cgaf_dropout=0.0,
    )
    fast = TrainParams(batch_size=4, lr_clip=3e-3, lr_pose=3e-3, lr_cgaf=3e-3, warmup=0.05)
    trained = bench.run("fp32", steps=30, b=4, device="cpu", warmup=0, config=tiny, frames=24, params=fast)
    assert trained["last_loss"] < 0.8 * trained["first_loss"], trained
    amp = bench.run("amp", steps=2, b=4, device="cpu", warmup=1, config=tiny, frames=24, params=fast)
    assert amp["dtype"] == "torch.bfloat16" and amp["peak_memory_gib"] is None and np.isfinite(amp["last_loss"])


def test_a_pose_only_model_evaluates_on_its_pose_stream(tiny_store):
    write_project_params(tiny_store, {"variant": "pose_only", "max_steps": 2, "select": "last"}, {"figure_queries": 1})
    assert cli.main(["train", "--no-progress"]) == 0
    assert cli.main(["evaluate"]) == 0
    metrics = json.loads((tiny_store / "runs/evaluate/metrics.json").read_text())
    assert metrics["headline"] == "pose" and set(metrics["streams"]) == {"pose"}
    assert metrics["t2v"] == metrics["streams"]["pose"]["t2v"]
    with np.load(tiny_store / "runs/evaluate/similarity.npz", allow_pickle=False) as sims:
        assert {"pose", "sample_ids", "texts", "sentence_ids"} == set(sims.files)
    assert (tiny_store / "runs/evaluate/figures/retrieval_top3.png").is_file()
    assert "| Pose only | authors' protocol" in (tiny_store / "runs/evaluate/report.md").read_text()
