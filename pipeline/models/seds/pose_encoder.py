"""The SEDS Pose encoder (supplementary Table 1): GCN-hand (shared by both hands), GCN-body, and a 1D
temporal-convolution fusion of their concatenation.

    keypoints (B, T, K, C)  ->  left hand  -> GCN-hand -> (B, T, w)
                                right hand -> GCN-hand -> (B, T, w)      concat (B, T, 3w) = 1536 at w = 512
                                body       -> GCN-body -> (B, T, w)   -> fusion (B, T, 3w)

The fusion is a residual bottleneck block over steps: Conv1d(3w -> fusion_hidden, kernel
fusion_kernel) - BN - ReLU - Conv1d(fusion_hidden -> 3w, kernel 1) - BN, added to its input, then ReLU.
The paper gives only "1D temporal conv, 1536 in and out"; with ST-GCN temporal kernel 5 and a 768-wide
bottleneck of kernel 3 the encoder has 9.70M parameters and 129.8 GMACs at batch 16 x 64 steps,
against the paper's 9.66M / 132.1G (docs/stages/train.md, `seds report efficiency`).

Part columns come from the select stage: `spans` maps body / left_hand / right_hand to their
[start, stop) columns among the K selected keypoints (other parts, e.g. face, are not encoded).
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.seds.stgcn import BODY_GRAPH, HAND_GRAPH, STGCN

SEDS_SPANS: dict[str, tuple[int, int]] = {"body": (0, 7), "left_hand": (7, 28), "right_hand": (28, 49)}


class TemporalFusion(nn.Module):
    def __init__(self, channels: int, hidden: int, kernel: int):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"fusion kernel must be odd, got {kernel}")
        self.conv1 = nn.Conv1d(channels, hidden, kernel, padding=kernel // 2)
        self.bn1 = nn.BatchNorm1d(hidden)
        self.conv2 = nn.Conv1d(hidden, channels, 1)
        self.bn2 = nn.BatchNorm1d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C)."""
        y = x.transpose(1, 2)
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(y)))))
        return self.relu(out + y).transpose(1, 2)


class PoseEncoder(nn.Module):
    def __init__(self, in_channels: int = 2, widths: tuple[int, ...] | list[int] = (128, 128, 256, 512),
                 temporal_kernel: int = 5, fusion_hidden: int = 768, fusion_kernel: int = 3, dropout: float = 0.0,
                 spans: dict[str, tuple[int, int]] | None = None):
        super().__init__()
        self.spans = dict(spans or SEDS_SPANS)
        for part, graph in (("body", BODY_GRAPH), ("left_hand", HAND_GRAPH), ("right_hand", HAND_GRAPH)):
            if part not in self.spans:
                raise ValueError(f"the pose encoder needs the {part} keypoints; the selection has {sorted(self.spans)}")
            start, stop = self.spans[part]
            if stop - start != graph.num_joints:
                raise ValueError(f"{part} spans columns {start}:{stop} ({stop - start} joints); "
                                 f"its graph has {graph.num_joints}")
        self.gcn_hand = STGCN(HAND_GRAPH, in_channels, widths, temporal_kernel, dropout)
        self.gcn_body = STGCN(BODY_GRAPH, in_channels, widths, temporal_kernel, dropout)
        self.out_channels = 3 * self.gcn_hand.out_channels
        self.fusion = TemporalFusion(self.out_channels, fusion_hidden, fusion_kernel)

    def _part(self, x: torch.Tensor, mask: torch.Tensor, part: str) -> tuple[torch.Tensor, torch.Tensor]:
        start, stop = self.spans[part]
        return x[:, :, start:stop], mask[:, :, start:stop]

    def forward(self, keypoints: torch.Tensor, joint_mask: torch.Tensor) -> torch.Tensor:
        """keypoints (B, T, K, C), joint_mask (B, T, K) bool -> (B, T, 3 * widths[-1])."""
        # Both hands go through the shared GCN-hand as one batch (one kernel launch per layer).
        left_x, left_m = self._part(keypoints, joint_mask, "left_hand")
        right_x, right_m = self._part(keypoints, joint_mask, "right_hand")
        left, right = self.gcn_hand(torch.cat([left_x, right_x]), torch.cat([left_m, right_m])).chunk(2)
        body = self.gcn_body(*self._part(keypoints, joint_mask, "body"))
        return self.fusion(torch.cat([left, right, body], dim=-1))
