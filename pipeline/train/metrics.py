"""Retrieval metrics from a [clip, sentence] similarity matrix whose diagonal holds the true pairs.

T2V: each sentence (column) ranks all clips; V2T: each clip (row) ranks all sentences. The rank of the
true item is 1-based. Ties: `pessimistic` (the default) ranks the true item after every candidate
with an equal score, rank = #{score >= true score}; `optimistic` before them, rank = 1 + #{score > true
score}. Pessimistic never rewards a collapsed model: all-equal scores give rank N, not 1.

R@K = percentage of queries with rank <= K; MedR = median rank; MeanR = mean rank.
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)


def ranks(similarity: np.ndarray, tie_rule: str = "pessimistic") -> np.ndarray:
    """Rank of the diagonal entry within each row of a square matrix."""
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be square with true pairs on the diagonal, got {sim.shape}")
    if np.isnan(sim).any():
        raise ValueError("similarity has NaN entries")
    true = np.diagonal(sim)[:, None]
    if tie_rule == "pessimistic":
        return (sim >= true).sum(axis=1)
    if tie_rule == "optimistic":
        return 1 + (sim > true).sum(axis=1)
    raise ValueError(f"tie_rule must be 'pessimistic' or 'optimistic', got {tie_rule!r}")


def rank_metrics(r: np.ndarray) -> dict[str, float]:
    out = {f"R@{k}": float(100.0 * np.mean(r <= k)) for k in KS}
    out["MedR"] = float(np.median(r))
    out["MeanR"] = float(np.mean(r))
    return out


def retrieval_metrics(similarity: np.ndarray, tie_rule: str = "pessimistic") -> dict[str, dict[str, float]]:
    """{'t2v': {...}, 'v2t': {...}} for a [clip, sentence] similarity matrix."""
    sim = np.asarray(similarity)
    return {"t2v": rank_metrics(ranks(sim.T, tie_rule)), "v2t": rank_metrics(ranks(sim, tie_rule))}
