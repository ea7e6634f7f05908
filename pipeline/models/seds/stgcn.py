"""The SEDS part GCN (one model for a hand, shared by both hands; one for the body), as the authors
built it: longtaojiang/SEDS modules/modeling_gcn.py, classes ConvTemporalGraphical, st_gcn,
ST_GCN_Model, TemporalConvNetBlock.

Per frame (the graph has no temporal links, so the graph layers see one frame at a time):

    (N, F, V, C) -> input_norm: BatchNorm1d over the V*C coordinates (channel v*C + c), eps 0.1
                 -> joint_blocks: 3 ST-GCN blocks on the joint graph, C -> 128 -> 128 -> 256
                 -> max over each sub-part's joints (hand: 5 fingers + palm; body: 2 arms + nose)
                 -> part_blocks: 2 ST-GCN blocks on the sub-part graph, 256 -> 512 -> 512
                 -> max over sub-parts -> head: 1x1 conv, BN, ReLU, dropout 0.25
then along the frames of the clip:
                 -> temporal: 2 TemporalConvBlocks (512 -> 512)              -> (N, F, 512)

The input norm's eps of 0.1 is the authors' (ST_GCN_Model passes its momentum, 0.1, as BatchNorm1d's
second positional argument, which is eps); kept because their trained weights were normalised so.
Frames padded at the end of a clip (zeros, as the authors' collate pads) go through the GCN like any
frame; missing joints arrive as (0, 0), as the authors' loader writes them (no masking here).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.seds.graphs import PartGraphs
from pipeline.models.seds.temporal import TemporalConvBlock

INPUT_NORM_EPS = 0.1  # modeling_gcn.py ST_GCN_Model: nn.BatchNorm1d(C * V, self.momentum)
BLOCK_DROPOUT = 0.05  # st_gcn: Dropout(0.05) after the first BN, and its `dropout` default 0.05
HEAD_DROPOUT = 0.25  # ST_GCN_Model.conv4


class GraphConv(nn.Module):
    """1x1 convolution to K x C_out channels, then a sum over each subset's neighbours:
    out[n, c, t, w] = sum_k sum_v x_k[n, c, t, v] A[k, v, w]   (ConvTemporalGraphical)."""

    def __init__(self, in_channels: int, out_channels: int, subsets: int):
        super().__init__()
        self.subsets = subsets
        self.conv = nn.Conv2d(in_channels, out_channels * subsets, kernel_size=1)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        n, kc, t, v = y.shape
        y = y.view(n, self.subsets, kc // self.subsets, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, adjacency).contiguous()


class STGCNBlock(nn.Module):
    """GraphConv, then BN-ReLU-dropout-1x1 conv-BN-dropout, plus a residual, then ReLU (st_gcn).
    The residual is none for the first block, the identity when the width is kept, else 1x1 conv + BN."""

    def __init__(self, in_channels: int, out_channels: int, subsets: int, residual: bool = True):
        super().__init__()
        self.graph_conv = GraphConv(in_channels, out_channels, subsets)
        self.norm_in = nn.BatchNorm2d(out_channels)
        self.drop_in = nn.Dropout(BLOCK_DROPOUT)
        self.conv = nn.Conv2d(out_channels, out_channels, kernel_size=1)
        self.norm_out = nn.BatchNorm2d(out_channels)
        self.drop_out = nn.Dropout(BLOCK_DROPOUT)
        self.relu = nn.ReLU()
        self.residual: nn.Module | None
        if not residual:
            self.residual = None
        elif in_channels == out_channels:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        y = self.graph_conv(x, adjacency)
        y = self.drop_out(self.norm_out(self.conv(self.drop_in(self.relu(self.norm_in(y))))))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class PartGCN(nn.Module):
    """One part's GCN (ST_GCN_Model): keypoints (N, F, V, C) -> features (N, F, part_channels)."""

    def __init__(
        self,
        graphs: PartGraphs,
        in_channels: int = 2,
        joint_channels: tuple[int, ...] | list[int] = (128, 128, 256),
        part_channels: int = 512,
    ):
        super().__init__()
        self.graphs = graphs
        self.in_channels = in_channels
        joints = graphs.joints.num_joints
        self.register_buffer("adjacency", torch.from_numpy(graphs.joints.adjacency()))
        self.register_buffer("pooled_adjacency", torch.from_numpy(graphs.pooled.adjacency()))
        self.sub_parts = [list(p) for p in graphs.sub_parts]
        self.input_norm = nn.BatchNorm1d(in_channels * joints, eps=INPUT_NORM_EPS)
        widths = [in_channels, *joint_channels]
        k = self.adjacency.shape[0]
        self.joint_blocks = nn.ModuleList(
            STGCNBlock(widths[i], widths[i + 1], k, residual=i > 0) for i in range(len(joint_channels))
        )
        self.part_blocks = nn.ModuleList(
            [STGCNBlock(widths[-1], part_channels, k), STGCNBlock(part_channels, part_channels, k)]
        )
        self.head = nn.Sequential(
            nn.Conv2d(part_channels, part_channels, kernel_size=1),
            nn.BatchNorm2d(part_channels),
            nn.ReLU(),
            nn.Dropout(HEAD_DROPOUT),
        )
        self.temporal = nn.ModuleList([TemporalConvBlock(part_channels), TemporalConvBlock(part_channels)])
        self.out_channels = part_channels

    def forward(self, keypoints: torch.Tensor) -> torch.Tensor:
        n, f, v, c = keypoints.shape
        if (v, c) != (self.graphs.joints.num_joints, self.in_channels):
            raise ValueError(
                f"the {self.graphs.joints.name} GCN takes {self.graphs.joints.num_joints} joints x "
                f"{self.in_channels} channels, got {v} x {c}"
            )
        x = self.input_norm(keypoints.reshape(n * f, v * c, 1))  # channel index v * C + c
        x = x.view(n * f, v, c).permute(0, 2, 1).unsqueeze(2)  # (N*F, C, 1, V)
        for block in self.joint_blocks:
            x = block(x, self.adjacency)
        x = torch.cat([x[..., joints].amax(dim=-1, keepdim=True) for joints in self.sub_parts], dim=-1)
        for block in self.part_blocks:
            x = block(x, self.pooled_adjacency)
        x = self.head(x.amax(dim=-1, keepdim=True))  # (N*F, C', 1, 1)
        x = x.view(n, f, -1).transpose(1, 2)  # (N, C', F)
        for block in self.temporal:
            x = block(x)
        return x.transpose(1, 2)
