"""The skeleton graphs of the SEDS GCNs and their partitioned adjacency, as the authors build them.

Authors: longtaojiang/SEDS modules/modeling_graph.py (class Graph, layouts 'stb' = hand and 'body';
class Graph_pool, the graphs of pooled parts; get_hop_distance, normalize_digraph).

A graph is a list of joints with a *level* each (the authors' `dist_center`), tree links and symmetry
links. Its adjacency is the authors' variant of ST-GCN's spatial partition with K = 4 subsets, for
max_hop 1 and no temporal links (`temporal_pad` 0: every frame is its own graph):

    A[k, v, w] = weight of source joint v in the output at target joint w
    k = 0  v == w                                   (the hop-0 "root" subset)
    k = 1  linked, level(v) >  level(w)             (messages towards the centre)
    k = 2  linked, level(v) <  level(w)             (messages away from the centre)
    k = 3  a symmetry link between v and w          (takes precedence over the two above)
    weight = 1 / degree(w), degree counting w itself and every link of w

A tree link between two joints of *equal* level falls in the hop-1 root subset, which the authors'
code computes and then discards (it appends a root matrix only for hop 0): such a link is counted in
the degree but carries no message. Of our graphs only the pooled body graph has one (the authors give
its nodes no levels, so its arm-nose link is dropped); we keep that, as their weights expect it.

Joint orders are the select stage's column orders for each part (pipeline/keypoints/layout.py):
hand = COCO-WholeBody's 21 hand points (0 wrist, thumb 1-4, index 5-8, middle 9-12, ring 13-16,
little 17-20); body = the SEDS 7 (0 nose, 1-3 left shoulder/elbow/wrist, 4-6 right shoulder/elbow/wrist).
FACE and MOUTH (the paper's Table 4 parts, absent from the release) are our design, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SUBSETS = 4


@dataclass(frozen=True)
class Graph:
    name: str
    levels: tuple[int, ...]  # per joint: the authors' dist_center
    links: tuple[tuple[int, int], ...]  # tree (neighbour) links, 0-based
    symmetry: tuple[tuple[int, int], ...]  # symmetry links, 0-based

    @property
    def num_joints(self) -> int:
        return len(self.levels)

    def adjacency(self) -> np.ndarray:
        """(4, V, V) float32, see the module docstring."""
        v = self.num_joints
        linked = np.eye(v, dtype=bool)
        for a, b in self.links + self.symmetry:
            linked[a, b] = linked[b, a] = True
        degree = linked.sum(axis=0)
        sym = {frozenset(pair) for pair in self.symmetry}
        a = np.zeros((SUBSETS, v, v), dtype=np.float32)
        for source in range(v):
            for target in range(v):
                if not linked[source, target]:
                    continue
                weight = 1.0 / degree[target]
                if source == target:
                    a[0, source, target] = weight
                elif frozenset((source, target)) in sym:
                    a[3, source, target] = weight
                elif self.levels[source] > self.levels[target]:
                    a[1, source, target] = weight
                elif self.levels[source] < self.levels[target]:
                    a[2, source, target] = weight
                # equal levels: the discarded hop-1 root subset (module docstring)
        return a


@dataclass(frozen=True)
class PartGraphs:
    """A body part's joint graph, how its joints pool into sub-parts, and the graph of those sub-parts."""

    joints: Graph
    sub_parts: tuple[tuple[int, ...], ...]  # joint indices max-pooled into each sub-part node
    pooled: Graph


def _finger_links() -> tuple[tuple[int, int], ...]:
    """Wrist to each finger's base, then each finger chained base to tip (modeling_graph.py 'stb')."""
    links = []
    for base in (1, 5, 9, 13, 17):
        links.append((0, base))
        links.extend((j, j + 1) for j in range(base, base + 3))
    return tuple(links)


HAND = PartGraphs(
    joints=Graph(
        "hand",
        levels=(0,) + (1, 2, 3, 4) * 5,
        links=_finger_links(),
        # the same joint level on neighbouring fingers, little->ring->middle->index->thumb
        symmetry=tuple((a + lvl, b + lvl) for lvl in range(4) for a, b in ((17, 13), (13, 9), (9, 5), (5, 1))),
    ),
    # thumb, index, middle, ring, little (tip-side joints), then the palm (wrist and the four bases)
    sub_parts=((2, 3, 4), (6, 7, 8), (10, 11, 12), (14, 15, 16), (18, 19, 20), (0, 1, 5, 9, 13, 17)),
    pooled=Graph(
        "hand parts",
        levels=(1, 1, 1, 1, 1, 0),
        links=tuple((f, 5) for f in range(5)),
        symmetry=((0, 1), (1, 2), (2, 3), (3, 4)),
    ),
)

