"""SignBERT initialisation of GCN-hand: the authors' key layout maps strictly, mismatches are named."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.seds.pose_encoder import PoseEncoder
from pipeline.models.signbert import CheckpointMismatch, load_gcn_hand

WIDTHS = (8, 8, 16, 16)


def _authors_checkpoint(source_gcn: torch.nn.Module) -> dict:
    """A SignBERT file laid out as the authors' (per-frame, kernel-1 temporal convs), from a GCN's weights."""
    state = {}
    for key, value in source_gcn.state_dict().items():
        if key.endswith("tcn.3.weight"):
            value = value[:, :, value.shape[2] // 2: value.shape[2] // 2 + 1].clone()  # kernel 1
        if key.startswith("data_bn."):
            new = key
        elif key.startswith("layers.3."):
            new = "st_gcn_pool.0." + key[len("layers.3."):]
        else:
            new = "st_gcn_networks." + key[len("layers."):]
        state["embed.st_gcn_hand." + new] = value
    # Parts of their GCN with no counterpart here, and the body GCN, are ignored.
    state["embed.st_gcn_hand.st_gcn_pool.1.gcn.conv.weight"] = torch.zeros(3)
    state["embed.st_gcn_hand.conv4.0.weight"] = torch.zeros(3)
    state["embed.st_gcn_body.data_bn.weight"] = torch.zeros(3)
    return {"state_dict": {"GCN_Transform": state}}


def test_authors_layout_loads_strictly_and_inflates_temporal_kernel(tmp_path):
    torch.manual_seed(1)
    source = PoseEncoder(widths=WIDTHS, fusion_hidden=8, temporal_kernel=1).gcn_hand
    path = tmp_path / "pretrain_signbert.pth"
    torch.save(_authors_checkpoint(source), path)
    torch.manual_seed(2)
    target = PoseEncoder(widths=WIDTHS, fusion_hidden=8, temporal_kernel=5).gcn_hand
    note = load_gcn_hand(target, path)
    assert "authors' SignBERT" in note and "2 source tensor(s) without counterpart" in note  # st_gcn_pool.1, conv4
    for key, value in source.state_dict().items():
        loaded = target.state_dict()[key]
        if key.endswith("tcn.3.weight"):
            assert loaded.shape[2] == 5
            torch.testing.assert_close(loaded[:, :, 2:3], value)
            assert float(loaded[:, :, [0, 1, 3, 4]].abs().sum()) == 0.0
        else:
            torch.testing.assert_close(loaded, value)
    # Centre-tap inflation computes the same function as the kernel-1 original.
    source.eval(), target.eval()
    x, mask = torch.randn(2, 6, 21, 2), torch.ones(2, 6, 21, dtype=torch.bool)
    torch.testing.assert_close(target(x, mask), source(x, mask))


def test_a_train_checkpoint_layout_also_loads(tmp_path):
    torch.manual_seed(3)
    source = PoseEncoder(widths=WIDTHS, fusion_hidden=8)
    path = tmp_path / "model.pt"
    torch.save({"model": {f"pose_encoder.{k}": v for k, v in source.state_dict().items()}}, path)
    target = PoseEncoder(widths=WIDTHS, fusion_hidden=8).gcn_hand
    assert "seds train checkpoint" in load_gcn_hand(target, path)
    torch.testing.assert_close(target.state_dict()["layers.2.gcn.conv.weight"],
                               source.gcn_hand.state_dict()["layers.2.gcn.conv.weight"])


def test_mismatches_are_named(tmp_path):
    torch.manual_seed(1)
    source = PoseEncoder(widths=WIDTHS, fusion_hidden=8, temporal_kernel=1).gcn_hand
    path = tmp_path / "signbert.pth"
    torch.save(_authors_checkpoint(source), path)
    wider = PoseEncoder(widths=(8, 8, 16, 32), fusion_hidden=8).gcn_hand
    with pytest.raises(CheckpointMismatch, match=r"layers\.3\.gcn\.conv\.weight: checkpoint"):
        load_gcn_hand(wider, path)
    partial = _authors_checkpoint(source)
    del partial["state_dict"]["GCN_Transform"]["embed.st_gcn_hand.st_gcn_networks.1.tcn.0.weight"]
    torch.save(partial, path)
    with pytest.raises(CheckpointMismatch, match=r"missing 1 key\(s\): layers\.1\.tcn\.0\.weight"):
        load_gcn_hand(PoseEncoder(widths=WIDTHS, fusion_hidden=8).gcn_hand, path)
    with pytest.raises(FileNotFoundError, match="signbert_checkpoint"):
        load_gcn_hand(wider, tmp_path / "absent.pth")
