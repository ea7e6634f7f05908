"""CSPNeXt (P5), the backbone of RTMPose, in plain PyTorch.

Module and parameter names follow mmdet 3.3's `CSPNeXt` so official mmpose state dicts load by key
(`stem.0.conv.weight`, `stage4.1.conv1.bn.running_var`, ...). Layout: a 3-conv stem (stride 2), then
4 stages, each a stride-2 conv, an SPP block in the last stage, and a CSP layer of CSPNeXt blocks
with channel attention. Only the last stage's output (stride 32) feeds the RTMCC head.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# in_channels, out_channels, blocks, add_identity, use_spp (mmdet's arch_settings['P5'])
_P5 = ((64, 128, 3, True, False), (128, 256, 6, True, False), (256, 512, 6, True, False), (512, 1024, 3, False, True))


class ConvBNAct(nn.Module):
    """conv (no bias) -> BatchNorm -> SiLU: mmcv's ConvModule as the RTMPose configs build it."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)  # the configs' SyncBN: eps 1e-5, identical in eval mode
        self.activate = nn.SiLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.bn(self.conv(x)))

    def fold_batch_norm(self) -> None:
        """Fold the (eval-mode) BatchNorm into the conv's weight and a new bias, leaving an identity.

        Inference only: the running statistics become constants, so BatchNorm's separate pass over
        every activation map (about a tenth of a CPU forward) disappears; the result equals
        conv -> BatchNorm up to float rounding. The state dict loses the `bn.*` keys, so fold after
        loading a checkpoint, never before."""
        if isinstance(self.bn, nn.BatchNorm2d):
            self.conv = fuse_conv_bn_eval(self.conv, self.bn)
            self.bn = nn.Identity()


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.depthwise_conv = ConvBNAct(cin, cin, kernel, groups=cin)
        self.pointwise_conv = ConvBNAct(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class CSPNeXtBlock(nn.Module):
    """3x3 conv then a 5x5 depthwise-separable conv, with a residual when shapes allow."""

    def __init__(self, channels: int, add_identity: bool):
        super().__init__()
        self.conv1 = ConvBNAct(channels, channels, 3)
        self.conv2 = DepthwiseSeparable(channels, channels, 5)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class ChannelAttention(nn.Module):
    """Squeeze-excitation without reduction: x * hardsigmoid(fc(global average of x))."""

    def __init__(self, channels: int):
        super().__init__()
        self.global_avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels, channels, 1, bias=True)
        self.act = nn.Hardsigmoid(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(self.fc(self.global_avgpool(x)))


class CSPLayer(nn.Module):
    """Cross-stage partial layer: a block path and a shortcut path, concatenated, attended, fused."""

    def __init__(self, channels: int, num_blocks: int, add_identity: bool, expand_ratio: float):
        super().__init__()
        mid = int(channels * expand_ratio)
        self.main_conv = ConvBNAct(channels, mid, 1)
        self.short_conv = ConvBNAct(channels, mid, 1)
        self.final_conv = ConvBNAct(2 * mid, channels, 1)
        self.blocks = nn.Sequential(*[CSPNeXtBlock(mid, add_identity) for _ in range(num_blocks)])
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = self.short_conv(x)
        main = self.blocks(self.main_conv(x))
        return self.final_conv(self.attention(torch.cat((main, short), dim=1)))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: max pools of 5, 9 and 13 pixels (stride 1) beside the input."""

    def __init__(self, channels: int, kernel_sizes: tuple[int, ...] = (5, 9, 13)):
        super().__init__()
        mid = channels // 2
        self.conv1 = ConvBNAct(channels, mid, 1)
        self.poolings = nn.ModuleList([nn.MaxPool2d(k, stride=1, padding=k // 2) for k in kernel_sizes])
        self.conv2 = ConvBNAct(mid * (len(kernel_sizes) + 1), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.poolings], dim=1))


class CSPNeXt(nn.Module):
    """CSPNeXt-P5 returning the stride-32 feature map (B, 1024 * widen_factor, H/32, W/32)."""

    def __init__(self, deepen_factor: float, widen_factor: float, expand_ratio: float = 0.5):
        super().__init__()
        stem = int(_P5[0][0] * widen_factor)
        self.stem = nn.Sequential(
            ConvBNAct(3, stem // 2, 3, stride=2), ConvBNAct(stem // 2, stem // 2, 3), ConvBNAct(stem // 2, stem, 3)
        )
        for i, (cin, cout, blocks, add_identity, use_spp) in enumerate(_P5, start=1):
            cin, cout = int(cin * widen_factor), int(cout * widen_factor)
            layers: list[nn.Module] = [ConvBNAct(cin, cout, 3, stride=2)]
            if use_spp:
                layers.append(SPPBottleneck(cout))
            layers.append(CSPLayer(cout, max(round(blocks * deepen_factor), 1), add_identity, expand_ratio))
            self.add_module(f"stage{i}", nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(1, len(_P5) + 1):
            x = getattr(self, f"stage{i}")(x)
        return x
