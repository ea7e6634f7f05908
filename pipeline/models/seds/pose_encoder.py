"""The SEDS Pose encoder: part GCNs over every kept frame, then a temporal fusion inside each RGB window.

Authors: longtaojiang/SEDS modules/modeling_signbert.py (Sign_Bert: `embed` = GCN_Embed with
st_gcn_hand and st_gcn_body, `GCN_Conv` = TemporalConvNetBlock_fusion over 3 x 512 channels),
modules/modeling_gcn.py (GCN_Embed.forward) and modules/modeling.py (CLIP4Clip.get_sign_output).

    keypoints (B, F, K, C), every kept frame of each clip (F <= 300; a clip shorter than a window ends
    in copies of its last frame, pipeline/train/data.py; shorter clips of the batch zero-padded)
      right hand -> hand GCN -> (B, F, 512)     one GCN shared by both hands (left hands arrive
      left hand  -> hand GCN -> (B, F, 512)     mirrored by the select stage, as the authors' loader)
      body       -> body GCN -> (B, F, 512)
      concat [left, right, body]               -> (B, F, 1536)
    windows (B, W, L): for each of the W (<= 64) RGB windows, the frame index of each of its L (16)
    frames in the clip's frame list (-1 for padded windows, which stay zero as in the authors' code)
      gather -> (B*W, 1536, L) -> window_fusion (TemporalConvBlock) -> mean over the L frames
                                               -> (B, W, 1536): one vector per RGB window

The GCNs run right, left, body in that order as the authors' GCN_Embed does, each as its own batch
(their BatchNorm statistics are per call). The authors gather each window as frames
[start, start + 16) of their kept-frame sequence; a window index list is the same thing. Which frames
the lists name is the data path's choice (train.pose_windows: the release's kept-frame windows, or
each RGB window's own frames; docs/fidelity.md, "Pose windows").

Parts beyond the authors' (Table 4 of the paper: face, mouth) get their own GCN of the same design
(pipeline/models/seds/graphs.py) and widen the concatenation by 512 each; `parts` lists what is encoded.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.models.seds.graphs import BODY, FACE, HAND, MOUTH, PartGraphs
from pipeline.models.seds.stgcn import PartGCN
from pipeline.models.seds.temporal import TemporalConvBlock

# The encoder's part names -> (the select stage's parts whose columns feed it, its graphs). A hand
# GCN serves both hands; the concatenation order is the authors' [left, right, body] then the rest.
PART_GRAPHS: dict[str, PartGraphs] = {"hand": HAND, "body": BODY, "face": FACE, "mouth": MOUTH}
STREAMS_OF_PART: dict[str, tuple[str, ...]] = {
    "hand": ("left_hand", "right_hand"),
    "body": ("body",),
    "face": ("face",),
    "mouth": ("mouth",),
}
CALL_ORDER = ("right_hand", "left_hand", "body", "face", "mouth")  # the release's three first (GCN_Embed)
CONCAT_ORDER = ("left_hand", "right_hand", "body", "face", "mouth")


class PoseEncoder(nn.Module):
    def __init__(
        self,
        spans: dict[str, tuple[int, int]],
        parts: tuple[str, ...] | list[str] = ("hand", "body"),
        in_channels: int = 2,
        joint_channels: tuple[int, ...] | list[int] = (128, 128, 256),
        part_channels: int = 512,
    ):
        super().__init__()
        unknown = [p for p in parts if p not in PART_GRAPHS]
        if unknown:
            raise ValueError(f"pose encoder parts {unknown} are not known; known: {sorted(PART_GRAPHS)}")
        self.parts = tuple(parts)
        self.spans = {}
        for part in self.parts:
            for stream in STREAMS_OF_PART[part]:
                if stream not in spans:
                    raise ValueError(
                        f"the pose encoder's {part} GCN needs the {stream} keypoints; the selection "
                        f"has {sorted(spans)} (select.parts)"
                    )
                start, stop = spans[stream]
                if stop - start != PART_GRAPHS[part].joints.num_joints:
                    raise ValueError(
                        f"{stream} spans columns {start}:{stop} ({stop - start} joints); "
                        f"the {part} graph has {PART_GRAPHS[part].joints.num_joints}"
                    )
                self.spans[stream] = (start, stop)
        self.gcn_of_stream = {s: p for p in self.parts for s in STREAMS_OF_PART[p]}
        self.gcns = nn.ModuleDict(
            {p: PartGCN(PART_GRAPHS[p], in_channels, joint_channels, part_channels) for p in self.parts}
        )
        streams = set(self.gcn_of_stream)
        self.call_order = [s for s in CALL_ORDER if s in streams]
        self.concat_order = [s for s in CONCAT_ORDER if s in streams]
        self.out_channels = part_channels * len(self.concat_order)
        self.window_fusion = TemporalConvBlock(self.out_channels)

    def frame_features(self, keypoints: torch.Tensor) -> torch.Tensor:
        """(B, F, K, C) -> (B, F, out_channels): every part's GCN on every frame, concatenated."""
        out = {}
        for stream in self.call_order:
            start, stop = self.spans[stream]
            out[stream] = self.gcns[self.gcn_of_stream[stream]](keypoints[:, :, start:stop])
        return torch.cat([out[s] for s in self.concat_order], dim=-1)

    def forward(self, keypoints: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
        """keypoints (B, F, K, C), windows (B, W, L) long frame indices (-1: padded window) -> (B, W, D)."""
        frames = self.frame_features(keypoints)  # (B, F, D)
        b, w, length = windows.shape
        index = windows.clamp(min=0).reshape(b, w * length, 1).expand(-1, -1, frames.shape[-1])
        gathered = torch.gather(frames, 1, index).view(b, w, length, -1)
        gathered = gathered * (windows[..., :1] >= 0).unsqueeze(-1).to(gathered.dtype)
        fused = self.window_fusion(gathered.reshape(b * w, length, -1).transpose(1, 2))  # (B*W, D, L)
        return fused.mean(dim=-1).view(b, w, -1)
