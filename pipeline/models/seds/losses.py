"""Fine-grained (FILIP-style) similarities and the SEDS objectives, as the authors compute them.

Authors: longtaojiang/SEDS modules/modeling.py, CLIP4Clip.flip_similarity_softmax and
CLIP4Clip.forward; modules/until_module.py, CrossEn.

With L2-normalised tokens, s[a, b, i, j] = cos(video token i of clip a, text token j of sentence b):
    I2T[a, b] = mean over the valid video tokens i of   sum_j s_abij softmax_j(s_abi: / tau)
    T2I[a, b] = mean over the valid text tokens j of    sum_i s_abij softmax_i(s_ab:j / tau)
Video tokens are the tower's steps + 1 tokens (class token included, padded windows invalid); text
tokens are the max_words positions (valid up to the end token). `padding` says what the softmaxes
run over: 'authors' = every token, padded ones included (their code; the masks only pick which rows
are averaged), 'masked' = valid tokens only. tau = 0.07. Logits are similarities x exp(logit_scale).

Contrastive loss of a [clip, sentence] pair (I2T, T2I) with dual_mix m (CrossEn = mean over rows of
-log softmax(row)[diagonal]):
    ( m CE(I2T) + (1 - m) CE(I2T^T)  +  m CE(T2I^T) + (1 - m) CE(T2I) ) / 2
In training T2I uses the augmented sentence (aug_choose 't2v'), I2T the original.

Pose-RGB matching (their `rgb_pose_match`), q[a, b, i, j] = cos(pose token i of clip a, RGB token j of b):
    P2R[a, b] = sum over clip a's valid tokens i of  q_abii softmax_j(q_abi: / tau)_i
    R2P[a, b] = sum over clip b's valid tokens j of  q_abjj softmax_i(q_ab:j / tau)_j
(softmaxes as `padding` says), and the same contrastive loss on (P2R, R2P), weighted 0.4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PADDINGS = ("authors", "masked")


def normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=-1)


def _softmax(x: torch.Tensor, valid: torch.Tensor, dim: int, padding: str) -> torch.Tensor:
    if padding == "authors":
        return torch.softmax(x, dim=dim)
    return torch.softmax(x.masked_fill(~valid, float("-inf")), dim=dim)


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    weights = valid.to(x.dtype)
    return (x * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)


def filip(video: torch.Tensor, video_valid: torch.Tensor, text: torch.Tensor, text_valid: torch.Tensor,
          tau: float = 0.07, padding: str = "authors", text_t2i: torch.Tensor | None = None,
          text_t2i_valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(I2T, T2I), each (A, B), from normalised video (A, Nv, D) and text (B, Nt, D) tokens;
    `text_t2i` (default `text`) feeds T2I."""
    s = torch.einsum("aid,bjd->abij", video, text)
    i2t = _masked_mean((s * _softmax(s / tau, text_valid[None, :, None, :], 3, padding)).sum(3),
                       video_valid[:, None, :])
    if text_t2i is not None:
        s, text_valid = torch.einsum("aid,bjd->abij", video, text_t2i), text_t2i_valid
    t2i = _masked_mean((s * _softmax(s / tau, video_valid[:, None, :, None], 2, padding)).sum(2),
                       text_valid[None, :, :])
    return i2t, t2i


def cross_entropy_diagonal(logits: torch.Tensor) -> torch.Tensor:
    """CrossEn: mean over rows of -log softmax(row)[diagonal]."""
    return -torch.diagonal(F.log_softmax(logits, dim=-1)).mean()


def contrastive_loss(i2t: torch.Tensor, t2i: torch.Tensor, dual_mix: float = 0.5) -> torch.Tensor:
    first = dual_mix * cross_entropy_diagonal(i2t) + (1 - dual_mix) * cross_entropy_diagonal(i2t.T)
    second = dual_mix * cross_entropy_diagonal(t2i.T) + (1 - dual_mix) * cross_entropy_diagonal(t2i)
    return (first + second) / 2


def matching(pose: torch.Tensor, rgb: torch.Tensor, valid: torch.Tensor, tau: float = 0.07,
             padding: str = "authors") -> tuple[torch.Tensor, torch.Tensor]:
    """(P2R, R2P), each (A, A), from normalised pose and rgb tokens (A, N, D) and valid (A, N)."""
    q = torch.einsum("aid,bjd->abij", pose, rgb)
    diagonal = torch.diagonal(q, dim1=2, dim2=3)                                        # (A, A, N)
    to_rgb = torch.diagonal(_softmax(q / tau, valid[None, :, None, :], 3, padding), dim1=2, dim2=3)
    to_pose = torch.diagonal(_softmax(q / tau, valid[:, None, :, None], 2, padding), dim1=2, dim2=3)
    p2r = (diagonal * to_rgb * valid[:, None, :]).sum(-1)
    r2p = (diagonal * to_pose * valid[None, :, :]).sum(-1)
    return p2r, r2p
