"""`seds report efficiency`: parameters and FLOPs per SEDS module at the authors' sizes, beside the paper's Table 2.

Parameters, two counts per module:
- all: every parameter of the module;
- thop-style: what the `thop` profiler the paper used reports: only modules whose exact type has a
  thop rule (Conv, Linear, BatchNorm, nn.LayerNorm, ...) and only those the forward pass calls; so
  attention (nn.MultiheadAttention holds its weights itself), embeddings, LayerNorm subclasses (CLIP's
  fp32 LayerNorm, the authors' TF-style one) and free parameters (class token, positions, projections)
  are not counted. With the authors' modules this gives their counts exactly (text tower 25,196,544 =
  the MLPs of 12 blocks; RGB tower 57,455,616; Pose tower 57,848,832; CGAF 17,399,424; hand GCN
  9,658,708; body GCN 9,658,652; window fusion 30,680,064). The paper's "Pose encoder" row (9.66M)
  is one part GCN, the hand GCN; the whole Pose encoder (both GCNs and the window fusion) has 49.997M.
FLOPs: torch.utils.flop_counter.FlopCounterMode over one forward pass in eval mode on fake tensors
(shapes only, no arithmetic), attention through the math backend; GMACs = FLOPs / 2 (the paper's
figures are thop MAC counts). Inputs: batch 16 clips of 64 windows of 16 frames over 300 kept frames,
32 text tokens; I3D counts its 16 x 64 windows of 16 x 224 x 224 frames (logits layer excluded).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from torch import nn

# Paper, Table 2: (params in M, GFLOPs as printed there); None where it gives no figure.
PAPER: dict[str, tuple[float | None, float | None]] = {
    "RGB encoder (I3D)": (None, None),
    "hand GCN (paper: Pose encoder)": (9.66, 132.1),
    "RGB interaction": (57.7, 59.7),
    "Pose interaction": (57.8, 60.1),
    "Text encoder": (25.2, 12.9),
    "CGAF": (None, 18.1),
}
BATCH, WINDOWS, WINDOW, FRAMES, WORDS = 16, 64, 16, 300, 32

# Module types thop (0.1.1) has a counting rule for; thop matches the exact type, not subclasses.
THOP_TYPES: tuple[type, ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.PReLU,
    nn.Softmax,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.Linear,
    nn.Dropout,
    nn.Upsample,
    nn.UpsamplingBilinear2d,
    nn.UpsamplingNearest2d,
    nn.RNNCell,
    nn.GRUCell,
    nn.LSTMCell,
    nn.RNN,
    nn.GRU,
    nn.LSTM,
    nn.Sequential,
    nn.PixelShuffle,
    nn.SyncBatchNorm,
)


@dataclass
class Row:
    module: str
    input: str
    params_m: float | None  # all parameters, M
    thop_params: int | None  # thop-style count
    gmacs: float | None
    paper_params_m: float | None
    paper_g: float | None
    note: str = ""


def thop_style_params(module: nn.Module, inputs: tuple) -> int:
    """Parameters as thop counts them (module docstring): leaf modules of a thop type that run."""
    called: set[int] = set()
    handles = [
        m.register_forward_hook(lambda mod, *_: called.add(id(mod)))
        for m in module.modules()
        if type(m) in THOP_TYPES and not list(m.children())
    ]
    try:
        with torch.no_grad():
            module.eval()(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return sum(p.numel() for m in module.modules() if id(m) in called for p in m.parameters(recurse=False))


def flops(build: Callable[[], tuple[nn.Module, tuple]], skip: str | None = None) -> tuple[float, float]:
    """(all params in M, GFLOPs) of one forward of `build()` on fake tensors; parameters under `skip` excluded."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with FakeTensorMode():
        module, inputs = build()
        module.eval()
        params = sum(p.numel() for n, p in module.named_parameters() if not (skip and n.startswith(skip)))
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            module(*inputs)
    return params / 1e6, counter.get_total_flops() / 1e9


def _i3d_builder(b: int) -> Callable[[], tuple[nn.Module, tuple]]:
    i3d = importlib.import_module("pipeline.models.i3d")
    return lambda: (i3d.InceptionI3d(), (torch.randn(b * WINDOWS, 3, WINDOW, 224, 224),))


