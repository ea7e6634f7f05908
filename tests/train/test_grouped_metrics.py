"""The authors' evaluation protocol (grouped_metrics): clips grouped by sentence (sentence id, else text),
V2T over the groups' sentences, T2V by each group's best clip; both tie rules and the release's medians,
on matrices ranked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.train.groups import sentence_groups
from pipeline.train.metrics import T2VRetrieval, grouped_metrics, protocol_metrics, rank_metrics

# 4 clips; clips 0 and 2 share sentence "a" (the second copy with a trailing space: texts are stripped).
TEXTS = ["a", "b", "a ", "c"]
# [clip, clip's sentence]; columns 0 and 2 are the same sentence, so they hold the same scores.
SIM = np.array(
    [
        [0.9, 0.1, 0.9, 0.3],
        [0.2, 0.5, 0.2, 0.5],
        [0.4, 0.6, 0.4, 0.1],
        [0.3, 0.2, 0.3, 0.5],
    ]
)
# distinct sentences a, b, c -> by sentence (clip rows):
#   clip 0 [0.9, 0.1, 0.3]  true a: rank 1
#   clip 1 [0.2, 0.5, 0.5]  true b: tie with c -> pessimistic 2, optimistic 1
#   clip 2 [0.4, 0.6, 0.1]  true a: b is higher -> 2
#   clip 3 [0.3, 0.2, 0.5]  true c: rank 1
# groups' best clip per sentence: a = max(clip 0, clip 2) = [0.9, 0.6, 0.3], b = [0.2, 0.5, 0.5], c = [0.3, 0.2, 0.5]
#   sentence a ranks groups by [0.9, 0.2, 0.3]: a first -> 1
#   sentence b by [0.6, 0.5, 0.2]: group a's best clip (clip 2, 0.6) beats b -> 2 (clip 0 alone would give 1)
#   sentence c by [0.3, 0.5, 0.5]: tie with b -> pessimistic 2, optimistic 1
GROUPS = sentence_groups(TEXTS)


def test_groups():
    assert GROUPS.group.tolist() == [0, 1, 0, 2]
    assert GROUPS.heads.tolist() == [0, 1, 3]
    assert GROUPS.by == "text (no clip has a sentence_id)" and GROUPS.members == [[0, 2], [1], [3]]


def test_sentence_ids_keep_equal_texts_apart_and_group_the_rest_by_text():
    """How2Sign's "Hi!" under several sentence ids stays several sentences; a clip without an id joins
    its text's group."""
    texts = ["Hi!", "Hi!", "Hi!", "OK?", "Hi!", "OK? "]
    ids = ["a_0", "b_0", "a_0", "c_0", None, ""]
    groups = sentence_groups(texts, ids)
    assert groups.group.tolist() == [0, 1, 0, 2, 3, 4] and groups.heads.tolist() == [0, 1, 3, 4, 5]
    assert groups.by == "sentence_id (4 clips), text (2 clips without one)"
    assert sentence_groups(texts, ids, "text").members == [[0, 1, 2, 4], [3, 5]]
    assert sentence_groups(texts, ["a", "b", "a", "c", "d", "e"]).by == "sentence_id"
    with pytest.raises(ValueError, match="grouping rule"):
        sentence_groups(texts, ids, "video")


def test_the_release_takes_the_lower_middle_rank_as_v2t_median():
    """torch.median (the release's V2T) takes the lower of the two middle ranks, np.median (its T2V) their mean."""
    r = np.array([4, 1, 2, 7])
    assert rank_metrics(r)["MedR"] == 3.0 and rank_metrics(r, median="lower")["MedR"] == 2.0
    assert rank_metrics(np.array([3, 1, 2]), median="lower")["MedR"] == 2.0


def test_pessimistic_by_hand():
    m = grouped_metrics(SIM, GROUPS, "pessimistic")
    assert m["v2t"] == {"R@1": 50.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.0, "MeanR": 1.5}  # ranks 1 2 2 1
    t2v = m["t2v"]  # ranks 1 2 2
    assert t2v["R@1"] == pytest.approx(100 / 3) and t2v["R@5"] == 100.0
    assert t2v["MedR"] == 2.0 and t2v["MeanR"] == pytest.approx(5 / 3)


