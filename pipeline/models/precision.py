"""The arithmetic a model runs in: the one rule that turns a precision param into fp32, bf16 or fp16.

Every stage and the trainer ask this module, so "auto" means the same everywhere: bf16 autocast on a
GPU that supports it, fp16 on one that does not, and fp32 on the CPU whatever was asked (CPU
autocast is slower than fp32 on the machines this project runs on, not faster). What a stage
resolves here is what it writes, so the item stages put it in their fingerprint
(docs/cache-format.md): a bf16 GPU run and an fp32 CPU run keep their items apart.
"""

from __future__ import annotations

from typing import Any

PRECISIONS = ("bf16", "fp16", "fp32")


def resolve_precision(device: str, requested: str) -> str:
    """'fp32', 'bf16' or 'fp16' for a model on `device` ('cpu', 'cuda', 'cuda:N').

    `requested`: 'auto' (bf16 where the GPU supports it, else fp16), 'fp32' or 'off' (no autocast),
    'bf16' or 'fp16'. The CPU always gets 'fp32'."""
    if not str(device).startswith("cuda") or requested in ("fp32", "off"):
        return "fp32"
    if requested == "auto":
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; expected auto, off or one of {PRECISIONS}")
    return requested


def planned_precision(runtime_device: str, requested: str) -> str:
    """What `resolve_precision` will give on the device `runtime.device` names, seen from this process
    (for fingerprints, computed before any worker starts: 'auto' is CUDA when torch sees a GPU here).
    A worker whose own device gives another answer refuses to run (pipeline/runner/execute.py)."""
    from pipeline.models.device import planned_device

    return resolve_precision(planned_device(runtime_device), requested)


def autocast_dtype(precision: str) -> Any:
    """The torch dtype autocast runs in for a resolved precision; None for fp32 (no autocast)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
