"""R@K, MedR and MeanR against a hand-ranked similarity matrix with ties."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.train.metrics import ranks, retrieval_metrics

# [clip, sentence]; the true pairs are the diagonal.
SIM = np.array(
    [
        [0.9, 0.1, 0.2, 0.0],  # clip 0: its sentence is best                     -> V2T rank 1
        [0.5, 0.5, 0.4, 0.6],  # clip 1: tie with sentence 0, sentence 3 higher    -> pessimistic 3, optimistic 2
        [0.3, 0.3, 0.3, 0.3],  # clip 2: all equal                                 -> pessimistic 4, optimistic 1
        [0.2, 0.8, 0.1, 0.7],  # clip 3: sentence 1 higher                         -> 2
    ]
)


def test_v2t_ranks_by_hand():
    assert ranks(SIM, "pessimistic").tolist() == [1, 3, 4, 2]
    assert ranks(SIM, "optimistic").tolist() == [1, 2, 1, 2]


def test_t2v_ranks_by_hand():
    # sentence 0: clip 0 (0.9) is best -> 1; sentence 1: clip 3 (0.8) above clip 1 (0.5) -> 2;
    # sentence 2: clip 1 (0.4) above clip 2 (0.3) -> 2; sentence 3: clip 3 (0.7) is best -> 1
    assert ranks(SIM.T, "pessimistic").tolist() == [1, 2, 2, 1]


def test_metrics_by_hand():
    m = retrieval_metrics(SIM, "pessimistic")
    assert m["v2t"] == {"R@1": 25.0, "R@5": 100.0, "R@10": 100.0, "MedR": 2.5, "MeanR": 2.5}
    assert m["t2v"] == {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.5, "MeanR": 1.5}
    optimistic = retrieval_metrics(SIM, "optimistic")["v2t"]
    assert optimistic["R@1"] == 50.0 and optimistic["MeanR"] == 1.5


def test_collapsed_scores_rank_last_when_pessimistic():
    flat = np.zeros((40, 40))
    assert retrieval_metrics(flat)["t2v"]["R@1"] == 0.0
    assert retrieval_metrics(flat)["t2v"]["MedR"] == 40.0


def test_bad_matrices_are_refused():
    with pytest.raises(ValueError, match="square"):
        ranks(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        ranks(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="tie_rule"):
        ranks(np.eye(2), "random")
