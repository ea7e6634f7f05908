"""ST-GCN graphs (hand-computed adjacency entries), layer widths of Table 1, masking, parameter count."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models.seds.pose_encoder import SEDS_SPANS, PoseEncoder
from pipeline.models.seds.stgcn import BODY_GRAPH, HAND_GRAPH, STGCN

PAPER_POSE_PARAMS = 9.66e6


def test_hand_graph_adjacency_by_hand():
    a = HAND_GRAPH.adjacency()
    assert a.shape == (4, 21, 21)
    # Wrist (target 0): itself and the five finger bases, all one level farther out -> degree 6.
    assert a[0, 0, 0] == pytest.approx(1 / 6)
    for base in (1, 5, 9, 13, 17):
        assert a[1, base, 0] == pytest.approx(1 / 6)      # centripetal: source farther from the wrist
    assert a[2, :, 0].sum() == 0 and a[3, :, 0].sum() == 0
    # Thumb base (target 1): wrist (nearer), thumb joint 2 (farther), fore-finger base 5 (symmetry) -> degree 4.
    assert a[0, 1, 1] == pytest.approx(1 / 4)
    assert a[2, 0, 1] == pytest.approx(1 / 4)
    assert a[1, 2, 1] == pytest.approx(1 / 4)
    assert a[3, 5, 1] == pytest.approx(1 / 4)
    # Middle finger joint 10: 9 (nearer), 11 (farther), symmetry with 6 and 14 -> degree 5.
    assert a[2, 9, 10] == a[1, 11, 10] == a[3, 6, 10] == a[3, 14, 10] == pytest.approx(1 / 5)
    # Pinky tip (target 20): joint 19 (nearer) and ring tip 16 (symmetry) -> degree 3.
    assert a[2, 19, 20] == a[3, 16, 20] == a[0, 20, 20] == pytest.approx(1 / 3)
    # Every target's incoming weights sum to 1 (mean aggregation); unlinked pairs are 0.
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(21), rtol=1e-6)
    assert a[:, 4, 0].sum() == 0 and a[:, 0, 20].sum() == 0
    assert HAND_GRAPH.levels().tolist() == [0] + [1, 2, 3, 4] * 5


def test_body_graph_adjacency_by_hand():
    a = BODY_GRAPH.adjacency()
    assert a.shape == (4, 7, 7)
    assert BODY_GRAPH.levels().tolist() == [0, 1, 2, 3, 1, 2, 3]
    # Nose (0): both shoulders, one level out -> degree 3.
    assert a[0, 0, 0] == a[1, 1, 0] == a[1, 4, 0] == pytest.approx(1 / 3)
    # Left shoulder (1): nose (nearer), left elbow (farther), right shoulder (symmetry) -> degree 4.
    assert a[2, 0, 1] == a[1, 2, 1] == a[3, 4, 1] == a[0, 1, 1] == pytest.approx(1 / 4)
    # Right wrist (6): right elbow (nearer), left wrist (symmetry) -> degree 3.
    assert a[2, 5, 6] == a[3, 3, 6] == pytest.approx(1 / 3)
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(7), rtol=1e-6)
    assert a[:, 3, 0].sum() == 0  # left wrist does not reach the nose in one hop


def test_pose_encoder_table1_widths_and_shapes():
    torch.manual_seed(0)
    encoder = PoseEncoder().eval()  # the paper's sizes
    widths = []
    hooks = [layer.register_forward_hook(lambda m, i, o: widths.append(o.shape[1]))
             for layer in encoder.gcn_hand.layers]
    x, mask = torch.randn(2, 8, 49, 2), torch.ones(2, 8, 49, dtype=torch.bool)
    with torch.no_grad():
        out = encoder(x, mask)
        body = encoder.gcn_body(x[:, :, :7], mask[:, :, :7])
    for h in hooks:
        h.remove()
    assert widths == [128, 128, 256, 512]
    assert body.shape == (2, 8, 512)
    assert out.shape == (2, 8, 1536)  # left + right + body = 3 x 512, kept by the fusion


def test_pose_encoder_parameter_count_is_the_papers():
    count = sum(p.numel() for p in PoseEncoder().parameters())
    assert abs(count - PAPER_POSE_PARAMS) / PAPER_POSE_PARAMS < 0.10, count


@pytest.mark.parametrize("training", [False, True])
def test_missing_joints_do_not_reach_the_output(training):
    torch.manual_seed(0)
    encoder = PoseEncoder(widths=(8, 8, 16, 16), fusion_hidden=24)
    encoder.train(training)
    x = torch.randn(3, 10, 49, 2)
    mask = torch.rand(3, 10, 49) > 0.3
    mask[1, :, 7:28] = False  # clip 1: left hand never seen
    garbage = x.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), 2) * 1000
    out_a, out_b = encoder(x, mask), encoder(garbage, mask)
    torch.testing.assert_close(out_a, out_b)
    assert torch.isfinite(out_a).all()
    # Unmasking the same joints does change the output: the mask is what hides them.
    assert not torch.allclose(encoder(garbage, torch.ones_like(mask)), out_b)


def test_joint_pooling_is_over_present_joints_only():
    gcn = STGCN(HAND_GRAPH, 2, (4,), temporal_kernel=1).eval()
    x = torch.randn(1, 3, 21, 2)
    none = torch.zeros(1, 3, 21, dtype=torch.bool)
    out = gcn(x, none)
    assert torch.equal(out, torch.zeros(1, 3, 4))  # no joint present at a step -> 0, not NaN


def test_spans_come_from_the_selection():
    spans = {"body": (0, 7), "left_hand": (7, 28), "right_hand": (28, 49), "face": (49, 117)}
    encoder = PoseEncoder(widths=(4, 4, 4, 4), fusion_hidden=4, spans=spans).eval()
    out = encoder(torch.randn(1, 5, 117, 2), torch.ones(1, 5, 117, dtype=torch.bool))
    assert out.shape == (1, 5, 12)
    with pytest.raises(ValueError, match="left_hand"):
        PoseEncoder(spans={"body": (0, 7), "right_hand": (7, 28)})
    assert SEDS_SPANS["right_hand"] == (28, 49)
