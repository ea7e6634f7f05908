"""`seds report efficiency`: parameters and FLOPs per SEDS module at the paper's input sizes, batch 16,
beside the paper's Table 2.

Counting: torch.utils.flop_counter.FlopCounterMode over one forward pass in eval mode, on fake tensors
(torch's FakeTensorMode: shapes only, no memory, no arithmetic, so even I3D at 16 x 64 windows counts in
seconds on a CPU). Attention runs through the math backend while counting so its matrix products are
seen. FlopCounterMode counts a multiply-add as 2 FLOPs and counts only matrix products and
convolutions; the table shows GMACs (= FLOPs / 2) beside the paper, because the paper's figures are
MAC counts: with a thop-style count (multiply-adds of Linear and Conv layers, parameters of Linear and
Conv layers only, nn.MultiheadAttention and embeddings not counted) the authors' modules give exactly
the paper's numbers, e.g. RGB interaction = CLIP ViT-B/32 visual tower, 12 layers x 768: MLP weights
12 x 4.72M + 1024 x 768 input = 57.5M params and 16 x (65 tokens x 56.6M + 64 x 0.79M) = 59.7 GMACs;
text encoder = CLIP's 12 text layers: MLP weights 12 x 2.10M = 25.2M, 16 x 32 x 25.2M = 12.9 GMACs.
Our counts include attention projections, attention products and embeddings, so those rows read higher.

Input sizes (batch B = 16): RGB encoder (I3D) B x 64 windows of 16 RGB frames 224 x 224; Pose encoder
B x 64 steps x 49 joints x 2; RGB interaction B x 64 x 1024; Pose interaction B x 64 x 1536; text
encoder B x 32 token ids; CGAF 2 x B x 64 x 512.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import nn

# Paper, supplementary Table 2: (params in M, GFLOPs as printed there); None where it gives no figure.
PAPER: dict[str, tuple[float | None, float | None]] = {
    "RGB encoder (I3D)": (None, None),
    "Pose encoder": (9.66, 132.1),
    "RGB interaction": (57.7, 59.7),
    "Pose interaction": (57.8, 60.1),
    "Text encoder": (25.2, 12.9),
    "CGAF": (None, 18.1),
}
BATCH = 16


@dataclass
class Row:
    module: str
    input: str
    params_m: float | None
    gflops: float | None      # FlopCounterMode FLOPs / 1e9
    gmacs: float | None       # gflops / 2
    paper_params_m: float | None
    paper_g: float | None
    note: str = ""

    @staticmethod
    def _ratio(ours: float | None, paper: float | None) -> float | None:
        return ours / paper if ours is not None and paper else None

    @property
    def params_ratio(self) -> float | None:
        return self._ratio(self.params_m, self.paper_params_m)

    @property
    def flops_ratio(self) -> float | None:
        return self._ratio(self.gmacs, self.paper_g)


def count(build: Callable[[], tuple[nn.Module, tuple]], skip: str | None = None) -> tuple[float, float]:
    """(params in M, FLOPs in G) of one forward of the module `build` returns, on fake tensors;
    parameters named under `skip` (a layer the forward pass does not use) are not counted."""
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


def _i3d_builder() -> tuple[Callable[[], tuple[nn.Module, tuple]] | None, str]:
    """pipeline.models.i3d's network, when that module exists (the rgb stage's helper writes it)."""
    try:
        i3d = importlib.import_module("pipeline.models.i3d")
    except ModuleNotFoundError:
        return None, "pipeline.models.i3d is not in this tree: I3D not counted"
    cls = getattr(i3d, "InceptionI3d", None) or getattr(i3d, "I3D", None)
    if cls is None:
        return None, "pipeline.models.i3d has no InceptionI3d/I3D class: I3D not counted"
    return (lambda: (cls(), (torch.randn(BATCH * 64, 3, 16, 224, 224),))), \
        "16 clips x 64 windows = 1024 I3D inputs; logits layer not counted"


def efficiency_rows() -> list[Row]:
    from pipeline.models.seds.cgaf import CGAF
    from pipeline.models.seds.interaction import Interaction
    from pipeline.models.seds.pose_encoder import PoseEncoder
    from pipeline.models.seds.text import CLIP_B32_RANDOM, TextEncoder

    b = BATCH
    builders: list[tuple[str, str, Callable[[], tuple[nn.Module, tuple]] | None, str]] = []
    i3d, note = _i3d_builder()
    builders.append(("RGB encoder (I3D)", f"{b}x64x16x224x224x3", i3d, note))
    builders.append(("Pose encoder", f"{b}x64x49x2",
                     lambda: (PoseEncoder(), (torch.randn(b, 64, 49, 2), torch.ones(b, 64, 49, dtype=torch.bool))), ""))
    builders.append(("RGB interaction", f"{b}x64x1024",
                     lambda: (Interaction(1024), (torch.randn(b, 64, 1024), torch.ones(b, 64, dtype=torch.bool))), ""))
    builders.append(("Pose interaction", f"{b}x64x1536",
                     lambda: (Interaction(1536), (torch.randn(b, 64, 1536), torch.ones(b, 64, dtype=torch.bool))), ""))
    builders.append(("Text encoder", f"{b}x32 tokens",
                     lambda: (TextEncoder(CLIP_B32_RANDOM, 32, 512),
                              (torch.randint(0, 49408, (b, 32)), torch.ones(b, 32, dtype=torch.bool))),
                     "CLIP ViT-B/32 text tower (the paper's), embeddings included"))
    builders.append(("CGAF", f"2x{b}x64x512",
                     lambda: (CGAF(), (torch.randn(b, 64, 512), torch.randn(b, 64, 512),
                                       torch.ones(b, 64, dtype=torch.bool))), "2 layers"))
    rows = []
    for name, shape, build, note in builders:
        paper_p, paper_g = PAPER[name]
        if build is None:
            rows.append(Row(name, shape, None, None, None, paper_p, paper_g, note))
            continue
        params, flops = count(build, skip="logits." if name.startswith("RGB encoder") else None)
        rows.append(Row(name, shape, params, flops, flops / 2, paper_p, paper_g, note))
    return rows


def _fmt(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return "-".rjust(width) if value is None else format(value, spec)


def format_table(rows: list[Row]) -> str:
    head = (f"{'module':<18} {'input (batch 16)':<20} {'params M':>9} {'paper M':>8} {'ratio':>6} "
            f"{'GFLOPs':>8} {'GMACs':>8} {'paper G':>8} {'ratio':>6}  note")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.module:<18} {r.input:<20} {_fmt(r.params_m, '9.2f')} {_fmt(r.paper_params_m, '8.2f')} "
                     f"{_fmt(r.params_ratio, '6.2f')} {_fmt(r.gflops, '8.1f')} {_fmt(r.gmacs, '8.1f')} "
                     f"{_fmt(r.paper_g, '8.1f')} {_fmt(r.flops_ratio, '6.2f')}  {r.note}")
    lines.append("GFLOPs: torch FlopCounterMode (2 per multiply-add); GMACs = GFLOPs / 2, compared with the paper's "
                 "Table 2 (MAC counts, thop-style; see docs/stages/train.md). ratio = ours / paper.")
    return "\n".join(lines)


def as_json(rows: list[Row]) -> str:
    data: list[dict[str, Any]] = []
    for r in rows:
        data.append({**asdict(r), "params_ratio": r.params_ratio, "flops_ratio": r.flops_ratio})
    return json.dumps(data, indent=2)
