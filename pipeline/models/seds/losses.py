"""Fine-grained (FILIP-style) text-video similarities and the SEDS objectives, as the authors' code has them.

Token similarity: s[a, b, i, j] = cos(video token i of clip a, text token j of sentence b).

- video-to-text similarity  V2T[a, b] = mean over valid video tokens i of  sum_j s_aij * softmax_j(s_aij / tau)
  (each clip step picks, softly, the words it matches best);
- text-to-video similarity  T2V[a, b] = mean over valid text tokens j of  sum_i s_aij * softmax_i(s_aij / tau)
  (each word picks the steps it matches best).
Softmaxes run over valid tokens only (the authors' code relies on NaN-skipping sums instead; where
nothing is padded the two agree). tau = 0.07. Logits are these similarities times exp(logit_scale).

Contrastive loss on a pair of logit matrices (both indexed [clip, sentence]), with dual_mix m:
    CE(M) = mean_a -log softmax_b(M)[a, a]   (rows are queries; the diagonal holds the true pairs)
    loss  = ( m CE(V2T) + (1-m) CE(V2T^T)  +  m CE(T2V^T) + (1-m) CE(T2V) ) / 2
so with m = 0.5 each similarity is used in both retrieval directions (symmetric InfoNCE). In training
the T2V similarity is computed with the augmented sentence (EDA random swap), V2T with the original,
as the authors do (aug_choose 't2v').

Pose-RGB matching (the paper's fine-grained Pose-RGB matching objective, weight 0.4): with
q[a, b, i, j] = cos(pose step i of clip a, RGB step j of clip b),
    P2R[a, b] = sum over valid steps i of clip a of  q_abii * softmax_j(q_abi: / tau)_i
    R2P[a, b] = sum over valid steps j of clip b of  q_abjj * softmax_i(q_ab:j / tau)_j
i.e. a pose step and the RGB step at the same time count when that RGB step is the one the pose step
attends to (and vice versa); the same contrastive loss runs on (P2R, R2P). `reduce` 'sum' is the
authors' choice; 'mean' divides by the number of valid steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def normalise(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=-1)


def token_similarity(video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """video (Bv, Lv, D), text (Bt, Lt, D), both L2-normalised -> (Bv, Bt, Lv, Lt) cosines."""
    return torch.einsum("aid,bjd->abij", video, text)


def _masked_softmax(x: torch.Tensor, valid: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.softmax(x.masked_fill(~valid, float("-inf")), dim=dim)


def filip_similarities(video: torch.Tensor, video_mask: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor,
                       tau: float = 0.07, text_t2v: torch.Tensor | None = None,
                       text_t2v_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(V2T, T2V), each (Bv, Bt), from normalised tokens. `text_t2v` (default `text`) feeds T2V."""
    vm = video_mask[:, None, :, None]                                     # a, 1, i, 1
    s = token_similarity(video, text)
    tm = text_mask[None, :, None, :]                                      # 1, b, 1, j
    per_step = (s * _masked_softmax(s / tau, tm, dim=3)).sum(3)           # a, b, i
    vmf = video_mask[:, None, :].to(s.dtype)
    v2t = (per_step * vmf).sum(-1) / vmf.sum(-1).clamp(min=1.0)
    if text_t2v is not None:
        s = token_similarity(video, text_t2v)
        tm = text_t2v_mask[None, :, None, :]
    per_word = (s * _masked_softmax(s / tau, vm, dim=2)).sum(2)           # a, b, j
    tmf = tm[:, :, 0, :].to(s.dtype)
    t2v = (per_word * tmf).sum(-1) / tmf.sum(-1).clamp(min=1.0)
    return v2t, t2v


def cross_entropy_diagonal(logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of -log softmax(row)[diagonal]: the authors' CrossEn."""
    return -torch.diagonal(F.log_softmax(logits, dim=-1)).mean()


def contrastive_loss(v2t: torch.Tensor, t2v: torch.Tensor, dual_mix: float = 0.5) -> torch.Tensor:
    """Symmetric InfoNCE on a (V2T, T2V) pair of [clip, sentence] logit matrices (module docstring)."""
    first = dual_mix * cross_entropy_diagonal(v2t) + (1 - dual_mix) * cross_entropy_diagonal(v2t.T)
    second = dual_mix * cross_entropy_diagonal(t2v.T) + (1 - dual_mix) * cross_entropy_diagonal(t2v)
    return (first + second) / 2


def matching_similarities(pose: torch.Tensor, rgb: torch.Tensor, step_mask: torch.Tensor, tau: float = 0.07,
                          reduce: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """(P2R, R2P), each (B, B), from normalised step tokens (module docstring)."""
    q = token_similarity(pose, rgb)                                       # a, b, i, j
    same = torch.diagonal(q, dim1=2, dim2=3)                              # a, b, i (q_abii)
    key_b = step_mask[None, :, None, :]                                   # RGB steps of clip b
    key_a = step_mask[:, None, :, None]                                   # pose steps of clip a
    w_p2r = torch.diagonal(_masked_softmax(q / tau, key_b, dim=3), dim1=2, dim2=3)
    w_r2p = torch.diagonal(_masked_softmax(q / tau, key_a, dim=2), dim1=2, dim2=3)
    valid_a = step_mask[:, None, :].to(q.dtype)
    valid_b = step_mask[None, :, :].to(q.dtype)
    p2r = (same * w_p2r * valid_a).sum(-1)
    r2p = (same * w_r2p * valid_b).sum(-1)
    if reduce == "mean":
        p2r = p2r / valid_a.sum(-1).clamp(min=1.0)
        r2p = r2p / valid_b.sum(-1).clamp(min=1.0)
    elif reduce != "sum":
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    return p2r, r2p
