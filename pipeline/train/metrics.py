"""Retrieval metrics from a [clip, sentence] similarity matrix whose diagonal holds the true pairs.

Two protocols (evaluate.protocol):
- `per_clip`: every clip is a query and a candidate; T2V: sentence i (column i) ranks all clips, V2T:
  clip i (row i) ranks all clips' sentences. Clips that share a sentence tie (their columns are equal).
- `authors` (longtaojiang/SEDS main_task_retrieval.py eval_epoch with the release's metrics.py,
  imported at main_task_retrieval.py:11: tensor_text_to_video_metrics, tensor_video_to_text_sim,
  compute_metrics): clips are grouped by sentence (pipeline/train/groups.py: the sentence id where the
  annotations give one, as the release's split keys, else identical text); the candidates are the S
  group sentences and the S groups. V2T: each clip ranks the S sentences (R@K over the N clips);
  T2V: each sentence ranks the S groups, a group scoring its best clip (R@K over the S sentences).
  MedR as the release takes it: T2V np.median (compute_metrics), V2T torch.median, the lower of the
  two middle ranks when their count is even (tensor_text_to_video_metrics).
Ranks are 1-based, one per query. Ties: `pessimistic` ranks the true item after every candidate with
an equal score, rank = #{score >= true score}; `optimistic` before them, rank = 1 + #{score > true
score}. R@K = percentage of queries with rank <= K; MedR, MeanR = median, mean rank.

Neither tie rule is the authors' code exactly. Their T2V (compute_metrics) takes every position where
the sorted row equals the true score (np.where on sorted == diagonal), so a query whose true score ties
with t candidates contributes t ranks (each tied position once) and R@K divides by the number of ranks,
not of queries; their V2T (tensor_text_to_video_metrics) ranks by a double argsort, which orders tied
candidates arbitrarily. Without ties all three agree; with ties the authors' figures can differ from
both of ours, either way (a tied query weighs as many queries as it has tied positions;
docs/fidelity.md). Sentence groups with identical texts (How2Sign's "Hi!" under several sentence ids)
always tie in V2T, as in the release.

`T2VRetrieval` is the one place a T2V rank comes from: the metrics count its ranks and the top-3
figure (pipeline/report/retrieval_figure.py) shows its order, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.train.groups import SentenceGroups

KS = (1, 5, 10)
PROTOCOLS = ("authors", "per_clip")


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


@dataclass(frozen=True)
class Retrieved:
    """One T2V candidate as shown: the clip standing for it, its score, and whether it is the true one."""

    clip: int
    score: float
    correct: bool


class T2VRetrieval:
    """Text-to-video retrieval as `protocol` ranks it, from a square [clip, sentence of clip j] matrix.
    scores[q, c]: candidate c for query sentence q; true[q]: the right candidate.
    per_clip: queries are the N clips' sentences, candidates the N clips;
    authors: queries are the S group sentences, candidates the S groups, each scored by its best clip
    (the release's tensor_video_to_text_sim: a max over the group's clips)."""

    def __init__(self, similarity: np.ndarray, groups: SentenceGroups, protocol: str):
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be 'authors' or 'per_clip', got {protocol!r}")
        self.similarity = np.asarray(similarity, dtype=np.float64)
        self.groups, self.protocol = groups, protocol
        if protocol == "per_clip":
            self.scores = self.similarity.T
        else:
            by_sentence = self.similarity[:, groups.heads]  # (N clips, S sentences)
            best = np.full((len(groups.heads), len(groups.heads)), -np.inf)  # [group, sentence]
            np.maximum.at(best, groups.group, by_sentence)
            self.scores = best.T
        self.true = np.arange(len(self.scores))

    def ranks(self, tie_rule: str) -> np.ndarray:
        """Rank of the true candidate for every query (Q,)."""
        return ranks_of(self.scores, self.true, tie_rule)

    def query_of(self, clip: int) -> int:
        """The query whose sentence is clip `clip`'s."""
        return clip if self.protocol == "per_clip" else int(self.groups.group[clip])

    def top(self, query: int, k: int, tie_rule: str) -> list[Retrieved]:
        """The k best candidates for `query`, best first, in the order `ranks` counts: the true one after
        equal scores (pessimistic) or before them (optimistic); other ties by candidate number. A group
        is shown by its best clip for this sentence (the first such clip on a tie)."""
        row, true = self.scores[query], int(self.true[query])
        is_true = np.arange(len(row)) == true
        tie_break = is_true if tie_rule == "pessimistic" else ~is_true
        order = np.lexsort((np.arange(len(row)), tie_break, -row))[:k]
        return [Retrieved(self._clip_for(query, int(c)), float(row[c]), bool(c == true)) for c in order]

    def _clip_for(self, query: int, candidate: int) -> int:
        if self.protocol == "per_clip":
            return candidate
        members = np.flatnonzero(self.groups.group == candidate)
        column = self.groups.heads[query]
        return int(members[np.argmax(self.similarity[members, column])])


def grouped_metrics(
    similarity: np.ndarray, groups: SentenceGroups, tie_rule: str = "pessimistic"
) -> dict[str, dict[str, float]]:
    """`authors`: metrics of a square [clip, clip's sentence] matrix with clips grouped by sentence."""
    sim = np.asarray(similarity, dtype=np.float64)
    v2t = ranks_of(sim[:, groups.heads], groups.group, tie_rule)
    t2v = T2VRetrieval(sim, groups, "authors").ranks(tie_rule)
    return {"t2v": rank_metrics(t2v), "v2t": rank_metrics(v2t, median="lower")}


def protocol_metrics(similarity: np.ndarray, groups: SentenceGroups, protocol: str, tie_rule: str) -> dict:
    if protocol == "authors":
        return grouped_metrics(similarity, groups, tie_rule)
    if protocol == "per_clip":
        return retrieval_metrics(similarity, tie_rule)
    raise ValueError(f"protocol must be 'authors' or 'per_clip', got {protocol!r}")