def _modules(b: int = BATCH) -> list[tuple[str, str, Callable[[], tuple[nn.Module, tuple]], str]]:
    """(name, input, build, note) per module at batch `b` (thop-style counts do not depend on it)."""
    from pipeline.models.seds.cgaf import CGAF
    from pipeline.models.seds.graphs import BODY, HAND
    from pipeline.models.seds.interaction import FeatureTower
    from pipeline.models.seds.stgcn import PartGCN
    from pipeline.models.seds.temporal import TemporalConvBlock
    from pipeline.models.seds.text import TextTower

    w, t = WINDOWS + 1, WINDOWS
    valid = lambda: torch.ones(b, w, dtype=torch.bool)  # noqa: E731
    return [
        ("RGB encoder (I3D)", f"{b}x{t} windows x{WINDOW}x224x224x3", _i3d_builder(b), "logits layer not counted"),
        (
            "hand GCN (paper: Pose encoder)",
            f"2x{b}x{FRAMES} frames x21x2",
            lambda: (PartGCN(HAND), (torch.randn(b, FRAMES, 21, 2),)),
            "one call; both hands run it (x2 FLOPs)",
        ),
        ("body GCN", f"{b}x{FRAMES} frames x7x2", lambda: (PartGCN(BODY), (torch.randn(b, FRAMES, 7, 2),)), ""),
        (
            "window fusion",
            f"{b}x{t} windows x1536x{WINDOW}",
            lambda: (TemporalConvBlock(1536), (torch.randn(b * t, 1536, WINDOW),)),
            "the authors' GCN_Conv",
        ),
        ("RGB interaction", f"{b}x{t}x1024", lambda: (FeatureTower(1024), (torch.randn(b, t, 1024), valid())), ""),
        ("Pose interaction", f"{b}x{t}x1536", lambda: (FeatureTower(1536), (torch.randn(b, t, 1536), valid())), ""),
        (
            "Text encoder",
            f"{b}x{WORDS} tokens",
            lambda: (TextTower(), (torch.randint(0, 49408, (b, WORDS)),)),
            "CLIP ViT-B/32 text tower",
        ),
        (
            "CGAF",
            f"2x{b}x{w}x512",
            lambda: (CGAF(), (torch.randn(b, w, 512), torch.randn(b, w, 512), valid())),
            "2 layers, 5 and 3 keys",
        ),
    ]


def efficiency_rows() -> list[Row]:
    rows = []
    for (name, shape, build, note), (_, _, build_one, _) in zip(_modules(), _modules(1)):
        paper_p, paper_g = PAPER.get(name, (None, None))
        skip = "logits." if name.startswith("RGB encoder") else None
        params, g = flops(build, skip)
        thop = None if name.startswith("RGB encoder") else thop_style_params(*build_one())
        rows.append(Row(name, shape, params, thop, g / 2, paper_p, paper_g, note))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0].rstrip(",d") or 0)
    return "-".rjust(width) if value is None else format(value, spec)


def format_table(rows: list[Row]) -> str:
    head = (
        f"{'module':<31} {'input (batch 16)':<30} {'params M':>9} {'thop-style':>11} {'paper M':>8} "
        f"{'GMACs':>8} {'paper G':>8}  note"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.module:<31} {r.input:<30} {_fmt(r.params_m, '9.3f')} "
            f"{'-'.rjust(11) if r.thop_params is None else format(r.thop_params, '11,d')} "
            f"{_fmt(r.paper_params_m, '8.2f')} {_fmt(r.gmacs, '8.1f')} {_fmt(r.paper_g, '8.1f')}  {r.note}"
        )
    lines.append(
        "params M: all parameters; thop-style: what thop reports (modules with a thop rule that run: no "
        "attention, embeddings, LayerNorm subclasses or free parameters); GMACs: torch FlopCounterMode / 2. "
        "The paper's Pose encoder row is one part GCN (the hand GCN)."
    )
    return "\n".join(lines)


def as_json(rows: list[Row]) -> str:
    return json.dumps([asdict(r) for r in rows], indent=2)
