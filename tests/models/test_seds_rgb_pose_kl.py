"""The release's optional Pose-RGB token distillation (--rgb_pose_kl; modules/modeling.py
kl_double_modal_compute, until_module.py KL): a value worked out by hand, the release's code path
restated with its masked_select rows and top-k fills on a case with padding, and its place in the loss.

By hand: one clip, one video token, its sentence three valid words, 3-d unit tokens. Pose token e1, rgb
token e2, words e1, e2, e3: cosines s_pose = (1, 0, 0), s_rgb = (0, 1, 0). Per word, s x softmax(s / tau):
pose (a', 0, 0), rgb (0, a', 0) with a' = e^(1/tau) / (e^(1/tau) + 2). The teacher's 3 best words are all
three. Over the words, with a = a' / T: KL(softmax(0, a, 0) || softmax(a, 0, 0)) = a (q2 - q1), q =
softmax(0, a, 0), i.e. a (e^a - 1) / (e^a + 2) (the two log-normalisers are equal). The per-word rows
(over the single video token) are one-hot after the softmax on both sides: KL 0. Each stream's term is
half the sum: a (e^a - 1) / (2 (e^a + 2)), the same for both streams by symmetry.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from seds_support import narrow_config

from pipeline.models.seds.losses import normalise, rgb_pose_kl
from pipeline.models.seds.model import SEDS
from pipeline.models.seds.tokenizer import text_mask

TAU = 0.07


def _by_hand(temperature: float) -> float:
    a = math.exp(1 / TAU) / (math.exp(1 / TAU) + 2) / temperature
    return a * (math.exp(a) - 1) / (2 * (math.exp(a) + 2))


@pytest.mark.parametrize("temperature", [1.0, 0.01])
def test_a_value_worked_out_by_hand(temperature):
    eye = torch.eye(3)
    pose, rgb, words = eye[None, :1], eye[None, 1:2], eye[None]
    video_valid, word_valid = torch.ones(1, 1, dtype=torch.bool), torch.ones(1, 3, dtype=torch.bool)
    pose_term, rgb_term = rgb_pose_kl(
        pose, rgb, video_valid, words, word_valid, words, word_valid, TAU, temperature=temperature
    )
    assert float(pose_term) == pytest.approx(_by_hand(temperature), rel=1e-5)
    assert float(rgb_term) == pytest.approx(_by_hand(temperature), rel=1e-5)
    if temperature == 0.01:  # the release's --kl_logit: a' / T is about 100
        assert float(pose_term) == pytest.approx(49.99994, abs=1e-4)


def _release(pose, rgb, video_mask, text, text_mask_, text_aug, aug_mask, tau=TAU, logit=0.01):
    """kl_double_modal_compute and KL restated in numpy over the (B, B, N, L) similarities, with its
    masked_select rows (row-major), its -1e6 fills and torch.topk's choice of positions."""

    def rows_of(x, mask):  # masked_select of (B, R, C) by a (B, R) row mask -> (rows, C)
        return x[mask]

    def keep_top(x, k):
        keep = np.zeros_like(x, dtype=bool)
        index = torch.from_numpy(x).topk(k, dim=-1).indices.numpy()
        np.put_along_axis(keep, index, True, axis=-1)
        return keep

    def softmax(x, axis):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    def kl(student, teacher):  # F.kl_div(log_softmax(s / T), softmax(t / T), 'batchmean')
        x = student / logit
        log_p = x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))
        q = softmax(teacher / logit, -1)
        terms = np.where(q > 0, q * (np.log(np.where(q > 0, q, 1)) - log_p), 0.0)
        return terms.sum() / len(student)

    b = len(pose)
    tables = {}
    for name, video in (("pose", pose), ("rgb", rgb)):
        s = np.einsum("aid,bjd->abij", video, text)[np.arange(b), np.arange(b)]  # own pairs (B, N, L)
        s_aug = np.einsum("aid,bjd->abij", video, text_aug)[np.arange(b), np.arange(b)]
        vt = s * softmax(s / tau, 2)
        vt[~np.repeat(text_mask_[:, None, :], vt.shape[1], 1)] = -1e6
        tv = s_aug * softmax(s_aug / tau, 1)
        tv[~np.repeat(video_mask[:, :, None], tv.shape[2], 2)] = -1e6
        tables[name] = (rows_of(vt, video_mask), rows_of(tv.transpose(0, 2, 1), aug_mask))
    out = {}
    for student, teacher in (("pose", "rgb"), ("rgb", "pose")):
        halves = []
        for part, k in ((0, 3), (1, 5)):
            target = tables[teacher][part].copy()
            keep = keep_top(target, k)
            target[~keep] = -1e6
            own = tables[student][part].copy()
            own[~keep] = -1e6
            halves.append(kl(own, target))
        out[student] = 0.5 * sum(halves)
    return out["pose"], out["rgb"]


