"""Retrieval metrics from a [clip, sentence] similarity matrix whose diagonal holds the true pairs.

Two protocols (evaluate.protocol):
- `per_clip`: every clip is a query and a candidate; T2V: sentence i (column i) ranks all clips, V2T:
  clip i (row i) ranks all clips' sentences. Clips that share a sentence tie (their columns are equal).
- `authors` (longtaojiang/SEDS main_task_retrieval.py eval_epoch with metrics.py
  tensor_text_to_video_metrics / tensor_video_to_text_sim / compute_metrics): clips are grouped by
  sentence (identical text); the candidates are the S distinct sentences and the S groups.
  V2T: each clip ranks the S sentences (R@K over the N clips);
  T2V: each sentence ranks the S groups, a group scoring its best clip (R@K over the S sentences).
  MedR as the release takes it: T2V np.median (compute_metrics), V2T torch.median, the lower of the
  two middle ranks when their count is even (tensor_text_to_video_metrics).
Ranks are 1-based, one per query. Ties: `pessimistic` ranks the true item after every candidate with
an equal score, rank = #{score >= true score}; `optimistic` before them, rank = 1 + #{score > true
score}. R@K = percentage of queries with rank <= K; MedR, MeanR = median, mean rank.

Neither tie rule is the authors' code exactly. Their T2V (CLIP4Clip's compute_metrics) takes every
position where the sorted row equals the true score (np.where on sorted == diagonal), so a query whose
true score ties with t candidates contributes t ranks (each tied position once) and R@K divides by the
number of ranks, not of queries; their V2T (tensor_text_to_video_metrics) ranks by a double argsort,
which orders tied candidates arbitrarily. Without ties all three agree; with ties the authors' figures
can differ from both of ours, either way (a tied query weighs as many queries as it has tied
positions; docs/fidelity.md).
"""

from __future__ import annotations

import numpy as np

KS = (1, 5, 10)


def ranks_of(scores: np.ndarray, true: np.ndarray, tie_rule: str = "pessimistic") -> np.ndarray:
    """Rank of candidate true[q] within each row q of `scores` (Q, C)."""
    sim = np.asarray(scores, dtype=np.float64)
    if np.isnan(sim).any():
        raise ValueError("similarity has NaN entries")
    target = sim[np.arange(len(sim)), true][:, None]
    if tie_rule == "pessimistic":
        return (sim >= target).sum(axis=1)
    if tie_rule == "optimistic":
        return 1 + (sim > target).sum(axis=1)
    raise ValueError(f"tie_rule must be 'pessimistic' or 'optimistic', got {tie_rule!r}")


def ranks(similarity: np.ndarray, tie_rule: str = "pessimistic") -> np.ndarray:
    """Rank of the diagonal entry within each row of a square matrix."""
    sim = np.asarray(similarity)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1]:
        raise ValueError(f"similarity must be square with true pairs on the diagonal, got {sim.shape}")
    return ranks_of(sim, np.arange(len(sim)), tie_rule)


def rank_metrics(r: np.ndarray, median: str = "mean") -> dict[str, float]:
    """R@K, MedR and MeanR of 1-based ranks. `median`: `mean` of the two middle ranks when their count is
    even (np.median), or the `lower` of them (torch.median, the release's V2T)."""
    out = {f"R@{k}": float(100.0 * np.mean(r <= k)) for k in KS}
    if median == "lower":
        out["MedR"] = float(np.sort(r)[(len(r) - 1) // 2])
    elif median == "mean":
        out["MedR"] = float(np.median(r))
    else:
        raise ValueError(f"median must be 'mean' or 'lower', got {median!r}")
    out["MeanR"] = float(np.mean(r))
    return out


def retrieval_metrics(similarity: np.ndarray, tie_rule: str = "pessimistic") -> dict[str, dict[str, float]]:
    """`per_clip`: {'t2v': {...}, 'v2t': {...}} for a square [clip, sentence] similarity matrix."""
    sim = np.asarray(similarity)
    return {"t2v": rank_metrics(ranks(sim.T, tie_rule)), "v2t": rank_metrics(ranks(sim, tie_rule))}


def group_by_sentence(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(group of each clip (N,), the first clip of each group (S,)): identical stripped texts share a group."""
    first: dict[str, int] = {}
    group = np.empty(len(texts), dtype=np.int64)
    for index, text in enumerate(texts):
        group[index] = first.setdefault(text.strip(), len(first))
    heads = np.empty(len(first), dtype=np.int64)
    for index in range(len(texts) - 1, -1, -1):
        heads[group[index]] = index
    return group, heads


def grouped_metrics(similarity: np.ndarray, texts: list[str], tie_rule: str = "pessimistic"
                    ) -> dict[str, dict[str, float]]:
    """`authors`: metrics of a square [clip, clip's sentence] matrix with clips grouped by sentence."""
    sim = np.asarray(similarity, dtype=np.float64)
    group, heads = group_by_sentence(texts)
    by_sentence = sim[:, heads]                                          # (N clips, S sentences)
    v2t = ranks_of(by_sentence, group, tie_rule)
    best = np.full((len(heads), len(heads)), -np.inf)                    # [group, sentence]: best clip
    np.maximum.at(best, group, by_sentence)
    t2v = ranks_of(best.T, np.arange(len(heads)), tie_rule)
    return {"t2v": rank_metrics(t2v), "v2t": rank_metrics(v2t, median="lower")}


def protocol_metrics(similarity: np.ndarray, texts: list[str], protocol: str, tie_rule: str) -> dict:
    if protocol == "authors":
        return grouped_metrics(similarity, texts, tie_rule)
    if protocol == "per_clip":
        return retrieval_metrics(similarity, tie_rule)
    raise ValueError(f"protocol must be 'authors' or 'per_clip', got {protocol!r}")
