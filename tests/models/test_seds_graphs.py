"""The SEDS part graphs' partitioned adjacency, entry by entry, against values worked out by hand and
against a second derivation of the authors' algorithm (longtaojiang/SEDS modules/modeling_graph.py:
hop distances, A . D^-1 normalisation, then symmetry > equal level > towards / away from the centre)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models.seds.graphs import BODY, HAND, Graph

SELF, TOWARDS, AWAY, SYMMETRY = range(4)


def authors_adjacency(graph: Graph) -> np.ndarray:
    """The authors' spatial strategy re-derived for max_hop 1 and one frame: A[k, source, target]."""
    v = graph.num_joints
    linked = np.eye(v)
    for a, b in graph.links + graph.symmetry:
        linked[a, b] = linked[b, a] = 1
    normalised = linked / linked.sum(axis=0, keepdims=True)  # A . D^-1: column w scaled by 1/deg(w)
    sym = {(a, b) for a, b in graph.symmetry} | {(b, a) for a, b in graph.symmetry}
    out = np.zeros((4, v, v))
    level = graph.levels
    for target in range(v):
        for source in range(v):
            if source == target:
                out[SELF, source, target] = normalised[source, target]
            elif not linked[source, target]:
                continue
            elif (source, target) in sym:
                out[SYMMETRY, source, target] = normalised[source, target]
            elif level[source] == level[target]:
                continue  # their hop-1 root subset, computed and never kept
            elif level[source] > level[target]:
                out[TOWARDS, source, target] = normalised[source, target]
            else:
                out[AWAY, source, target] = normalised[source, target]
    return out


def test_pooled_body_graph_by_hand():
    """Nodes: 0 left arm, 1 right arm, 2 nose. Links arm-nose and arm-arm, arm-arm also a symmetry.
    Degrees (self included): left arm 3, right arm 2, nose 2. All levels are 0, so the arm-nose link
    falls in the discarded equal-level subset, and the arm-arm link is carried as a symmetry."""
    a = BODY.pooled.adjacency()
    expected = np.zeros((4, 3, 3))
    expected[SELF] = np.diag([1 / 3, 1 / 2, 1 / 2])
    expected[SYMMETRY, 0, 1] = 1 / 2  # left arm -> right arm: 1 / degree(right arm)
    expected[SYMMETRY, 1, 0] = 1 / 3  # right arm -> left arm: 1 / degree(left arm)
    assert a.shape == (4, 3, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a, expected, rtol=0, atol=1e-7)
    # the nose link is counted in the degrees but carries nothing: the columns do not sum to 1
    np.testing.assert_allclose(a.sum(axis=(0, 1)), [2 / 3, 1.0, 1 / 2], atol=1e-7)


def test_hand_wrist_row_by_hand():
    """The wrist (level 0, degree 6: itself + 5 finger bases) sends only away from the centre, to each
    base with 1/degree(base): thumb and little bases have 4 (self, wrist, next joint, one symmetry
    neighbour), index, middle and ring bases 5 (two symmetry neighbours)."""
    a = HAND.joints.adjacency()
    assert a[SELF, 0, 0] == pytest.approx(1 / 6)
    away = np.zeros(21)
    away[[1, 17]] = 1 / 4
    away[[5, 9, 13]] = 1 / 5
    np.testing.assert_allclose(a[AWAY, 0], away, atol=1e-7)
    assert not a[TOWARDS, 0].any() and not a[SYMMETRY, 0].any()
    # and every base sends to the wrist towards the centre, with 1/degree(wrist)
    np.testing.assert_allclose(a[TOWARDS, [1, 5, 9, 13, 17], 0], 1 / 6, atol=1e-7)


def test_hand_symmetry_pair_and_directions_by_hand():
    a = HAND.joints.adjacency()
    # thumb base 1 (degree 4) and index base 5 (degree 5) are a symmetry pair
    assert a[SYMMETRY, 5, 1] == pytest.approx(1 / 4)
    assert a[SYMMETRY, 1, 5] == pytest.approx(1 / 5)
    assert a[TOWARDS, 5, 1] == a[AWAY, 5, 1] == a[TOWARDS, 1, 5] == a[AWAY, 1, 5] == 0
    # thumb tip 4 (level 4; links: 3 and symmetry 8; degree 3) and joint 3 (level 3; 2, 4, symmetry 7: degree 4)
    assert a[TOWARDS, 4, 3] == pytest.approx(1 / 4)  # centripetal: tip -> 3, 1/degree(3)
    assert a[AWAY, 3, 4] == pytest.approx(1 / 3)  # centrifugal: 3 -> tip, 1/degree(tip)
    assert a[AWAY, 4, 3] == a[TOWARDS, 3, 4] == 0
    assert a[SYMMETRY, 8, 4] == pytest.approx(1 / 3)
    # not linked: thumb tip and wrist
    assert not a[:, 4, 0].any() and not a[:, 0, 4].any()


@pytest.mark.parametrize("graph", [HAND.joints, HAND.pooled, BODY.joints], ids=lambda g: g.name)
def test_columns_sum_to_one_where_no_link_is_dropped(graph):
    """Every target averages its neighbourhood: 1/degree per linked source, nothing dropped here."""
    np.testing.assert_allclose(graph.adjacency().sum(axis=(0, 1)), 1.0, atol=1e-6)


@pytest.mark.parametrize("graph", [HAND.joints, HAND.pooled, BODY.joints, BODY.pooled], ids=lambda g: g.name)
def test_every_entry_equals_the_authors_algorithm(graph):
    np.testing.assert_allclose(graph.adjacency(), authors_adjacency(graph), rtol=0, atol=1e-7)


def test_sub_parts_are_the_authors():
    # modeling_graph.py 'stb': thumb [2,3,4] ... little [18,19,20], centre bone [0,1,5,9,13,17]; body arms + nose
    assert HAND.sub_parts == ((2, 3, 4), (6, 7, 8), (10, 11, 12), (14, 15, 16), (18, 19, 20), (0, 1, 5, 9, 13, 17))
    assert BODY.sub_parts == ((1, 2, 3), (4, 5, 6), (0,))
    for part in (HAND, BODY):
        covered = sorted(j for sub in part.sub_parts for j in sub)
        assert covered == list(range(part.joints.num_joints))
        assert len(part.sub_parts) == part.pooled.num_joints


def test_a_symmetry_link_takes_precedence_over_the_levels():
    """None of our graphs has a symmetry link across levels; the rule (the authors' first test) still
    holds: a 2-joint graph whose one link is a symmetry between levels 0 and 1 puts it in subset 3."""
    a = Graph("two", levels=(0, 1), links=(), symmetry=((0, 1),)).adjacency()
    expected = np.zeros((4, 2, 2))
    expected[SELF] = np.eye(2) / 2
    expected[SYMMETRY] = [[0, 1 / 2], [1 / 2, 0]]
    np.testing.assert_allclose(a, expected, atol=1e-7)
