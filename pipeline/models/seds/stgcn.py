"""ST-GCN (Yan et al., AAAI 2018) over the SEDS authors' hand and upper-body graphs.

Graphs (joint order = the columns the select stage writes for each part; both as the authors'
modules/modeling_graph.py builds them, layouts 'stb' and 'body'):
- hand, 21 joints (COCO-WholeBody / MediaPipe order): 0 wrist; thumb 1-4, fore 5-8, middle 9-12,
  ring 13-16, pinky 17-20. Tree links: each finger chained base to tip, its base linked to the wrist.
  Symmetry links: the same joint level of neighbouring fingers (1-5, 5-9, 9-13, 13-17, 2-6, ... 16-20).
  Centre: the wrist; a joint's level is its tree distance from it (wrist 0, finger joints 1-4).
- body, 7 joints (the SEDS loader's order): 0 nose, 1 left shoulder, 2 left elbow, 3 left wrist,
  4 right shoulder, 5 right elbow, 6 right wrist. Tree links: nose-shoulder, shoulder-elbow,
  elbow-wrist on each side. Symmetry links: left-right shoulder, elbow, wrist. Centre: the nose.

Adjacency: the authors' variant of ST-GCN's "spatial configuration" partition, K = 4 subsets, as a
tensor A[k, v, w] (weight of source joint v in the output at target joint w):
  k = 0  the joint itself;
  k = 1  tree neighbours farther from the centre than the target (centripetal messages);
  k = 2  tree neighbours nearer the centre than the target (centrifugal messages);
  k = 3  symmetry neighbours.
Each entry is 1 / degree(target), the degree counting the self loop and both kinds of links, so
summing over k and v gives 1 for every target: a mean over the neighbourhood with one weight matrix
per subset. Same-level tree neighbours would be dropped, as in the authors' code; neither graph has any.

Missing joints: the caller passes a (N, T, V) mask; masked joints are zeroed before and after the
input BatchNorm (so batch statistics never see their coordinates) and left out of the joint pooling.
The output therefore does not depend on what a missing joint's coordinates were.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

SUBSETS = 4


@dataclass(frozen=True)
class Graph:
    name: str
    num_joints: int
    edges: tuple[tuple[int, int], ...]       # tree links
    symmetry: tuple[tuple[int, int], ...]    # symmetry links
    center: int

    def levels(self) -> np.ndarray:
        """(V,) tree distance of each joint from the centre (breadth-first over the tree links)."""
        level = np.full(self.num_joints, -1)
        level[self.center] = 0
        frontier = [self.center]
        while frontier:
            nxt = []
            for joint in frontier:
                for a, b in self.edges:
                    other = b if a == joint else a if b == joint else None
                    if other is not None and level[other] < 0:
                        level[other] = level[joint] + 1
                        nxt.append(other)
            frontier = nxt
        if (level < 0).any():
            raise ValueError(f"{self.name} graph: joints {np.flatnonzero(level < 0).tolist()} are not linked to the centre")
        return level

    def adjacency(self) -> np.ndarray:
        """(4, V, V) float32 partitioned, degree-normalised adjacency (see the module docstring)."""
        v = self.num_joints
        tree = np.zeros((v, v), dtype=bool)
        sym = np.zeros((v, v), dtype=bool)
        for a, b in self.edges:
            tree[a, b] = tree[b, a] = True
        for a, b in self.symmetry:
            sym[a, b] = sym[b, a] = True
        neighbourhood = tree | sym | np.eye(v, dtype=bool)
        degree = neighbourhood.sum(axis=0)
        level = self.levels()
        a = np.zeros((SUBSETS, v, v), dtype=np.float32)
        for target in range(v):
            for source in np.flatnonzero(neighbourhood[:, target]):
                weight = 1.0 / degree[target]
                if source == target:
                    a[0, source, target] = weight
                elif sym[source, target]:
                    a[3, source, target] = weight
                elif level[source] > level[target]:
                    a[1, source, target] = weight
                elif level[source] < level[target]:
                    a[2, source, target] = weight
        return a


def _hand_graph() -> Graph:
    edges, symmetry = [], []
    for finger in range(5):
        base = 1 + 4 * finger
        chain = [0, base, base + 1, base + 2, base + 3]
        edges += list(zip(chain[:-1], chain[1:]))
        if finger < 4:
            symmetry += [(base + j, base + 4 + j) for j in range(4)]
    return Graph("hand", 21, tuple(edges), tuple(symmetry), center=0)


HAND_GRAPH = _hand_graph()
BODY_GRAPH = Graph("body", 7, ((0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6)), ((1, 4), (2, 5), (3, 6)), center=0)


class GraphConv(nn.Module):
    """The spatial step: a 1x1 convolution to K groups of channels, each mixed over joints by A[k]."""

    def __init__(self, in_channels: int, out_channels: int, subsets: int):
        super().__init__()
        self.subsets = subsets
        self.conv = nn.Conv2d(in_channels, out_channels * subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        x = self.conv(x).view(n, self.subsets, -1, t, v)
        return torch.einsum("nkctv,kvw->nctw", x, a)


class STGCNLayer(nn.Module):
    """Graph convolution, then BN-ReLU-Dropout-temporal conv (kernel over steps)-BN-Dropout, plus a
    residual path (none in the first layer, identity when widths agree, else 1x1 conv + BN).

    Submodule names and order are those of the authors' st_gcn (gcn.conv, tcn.0/3/4, residual.0/1),
    so SignBERT checkpoints map onto it key by key (pipeline/models/signbert.py).
    """

    def __init__(self, in_channels: int, out_channels: int, subsets: int, temporal_kernel: int,
                 dropout: float, residual: bool):
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError(f"temporal kernel must be odd (same length in and out), got {temporal_kernel}")
        self.gcn = GraphConv(in_channels, out_channels, subsets)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), padding=(temporal_kernel // 2, 0)),
            nn.BatchNorm2d(out_channels),
            nn.Dropout(dropout),
        )
        if not residual:
            self.residual = None
        elif in_channels == out_channels:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        out = self.tcn(self.gcn(x, a))
        if self.residual is not None:
            out = out + self.residual(x)
        return self.relu(out)


class STGCN(nn.Module):
    """A stack of ST-GCN layers over one graph, pooled over joints: (N, T, V, C) -> (N, T, widths[-1]).

    Pooling is the mean over the joints present at each step (mask); a step with none present gives 0.
    The adjacency is a non-persistent buffer: it follows from the graph, so it is not in checkpoints.
    """

    def __init__(self, graph: Graph, in_channels: int, widths: list[int] | tuple[int, ...], temporal_kernel: int,
                 dropout: float = 0.0):
        super().__init__()
        self.graph = graph
        self.register_buffer("A", torch.from_numpy(graph.adjacency()), persistent=False)
        self.data_bn = nn.BatchNorm1d(in_channels * graph.num_joints)
        layers, previous = [], in_channels
        for i, width in enumerate(widths):
            # The first layer has no residual (as in ST-GCN): its input is raw coordinates.
            layers.append(STGCNLayer(previous, width, SUBSETS, temporal_kernel, dropout, residual=i > 0))
            previous = width
        self.layers = nn.ModuleList(layers)
        self.out_channels = previous

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (N, T, V, C) coordinates (+scores); mask (N, T, V) bool, True where the joint is present."""
        n, t, v, c = x.shape
        if v != self.graph.num_joints:
            raise ValueError(f"{self.graph.name} graph has {self.graph.num_joints} joints, input has {v}")
        keep = mask.to(x.dtype).unsqueeze(-1)                                    # N, T, V, 1
        x = (x * keep).permute(0, 2, 3, 1).reshape(n, v * c, t)                  # N, V*C, T (index v*C + c)
        x = self.data_bn(x).view(n, v, c, t) * keep.permute(0, 2, 3, 1)
        x = x.permute(0, 2, 3, 1).contiguous()                                   # N, C, T, V
        for layer in self.layers:
            x = layer(x, self.A)
        weights = mask.to(x.dtype).unsqueeze(1)                                  # N, 1, T, V
        pooled = (x * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)
        return pooled.transpose(1, 2)                                            # N, T, C