BODY = PartGraphs(
    joints=Graph(
        "body",
        levels=(0, 1, 2, 3, 1, 2, 3),
        links=((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6)),
        symmetry=((1, 4), (2, 5), (3, 6)),
    ),
    sub_parts=((1, 2, 3), (4, 5, 6), (0,)),  # left arm, right arm, nose
    # the authors give the pooled body no levels (all 0) and list arm-arm both as a link and a symmetry
    pooled=Graph("body parts", levels=(0, 0, 0), links=((0, 2), (0, 1)), symmetry=((0, 1),)),
)


# -- Our parts for the paper's Table 4 (the release has no face or mouth branch) -------------------
# Built in the body model's style: a joint graph with contour links, left-right symmetry links and
# levels = tree distance from a centre point, sub-parts max-pooled into a small graph around a centre.
# Joint order = the select stage's columns: face = iBUG 0-47 (jaw 0-16, right brow 17-21, left brow
# 22-26, nose bridge 27-30, nose base 31-35, right eye 36-41, left eye 42-47), mouth = iBUG 48-67
# renumbered 0-19 (outer lip 0-11, inner lip 12-19).


def _chain(points: list[int], closed: bool = False) -> list[tuple[int, int]]:
    pairs = list(zip(points[:-1], points[1:]))
    return pairs + [(points[-1], points[0])] if closed else pairs


def _levels(joints: int, links: list[tuple[int, int]], centre: int) -> tuple[int, ...]:
    """Breadth-first tree distance of every joint from `centre` over `links` (all must be reached)."""
    level = [-1] * joints
    level[centre], frontier = 0, [centre]
    while frontier:
        nxt = []
        for joint in frontier:
            for a, b in links:
                other = b if a == joint else a if b == joint else None
                if other is not None and level[other] < 0:
                    level[other] = level[joint] + 1
                    nxt.append(other)
        frontier = nxt
    if min(level) < 0:
        raise ValueError(f"joints {[j for j, lv in enumerate(level) if lv < 0]} are not linked to the centre")
    return tuple(level)


def _face_graphs() -> PartGraphs:
    links = (
        _chain(list(range(0, 17)))
        + _chain(list(range(17, 22)))
        + _chain(list(range(22, 27)))
        + _chain(list(range(27, 31)))
        + _chain(list(range(31, 36)))
        + [(30, 33)]
        + _chain(list(range(36, 42)), closed=True)
        + _chain(list(range(42, 48)), closed=True)
        # the structures joined at the nose: brows' inner ends, eyes' inner corners, the chin
        + [(21, 27), (22, 27), (39, 27), (42, 27), (8, 33)]
    )
    mirror = (
        [(i, 16 - i) for i in range(8)]
        + [(17 + i, 26 - i) for i in range(5)]
        + [(31, 35), (32, 34)]
        + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    )
    joints = Graph("face", levels=_levels(48, links, centre=30), links=tuple(links), symmetry=tuple(mirror))
    sub_parts = (
        tuple(range(0, 17)),
        tuple(range(17, 22)),
        tuple(range(22, 27)),
        tuple(range(27, 36)),
        tuple(range(36, 42)),
        tuple(range(42, 48)),
    )  # jaw, brows, nose, eyes
    pooled = Graph(
        "face parts",
        levels=(1, 1, 1, 0, 1, 1),
        links=((0, 3), (1, 3), (2, 3), (4, 3), (5, 3)),
        symmetry=((1, 2), (4, 5)),
    )
    return PartGraphs(joints, sub_parts, pooled)


def _mouth_graphs() -> PartGraphs:
    links = (
        _chain(list(range(0, 12)), closed=True) + _chain(list(range(12, 20)), closed=True) + [(0, 12), (6, 16)]
    )  # the mouth corners
    mirror = [(0, 6), (1, 5), (2, 4), (11, 7), (10, 8), (12, 16), (13, 15), (19, 17)]
    joints = Graph("mouth", levels=_levels(20, links, centre=3), links=tuple(links), symmetry=tuple(mirror))
    sub_parts = (tuple(range(0, 7)), (6, 7, 8, 9, 10, 11, 0), (12, 13, 14, 15, 16), (16, 17, 18, 19, 12))
    pooled = Graph("mouth parts", levels=(0, 1, 1, 2), links=((0, 2), (1, 3), (0, 1)), symmetry=((2, 3),))
    return PartGraphs(joints, sub_parts, pooled)  # upper outer, lower outer, upper inner, lower inner lip


FACE = _face_graphs()
MOUTH = _mouth_graphs()
