"""FILIP similarities, the contrastive loss and the Pose-RGB matching on examples small enough to work
out by hand: 2 clips, 2 sentences, 2 tokens each, 2-d unit tokens (so every cosine is 0, 1 or -1).

With tau = 0.5 and x, y in {-1, 0, 1}, a softmax-weighted sum over two tokens is
    f(x, y) = (x e^{x/tau} + y e^{y/tau}) / (e^{x/tau} + e^{y/tau}),
so f(1, 0) = f(0, 1) = p = sigmoid(2), f(-1, 0) = f(0, -1) = p - 1, f(1, -1) = f(-1, 1) = tanh(2), f(0, 0) = 0,
and over one token (masked padding) it is that token's cosine."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.models.seds.losses import contrastive_loss, cross_entropy_diagonal, filip, matching

TAU = 0.5
P = 1 / (1 + math.exp(-2))  # sigmoid(1 / tau)
T = math.tanh(2)  # f(1, -1): (e^2 - e^-2) / (e^2 + e^-2)
E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])

# video: clip 0 = [e1, e2]; clip 1 = [e1, -e1] with its second token padded
VIDEO = torch.stack([torch.stack([E1, E2]), torch.stack([E1, -E1])])
VIDEO_VALID = torch.tensor([[True, True], [True, False]])
# text: sentence 0 = [e1, e2]; sentence 1 = [-e1, e2] with its second token padded
TEXT = torch.stack([torch.stack([E1, E2]), torch.stack([-E1, E2])])
TEXT_VALID = torch.tensor([[True, True], [True, False]])
# s[a, b] = VIDEO[a] @ TEXT[b].T (rows video tokens i, columns text tokens j):
#   s00 = [[1, 0], [0, 1]]   s01 = [[-1, 0], [0, 1]]   s10 = [[1, 0], [-1, 0]]   s11 = [[-1, 0], [1, 0]]


def test_filip_authors_by_hand():
    """'authors': softmaxes over every token, padded ones too; only the averaged rows follow the masks.
    I2T[a, b] = mean over valid i of f(s_abi:);  T2I[a, b] = mean over valid j of f(s_ab:j)."""
    i2t, t2i = filip(VIDEO, VIDEO_VALID, TEXT, TEXT_VALID, tau=TAU, padding="authors")
    expected_i2t = [
        [(P + P) / 2, ((P - 1) + P) / 2],  # s01 rows: f(-1, 0), f(0, 1)
        [P, P - 1],
    ]  # clip 1: row 0 only
    expected_t2i = [
        [(P + P) / 2, P - 1],  # s01: column 0 only, f(-1, 0)
        [(T + 0) / 2, T],
    ]  # s10 columns f(1, -1) = tanh 2 and f(0, 0) = 0
    torch.testing.assert_close(i2t, torch.tensor(expected_i2t), rtol=0, atol=1e-6)
    torch.testing.assert_close(t2i, torch.tensor(expected_t2i), rtol=0, atol=1e-6)


def test_filip_masked_by_hand():
    """'masked': the softmaxes see valid tokens only, so one valid token is read at weight 1."""
    i2t, t2i = filip(VIDEO, VIDEO_VALID, TEXT, TEXT_VALID, tau=TAU, padding="masked")
    expected_i2t = [
        [P, (-1 + 0) / 2],  # sentence 1 has only j = 0: rows read -1, 0
        [P, -1],
    ]
    expected_t2i = [[P, P - 1], [(1 + 0) / 2, -1]]  # clip 1 has only i = 0: columns read 1, 0 / -1
    torch.testing.assert_close(i2t, torch.tensor(expected_i2t), rtol=0, atol=1e-6)
    torch.testing.assert_close(t2i, torch.tensor(expected_t2i), rtol=0, atol=1e-6)


def test_t2i_reads_the_augmented_sentences_when_given():
    swapped = TEXT.flip(0)
    i2t, t2i = filip(VIDEO, VIDEO_VALID, TEXT, TEXT_VALID, TAU, "authors", swapped, TEXT_VALID.flip(0))
    plain_i2t, _ = filip(VIDEO, VIDEO_VALID, TEXT, TEXT_VALID, TAU, "authors")
    _, swapped_t2i = filip(VIDEO, VIDEO_VALID, swapped, TEXT_VALID.flip(0), TAU, "authors")
    torch.testing.assert_close(i2t, plain_i2t, rtol=0, atol=0)
    torch.testing.assert_close(t2i, swapped_t2i, rtol=0, atol=0)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_cross_entropy_of_the_diagonal_by_hand():
    # row r: -log softmax(row)[r] = log(1 + e^{other - own}) for two columns
    logits = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    assert cross_entropy_diagonal(logits).item() == pytest.approx((_softplus(-2) + _softplus(0)) / 2, abs=1e-6)


def test_contrastive_loss_by_hand():
    """(m CE(I2T) + (1-m) CE(I2T^T) + m CE(T2I^T) + (1-m) CE(T2I)) / 2 with m = 0.8."""
    i2t = torch.tensor([[2.0, 0.0], [1.0, 1.0]])
    t2i = torch.tensor([[0.0, 3.0], [0.0, 1.0]])
    ce_i2t = (_softplus(0 - 2) + _softplus(1 - 1)) / 2  # rows of I2T
    ce_i2t_t = (_softplus(1 - 2) + _softplus(0 - 1)) / 2  # rows of I2T^T = [[2, 1], [0, 1]]
    ce_t2i = (_softplus(3 - 0) + _softplus(0 - 1)) / 2  # rows of T2I
    ce_t2i_t = (_softplus(0 - 0) + _softplus(3 - 1)) / 2  # rows of T2I^T = [[0, 0], [3, 1]]
    m = 0.8
    expected = (m * ce_i2t + (1 - m) * ce_i2t_t + m * ce_t2i_t + (1 - m) * ce_t2i) / 2
    assert contrastive_loss(i2t, t2i, dual_mix=m).item() == pytest.approx(expected, abs=1e-6)


# matching: pose clips both [e1, e2]; rgb clip 0 = [e1, e2], clip 1 = [e1, -e2]; clip 1's token 1 padded
POSE = torch.stack([torch.stack([E1, E2]), torch.stack([E1, E2])])
RGB = torch.stack([torch.stack([E1, E2]), torch.stack([E1, -E2])])
CLIP_VALID = torch.tensor([[True, True], [True, False]])
# q[a, b] = POSE[a] @ RGB[b].T: q_a0 = [[1, 0], [0, 1]], q_a1 = [[1, 0], [0, -1]] for both a


def test_matching_authors_by_hand():
    """P2R[a, b] = sum over clip a's valid i of q_abii softmax_j(q_abi:)_i;
    R2P[a, b] = sum over clip b's valid j of q_abjj softmax_i(q_ab:j)_j (softmaxes over every token)."""
    p2r, r2p = matching(POSE, RGB, CLIP_VALID, tau=TAU, padding="authors")
    expected_p2r = [
        [P + P, P + (-1) * (1 - P)],  # q_011 = -1, softmax of (0, -1) at 1 = 1 - p
        [P, P],
    ]  # clip 1: i = 0 only
    expected_r2p = [
        [P + P, P],  # clip 1 as b: j = 0 only
        [P + P, P],
    ]
    torch.testing.assert_close(p2r, torch.tensor(expected_p2r), rtol=0, atol=1e-6)
    torch.testing.assert_close(r2p, torch.tensor(expected_r2p), rtol=0, atol=1e-6)


def test_matching_masked_by_hand():
    p2r, r2p = matching(POSE, RGB, CLIP_VALID, tau=TAU, padding="masked")
    expected_p2r = [
        [P + P, 1 + 0],  # softmax over clip 1's one rgb token: 1 at j = 0, 0 at 1
        [P, 1],
    ]
    expected_r2p = [[P + P, P], [1 + 0, 1]]  # softmax over clip 1's one pose token
    torch.testing.assert_close(p2r, torch.tensor(expected_p2r), rtol=0, atol=1e-6)
    torch.testing.assert_close(r2p, torch.tensor(expected_r2p), rtol=0, atol=1e-6)
