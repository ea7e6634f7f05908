"""Checkpoints: a resumed run takes exactly the steps of an uninterrupted one; identity and format checks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from train_support import write_project_params

from pipeline.config import load_params
from pipeline.train.checkpoint import NotACheckpoint, load_checkpoint
from pipeline.train.loop import train

FAST = {"eval_every": 0, "epochs": 2, "sampling": "clip"}  # 24 train clips, batch 8: 3 steps per epoch, 6 in all


def _run(root, **train_params):
    write_project_params(root, {**FAST, **train_params})
    return train(load_params(root / "params.yaml"))


def test_resume_gives_the_same_next_step_loss(tiny_store):
    full = _run(tiny_store, out="runs/full", max_steps=4)
    assert sorted(full.step_losses) == [0, 1, 2, 3]
    first = _run(tiny_store, out="runs/cut", max_steps=2)  # stops mid-epoch 1
    assert first.step == 2 and sorted(first.step_losses) == [0, 1]
    assert first.step_losses[1] == full.step_losses[1]
    resumed = _run(tiny_store, out="runs/cut", max_steps=4)
    assert resumed.resumed_from == 2 and sorted(resumed.step_losses) == [2, 3]
    for step in (2, 3):  # the rest of epoch 1, then the first of epoch 2 (new order, new sampling)
        assert resumed.step_losses[step] == pytest.approx(full.step_losses[step], rel=1e-6, abs=1e-7)
    ck = load_checkpoint(tiny_store / "runs/cut/checkpoints/last.pt")
    assert ck["step"] == 4 and ck["params"]["max_steps"] == 4 and ck["config"]["embed_dim"] == 32
    assert all(s["step"] == 4 for s in ck["optimizer"]["state"].values() if "step" in s)  # BertAdam's own counts
    final = torch.load(tiny_store / "runs/cut/model.pt", weights_only=True)
    assert final["optimizer"] is None and final["params"]["clip_checkpoint"] == "random"


def test_changed_params_start_afresh(tiny_store):
    _run(tiny_store, out="runs/a", max_steps=1)
    changed = _run(tiny_store, out="runs/a", max_steps=2, lr_pose=5e-4)
    assert changed.resumed_from is None and sorted(changed.step_losses) == [0, 1]
    assert any("run identity changed (lr_pose)" in note for note in changed.notes)
    # Other training data (here one clip fewer) is a different run too, whatever the params.
    view = tiny_store / "manifests" / "select.parquet"
    table = pq.read_table(view)
    status = table.column("select_status").to_pylist()
    status[0] = "failed"
    table = table.set_column(table.column_names.index("select_status"), "select_status", pa.array(status))
    pq.write_table(table, view)
    refit = _run(tiny_store, out="runs/a", max_steps=3, lr_pose=5e-4)
    assert refit.resumed_from is None and any("run identity changed (data)" in n for n in refit.notes)


def test_a_checkpoint_that_is_not_ours_is_refused(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(NotACheckpoint, match="model.pt"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(2)}, bad)
    with pytest.raises(NotACheckpoint, match="not a seds train checkpoint"):
        load_checkpoint(bad)