def test_the_release_code_path_with_padded_tokens_and_top_k():
    """Two clips of 7 video tokens (the second with 2 padded), sentences of 8 words (3 and 2 padded), an
    augmented sentence with another mask: every fill and top-k of the release counts."""
    rng = np.random.default_rng(0)

    def unit(*shape):
        x = rng.normal(size=shape)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    pose, rgb, text, text_aug = unit(2, 7, 4), unit(2, 7, 4), unit(2, 8, 4), unit(2, 8, 4)
    video_valid = np.array([[True] * 7, [True] * 5 + [False] * 2])
    text_valid = np.array([[True] * 5 + [False] * 3, [True] * 6 + [False] * 2])
    aug_valid = np.array([[True] * 4 + [False] * 4, [True] * 6 + [False] * 2])
    expected = _release(pose, rgb, video_valid, text, text_valid, text_aug, aug_valid)
    t = {k: torch.from_numpy(v).float() for k, v in (("pose", pose), ("rgb", rgb), ("text", text), ("aug", text_aug))}
    got = rgb_pose_kl(
        t["pose"],
        t["rgb"],
        torch.from_numpy(video_valid),
        t["text"],
        torch.from_numpy(text_valid),
        t["aug"],
        torch.from_numpy(aug_valid),
        TAU,
    )
    for ours, theirs in zip(got, expected):
        assert float(ours) == pytest.approx(theirs, rel=1e-4)
    assert min(expected) > 0


def test_the_loss_adds_the_weighted_distillation_when_asked():
    torch.manual_seed(0)
    model = SEDS(narrow_config(rgb_pose_kl=True, kl_pose_weight=0.5, kl_rgb_weight=0.25)).eval()
    keypoints, windows = torch.randn(2, 20, 49, 2), torch.full((2, 4, 16), -1, dtype=torch.long)
    windows[:, 0], windows[0, 1] = torch.arange(16), torch.arange(4, 20)
    rgb = torch.randn(2, 4, 1024) * (windows[..., :1] >= 0)
    ids = torch.zeros(2, 32, dtype=torch.long)
    ids[:, :4] = torch.tensor([49406, 320, 1125, 49407])
    ids[1, 1] = 2368
    with torch.no_grad():
        video = model.encode_video(keypoints, windows, rgb)
        text = model.encode_text(ids)
        total, parts = model.loss(video, text, text_mask(ids))
        v, t = video.normalised(), normalise(text)
        pose_kl, rgb_kl = rgb_pose_kl(v.stream("pose"), v.stream("rgb"), v.valid, t, text_mask(ids), t, text_mask(ids))
    torch.testing.assert_close(parts["kl"], 0.5 * pose_kl + 0.25 * rgb_kl)
    torch.testing.assert_close(total, sum(parts.values()))
    assert "kl" not in SEDS(narrow_config()).eval().loss(video, text, text_mask(ids))[1]  # off by default
