"""The authors' evaluation protocol (grouped_metrics): clips grouped by sentence, V2T over the distinct
sentences, T2V by each group's best clip; both tie rules, on a matrix ranked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.train.metrics import group_by_sentence, grouped_metrics, protocol_metrics, rank_metrics

# 4 clips; clips 0 and 2 share sentence "a" (the second copy with a trailing space: texts are stripped).
TEXTS = ["a", "b", "a ", "c"]
# [clip, clip's sentence]; columns 0 and 2 are the same sentence, so they hold the same scores.
SIM = np.array([
    [0.9, 0.1, 0.9, 0.3],
    [0.2, 0.5, 0.2, 0.5],
    [0.4, 0.6, 0.4, 0.1],
    [0.3, 0.2, 0.3, 0.5],
])
# distinct sentences a, b, c -> by sentence (clip rows):
#   clip 0 [0.9, 0.1, 0.3]  true a: rank 1
#   clip 1 [0.2, 0.5, 0.5]  true b: tie with c -> pessimistic 2, optimistic 1
#   clip 2 [0.4, 0.6, 0.1]  true a: b is higher -> 2
#   clip 3 [0.3, 0.2, 0.5]  true c: rank 1
# groups' best clip per sentence: a = max(clip 0, clip 2) = [0.9, 0.6, 0.3], b = [0.2, 0.5, 0.5], c = [0.3, 0.2, 0.5]
#   sentence a ranks groups by [0.9, 0.2, 0.3]: a first -> 1
#   sentence b by [0.6, 0.5, 0.2]: group a's best clip (clip 2, 0.6) beats b -> 2 (clip 0 alone would give 1)
#   sentence c by [0.3, 0.5, 0.5]: tie with b -> pessimistic 2, optimistic 1


def test_groups():
    group, heads = group_by_sentence(TEXTS)
    assert group.tolist() == [0, 1, 0, 2]
    assert heads.tolist() == [0, 1, 3]


def test_the_release_takes_the_lower_middle_rank_as_v2t_median():
    """torch.median (the release's V2T) takes the lower of the two middle ranks, np.median (its T2V) their mean."""
    r = np.array([4, 1, 2, 7])
    assert rank_metrics(r)["MedR"] == 3.0 and rank_metrics(r, median="lower")["MedR"] == 2.0
    assert rank_metrics(np.array([3, 1, 2]), median="lower")["MedR"] == 2.0


def test_pessimistic_by_hand():
    m = grouped_metrics(SIM, TEXTS, "pessimistic")
    assert m["v2t"] == {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.0, "MeanR": 1.5}      # ranks 1 2 2 1
    t2v = m["t2v"]                                                                                 # ranks 1 2 2
    assert t2v["R@1"] == pytest.approx(100 / 3) and t2v["R@5"] == 100.0
    assert t2v["MedR"] == 2.0 and t2v["MeanR"] == pytest.approx(5 / 3)


def test_optimistic_by_hand():
    m = grouped_metrics(SIM, TEXTS, "optimistic")
    assert m["v2t"] == {"R@1": 75.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.0, "MeanR": 1.25}     # ranks 1 1 2 1
    t2v = m["t2v"]                                                                                 # ranks 1 2 1
    assert t2v["R@1"] == pytest.approx(200 / 3) and t2v["MedR"] == 1.0 and t2v["MeanR"] == pytest.approx(4 / 3)


def test_distinct_sentences_give_the_per_clip_protocol():
    sim = np.array([[0.9, 0.1, 0.3], [0.2, 0.5, 0.6], [0.4, 0.6, 0.1]])
    texts = ["a", "b", "c"]
    assert protocol_metrics(sim, texts, "authors", "pessimistic") == protocol_metrics(sim, texts, "per_clip",
                                                                                       "pessimistic")


def test_unknown_protocol_and_tie_rule_are_refused():
    with pytest.raises(ValueError, match="protocol must be"):
        protocol_metrics(SIM, TEXTS, "grouped", "pessimistic")
    with pytest.raises(ValueError, match="tie_rule"):
        grouped_metrics(SIM, TEXTS, "random")
