"""The authors' 1D temporal convolution block, used after each part GCN (over a clip's frames) and as
the Pose encoder's fusion of the three parts (over the frames of one window).

Authors: longtaojiang/SEDS modules/modeling_gcn.py, TemporalConvNetBlock and
TemporalConvNetBlock_fusion (identical when, as in every use, input and output widths are equal):

    x (N, C, T) -> [ ReLU(conv5(x)) ; ReLU(conv3b(ReLU(conv3a(x)))) ]  (2C channels, 'same' padding)
                -> merge (1x1 conv 2C -> C) -> BN -> ReLU                  -> (N, C, T)

Their dropouts after each convolution have p = 0 and are left out.
"""

from __future__ import annotations

import torch
from torch import nn


class TemporalConvBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv5 = nn.Conv1d(channels, channels, kernel_size=5, padding=2)
        self.conv3a = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.conv3b = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.merge = nn.Conv1d(2 * channels, channels, kernel_size=1)
        self.norm = nn.BatchNorm1d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        wide = self.relu(self.conv5(x))
        deep = self.relu(self.conv3b(self.relu(self.conv3a(x))))
        return self.relu(self.norm(self.merge(torch.cat([wide, deep], dim=1))))
