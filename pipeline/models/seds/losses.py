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

Pose-RGB token distillation (their `--rgb_pose_kl`, off in scripts/train_h2s.sh; modules/modeling.py
`kl_double_modal_compute`, :352-412, weighted at :238-240, summed at :253; until_module.py `KL`,
:205-214), on each clip with its own sentence (a, a), per stream X:
    vt_X[i, j] = s_ij softmax_j(s_i: / tau)      rows: valid video tokens i, over the words j
    tv_X[j, i] = s'_ij softmax_i(s'_:j / tau)    rows: valid words j of the augmented sentence, over i
(invalid words, resp. video tokens, filled with -1e6). The other stream, detached, is the teacher: it
keeps its 3 best words per row of vt and its 5 best video tokens per row of tv, the rest -1e6, and
the student keeps the same positions of its own rows. Each term is the mean over rows of
KL(softmax(teacher / T) || softmax(student / T)), T = 0.01 (--kl_logit), and a stream's loss is
0.5 (KL_vt + KL_tv), weighted 0.5 (--kl_pose_loss, --kl_rgb_loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

PADDINGS = ("authors", "masked")
KL_FILL = -1e6  # the release's value for masked-out similarities in the distillation
KL_TOP_WORDS = 3  # the teacher's best words per video token (torch.topk(..., 3) at modeling.py:363, :379)
KL_TOP_STEPS = 5  # its best video tokens per word (torch.topk(..., 5) at modeling.py:371, :387)


def normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=-1)


def _softmax(x: torch.Tensor, valid: torch.Tensor, dim: int, padding: str) -> torch.Tensor:
    if padding == "authors":
        return torch.softmax(x, dim=dim)
    return torch.softmax(x.masked_fill(~valid, float("-inf")), dim=dim)


def _masked_mean(x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    weights = valid.to(x.dtype)
    return (x * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)


def filip(
    video: torch.Tensor,
    video_valid: torch.Tensor,
    text: torch.Tensor,
    text_valid: torch.Tensor,
    tau: float = 0.07,
    padding: str = "authors",
    text_t2i: torch.Tensor | None = None,
    text_t2i_valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(I2T, T2I), each (A, B), from normalised video (A, Nv, D) and text (B, Nt, D) tokens;
    `text_t2i` (default `text`) feeds T2I."""
    s = torch.einsum("aid,bjd->abij", video, text)
    i2t = _masked_mean(
        (s * _softmax(s / tau, text_valid[None, :, None, :], 3, padding)).sum(3), video_valid[:, None, :]
    )
    if text_t2i is not None:
        s, text_valid = torch.einsum("aid,bjd->abij", video, text_t2i), text_t2i_valid
    t2i = _masked_mean(
        (s * _softmax(s / tau, video_valid[:, None, :, None], 2, padding)).sum(2), text_valid[None, :, :]
    )
    return i2t, t2i


def cross_entropy_diagonal(logits: torch.Tensor) -> torch.Tensor:
    """CrossEn: mean over rows of -log softmax(row)[diagonal]."""
    return -torch.diagonal(F.log_softmax(logits, dim=-1)).mean()


def contrastive_loss(i2t: torch.Tensor, t2i: torch.Tensor, dual_mix: float = 0.5) -> torch.Tensor:
    first = dual_mix * cross_entropy_diagonal(i2t) + (1 - dual_mix) * cross_entropy_diagonal(i2t.T)
    second = dual_mix * cross_entropy_diagonal(t2i.T) + (1 - dual_mix) * cross_entropy_diagonal(t2i)
    return (first + second) / 2


def matching(
    pose: torch.Tensor, rgb: torch.Tensor, valid: torch.Tensor, tau: float = 0.07, padding: str = "authors"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(P2R, R2P), each (A, A), from normalised pose and rgb tokens (A, N, D) and valid (A, N)."""
    q = torch.einsum("aid,bjd->abij", pose, rgb)
    diagonal = torch.diagonal(q, dim1=2, dim2=3)  # (A, A, N)
    to_rgb = torch.diagonal(_softmax(q / tau, valid[None, :, None, :], 3, padding), dim1=2, dim2=3)
    to_pose = torch.diagonal(_softmax(q / tau, valid[:, None, :, None], 2, padding), dim1=2, dim2=3)
    p2r = (diagonal * to_rgb * valid[:, None, :]).sum(-1)
    r2p = (diagonal * to_pose * valid[None, :, :]).sum(-1)
    return p2r, r2p


def _own_pair_weights(
    video: torch.Tensor,
    video_valid: torch.Tensor,
    text: torch.Tensor,
    text_valid: torch.Tensor,
    tau: float,
    padding: str,
    over_words: bool,
) -> torch.Tensor:
    """(B, N, L) s_ij x softmax(s / tau) of each clip with its own sentence, the softmax over the words
    (`over_words`) or over the video tokens: the terms FILIP sums, before it sums them."""
    s = torch.einsum("bid,bjd->bij", video, text)
    if over_words:
        return s * _softmax(s / tau, text_valid[:, None, :], 2, padding)
    return s * _softmax(s / tau, video_valid[:, :, None], 1, padding)


def _top_positions(x: torch.Tensor, k: int) -> torch.Tensor:
    """Bool mask of the k largest entries of each row (last axis)."""
    index = x.topk(min(k, x.shape[-1]), dim=-1).indices
    return torch.zeros_like(x, dtype=torch.bool).scatter_(-1, index, True)


def _kl_rows(student: torch.Tensor, teacher: torch.Tensor, rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over the `rows` (bool, the leading axes) of KL(softmax(teacher / T) || softmax(student / T)):
    the release's KL with reduction 'batchmean' over its selected rows."""
    divergence = F.kl_div(
        F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="none"
    ).sum(-1)
    return divergence[rows].sum() / rows.sum().clamp(min=1)


def rgb_pose_kl(
    pose: torch.Tensor,
    rgb: torch.Tensor,
    video_valid: torch.Tensor,
    text: torch.Tensor,
    text_valid: torch.Tensor,
    text_aug: torch.Tensor,
    text_aug_valid: torch.Tensor,
    tau: float = 0.07,
    padding: str = "authors",
    temperature: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pose term, rgb term) of the release's token distillation (module docstring), unweighted, from
    normalised pose and rgb tokens (B, N, D), text and augmented-text tokens (B, L, D) of each clip's
    own sentence, and their valid masks."""
    vt, tv = {}, {}
    for name, video in (("pose", pose), ("rgb", rgb)):
        words = _own_pair_weights(video, video_valid, text, text_valid, tau, padding, over_words=True)
        vt[name] = words.masked_fill(~text_valid[:, None, :], KL_FILL)
        steps = _own_pair_weights(video, video_valid, text_aug, text_aug_valid, tau, padding, over_words=False)
        tv[name] = steps.masked_fill(~video_valid[:, :, None], KL_FILL).transpose(1, 2)
    terms = {}
    for student, teacher in (("pose", "rgb"), ("rgb", "pose")):
        halves = []
        for rows, valid, top in ((vt, video_valid, KL_TOP_WORDS), (tv, text_aug_valid, KL_TOP_STEPS)):
            target = rows[teacher].detach()
            keep = _top_positions(target, top)
            halves.append(
                _kl_rows(
                    rows[student].masked_fill(~keep, KL_FILL), target.masked_fill(~keep, KL_FILL), valid, temperature
                )
            )
        terms[student] = 0.5 * (halves[0] + halves[1])
    return terms["pose"], terms["rgb"]
