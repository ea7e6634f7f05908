"""The objectives against hand-computed examples (unit vectors e1, e2; tau = 1 so softmaxes are simple)."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.models.seds.losses import (contrastive_loss, cross_entropy_diagonal, filip_similarities,
                                         matching_similarities)

E = math.e
E1, E2 = [1.0, 0.0], [0.0, 1.0]


def test_cross_entropy_diagonal_by_hand():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    # row 0: -log(e^2 / (e^2 + 1)) = log(1 + e^-2); row 1: -log(e^3 / (e + e^3)) = log(1 + e^-2)
    assert float(cross_entropy_diagonal(logits)) == pytest.approx(math.log(1 + E ** -2), abs=1e-6)


def test_symmetric_infonce_by_hand():
    v2t = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    t2v = torch.tensor([[1.0, 1.0], [0.0, 2.0]])
    ce_v2t = math.log(1 + E ** -2)                                           # rows of V2T (clip queries)
    ce_v2t_t = (math.log(1 + E ** -1) + math.log(1 + E ** -3)) / 2          # rows of V2T^T (sentence queries)
    ce_t2v = (math.log(2) + math.log(1 + E ** -2)) / 2
    ce_t2v_t = math.log(1 + E ** -1)
    expected = (0.5 * ce_v2t + 0.5 * ce_v2t_t + 0.5 * ce_t2v_t + 0.5 * ce_t2v) / 2
    assert float(contrastive_loss(v2t, t2v, 0.5)) == pytest.approx(expected, abs=1e-6)
    # dual_mix 1: only V2T as clip->sentence and T2V as sentence->clip
    assert float(contrastive_loss(v2t, t2v, 1.0)) == pytest.approx((ce_v2t + ce_t2v_t) / 2, abs=1e-6)


def test_filip_similarities_by_hand():
    # clips A = [e1, e2], B = [e1, <pad>]; sentences X = [e1, e2], Y = [e2, <pad>]
    video = torch.tensor([[E1, E2], [E1, [0.6, 0.8]]])
    video_mask = torch.tensor([[True, True], [True, False]])
    text = torch.tensor([[E1, E2], [E2, [0.8, 0.6]]])
    text_mask = torch.tensor([[True, True], [True, False]])
    v2t, t2v = filip_similarities(video, video_mask, text, text_mask, tau=1.0)
    w = E / (E + 1)  # softmax weight of the matching token among a 1 and a 0
    torch.testing.assert_close(v2t, torch.tensor([[w, 0.5], [w, 0.0]]))
    torch.testing.assert_close(t2v, torch.tensor([[w, w], [0.5, 0.0]]))


def test_filip_uses_augmented_text_for_t2v_only():
    video = torch.tensor([[E1, E1]])
    mask = torch.tensor([[True, True]])
    text = torch.tensor([[E1, E2]])
    augmented = torch.tensor([[E1, E1]])
    v2t, t2v = filip_similarities(video, mask, text, mask, 1.0, augmented, mask)
    # V2T from the original sentence: each step matches e1 among (e1, e2) with weight e/(e+1)
    torch.testing.assert_close(v2t, torch.tensor([[E / (E + 1)]]))
    # T2V from the augmented one: both words are e1, matched by both steps -> 1 (the original gives 0.5)
    torch.testing.assert_close(t2v, torch.tensor([[1.0]]))
    torch.testing.assert_close(filip_similarities(video, mask, text, mask, 1.0)[1], torch.tensor([[0.5]]))


def test_pose_rgb_matching_by_hand():
    # clip A: pose [e1, e2], rgb [e1, e2]; clip B: pose [e2, e1], rgb [e1, e1]
    pose = torch.tensor([[E1, E2], [E2, E1]])
    rgb = torch.tensor([[E1, E2], [E1, E1]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    p2r, r2p = matching_similarities(pose, rgb, mask, tau=1.0, reduce="sum")
    w = E / (E + 1)
    torch.testing.assert_close(p2r, torch.tensor([[2 * w, 0.5], [0.0, 0.5]]))
    torch.testing.assert_close(r2p, torch.tensor([[2 * w, w], [0.0, w]]))
    p2r_mean, _ = matching_similarities(pose, rgb, mask, tau=1.0, reduce="mean")
    torch.testing.assert_close(p2r_mean, p2r / 2)
