"""The train and evaluate stages through their CLI on a tiny store; learnability; efficiency report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.cli import main as seds
from pipeline.train.metrics import retrieval_metrics

from train_support import build_store, write_project_params


@pytest.mark.slow
def test_train_then_evaluate_learns_from_pose_alone(tmp_path, chdir, capsys):
    """RGB features are pure noise here, so retrieval above chance must come through the Pose encoder."""
    chdir(tmp_path)
    build_store(tmp_path, sentences=12, rgb_signal=0.0)
    write_project_params(tmp_path, {"epochs": 15, "eval_every": 5, "lr_pose": 4e-3, "lr_interaction": 4e-3,
                                    "lr_fusion": 4e-3}, {"split": "test"})
    assert seds(["train", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "step 45/45" in out and "random weights" in out
    assert seds(["evaluate"]) == 0
    assert "evaluate: test, 12 clips" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "runs/evaluate/metrics.json").read_text())
    chance = metrics["chance_R@1"]
    assert chance == pytest.approx(100 / 12)
    assert metrics["t2v"]["R@1"] >= 3 * chance and metrics["v2t"]["R@1"] >= 3 * chance, metrics
    # The saved matrices read without pickle and give back the reported metrics.
    with np.load(tmp_path / "runs/evaluate/similarity.npz", allow_pickle=False) as sims:
        assert sims["fused"].shape == sims["pose"].shape == sims["rgb"].shape == (12, 12)
        assert retrieval_metrics(sims["fused"]) == {"t2v": metrics["t2v"], "v2t": metrics["v2t"]}
        assert list(sims["sample_ids"]) == sorted(sims["sample_ids"]) and sims["texts"][0].endswith(".")
    plots = (tmp_path / "runs/train/plots/train.tsv").read_text().splitlines()
    assert plots[0].startswith("epoch\tstep\tloss") and len(plots) == 16
    val = (tmp_path / "runs/train/plots/val.tsv").read_text().splitlines()
    assert len(val) == 4 and "t2v_R@1" in val[0]
    assert json.loads((tmp_path / "runs/train/metrics.json").read_text())["step"] == 45


def test_bad_inputs_stop_with_one_line(tiny_store, capsys):
    write_project_params(tiny_store, {"split": "nope", "val_split": None})
    assert seds(["train", "--no-progress"]) == 2
    assert "no usable clips of split 'nope'" in capsys.readouterr().err
    write_project_params(tiny_store, {"gcn_temporal_kernel": 4})
    assert seds(["train"]) == 2
    assert "train.gcn_temporal_kernel: 4 must be odd" in capsys.readouterr().err
    (tiny_store / "broken.pt").write_text("x")
    write_project_params(tiny_store, {}, {"checkpoint": "broken.pt"})
    assert seds(["evaluate"]) == 2
    assert "broken.pt does not load as a weights-only torch checkpoint" in capsys.readouterr().err
    write_project_params(tiny_store, {"signbert_checkpoint": "absent.pth", "max_steps": 1})
    assert seds(["train"]) == 2
    assert "absent.pth does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_efficiency_report_lists_every_module(capsys, tmp_path):
    assert seds(["report", "efficiency", "--json", str(tmp_path / "eff.json")]) == 0
    table = capsys.readouterr().out
    for module in ("Pose encoder", "RGB interaction", "Pose interaction", "Text encoder", "CGAF"):
        assert module in table
    rows = {r["module"]: r for r in json.loads((tmp_path / "eff.json").read_text())}
    pose = rows["Pose encoder"]
    assert abs(pose["params_ratio"] - 1) < 0.10 and pose["paper_g"] == 132.1
    assert 0.8 < pose["flops_ratio"] < 1.25  # GMACs at 16 x 64 x 49 x 2 against the paper's 132.1G
    assert rows["CGAF"]["gmacs"] == pytest.approx(rows["CGAF"]["gflops"] / 2)


def test_gpu_benchmark_step_runs_on_cpu():
    """benchmarks/train_gpu.py's training step (autocast, clipping, schedule), smoke-run on CPU, tiny model."""
    import importlib.util
    from pathlib import Path

    from pipeline.models.seds.model import SEDSConfig

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "train_gpu.py"
    spec = importlib.util.spec_from_file_location("train_gpu", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tiny = SEDSConfig(gcn_widths=(8, 8, 8, 8), fusion_hidden=8, interaction_width=16, interaction_layers=1,
                      interaction_heads=2, embed_dim=16, cgaf_heads=2, cgaf_ff=16, steps=8,
                      text_encoder="tiny-random", max_words=8)
    result = bench.run("amp", steps=2, b=4, device="cpu", warmup=1, config=tiny)
    assert result["dtype"] == "torch.bfloat16" and result["steps_per_s"] > 0 and result["peak_memory_gib"] is None
    assert np.isfinite(result["loss_every_50"]).all()