def test_optimistic_by_hand():
    m = grouped_metrics(SIM, GROUPS, "optimistic")
    assert m["v2t"] == {"R@1": 75.0, "R@5": 100.0, "R@10": 100.0, "MedR": 1.0, "MeanR": 1.25}  # ranks 1 1 2 1
    t2v = m["t2v"]  # ranks 1 2 1
    assert t2v["R@1"] == pytest.approx(200 / 3) and t2v["MedR"] == 1.0 and t2v["MeanR"] == pytest.approx(4 / 3)


def test_sentence_id_groups_split_an_identical_text_into_tied_candidates():
    """Clips 0 and 2 say the same text under two sentence ids: two candidates with equal columns. Text
    grouping merges them (the ranks above); sentence ids keep four groups, as the release does.
    by sentence (clip rows, columns a0, b, a2, c): clip 0 [0.9, 0.1, 0.9, 0.3] true a0: ties a2 -> 2
      clip 1 [0.2, 0.5, 0.2, 0.5] true b: ties c -> 2; clip 2 [0.4, 0.6, 0.4, 0.1] true a2: b higher, ties a0 -> 3;
      clip 3 [0.3, 0.2, 0.3, 0.5] true c -> 1.  V2T ranks 2 2 3 1: R@1 25, MedR (lower) 2, MeanR 2.
    T2V, each group its only clip: sentence a0 ranks [0.9, 0.2, 0.4, 0.3] -> 1; b [0.1, 0.5, 0.6, 0.2] -> 2;
      a2 [0.9, 0.2, 0.4, 0.3] -> 2; c [0.3, 0.5, 0.1, 0.5] -> 2 (tie).  R@1 25, MedR 2, MeanR 1.75."""
    groups = sentence_groups(TEXTS, ["a_0", "b_0", "a_1", "c_0"])
    m = grouped_metrics(SIM, groups, "pessimistic")
    assert m["v2t"] == {"R@1": 25.0, "R@5": 100.0, "R@10": 100.0, "MedR": 2.0, "MeanR": 2.0}
    assert m["t2v"] == {"R@1": 25.0, "R@5": 100.0, "R@10": 100.0, "MedR": 2.0, "MeanR": 1.75}
    assert m != grouped_metrics(SIM, GROUPS, "pessimistic")


def test_t2v_retrieval_shows_groups_by_their_best_clip_in_the_metrics_order():
    table = T2VRetrieval(SIM, GROUPS, "authors")
    assert table.query_of(2) == 0 and table.ranks("pessimistic").tolist() == [1, 2, 2]
    hits = table.top(1, 3, "pessimistic")  # sentence b: group a by its clip 2 (0.6)
    assert [(h.clip, h.score, h.correct) for h in hits] == [(2, 0.6, False), (1, 0.5, True), (3, 0.2, False)]
    assert [h.clip for h in table.top(2, 2, "optimistic")] == [3, 1]  # sentence c ties b: optimistic puts c first
    per_clip = T2VRetrieval(SIM, GROUPS, "per_clip")
    assert per_clip.query_of(2) == 2 and [h.clip for h in per_clip.top(1, 3, "pessimistic")] == [2, 1, 3]


def test_distinct_sentences_give_the_per_clip_protocol():
    sim = np.array([[0.9, 0.1, 0.3], [0.2, 0.5, 0.6], [0.4, 0.6, 0.1]])
    groups = sentence_groups(["a", "b", "c"])
    authors = protocol_metrics(sim, groups, "authors", "pessimistic")
    per_clip = protocol_metrics(sim, groups, "per_clip", "pessimistic")
    assert authors["t2v"] == per_clip["t2v"]  # V2T differs only where the median rule does (odd count here)
    assert authors["v2t"] == per_clip["v2t"]


def test_unknown_protocol_and_tie_rule_are_refused():
    with pytest.raises(ValueError, match="protocol must be"):
        protocol_metrics(SIM, GROUPS, "grouped", "pessimistic")
    with pytest.raises(ValueError, match="tie_rule"):
        grouped_metrics(SIM, GROUPS, "random")
