"""The one rule for `runtime.device`: what 'auto' means, and which GPU a worker takes.

The runner, the trainer, the precision rule (pipeline/models/precision.py) and the NVDEC choice all ask
here, so a driver that plans a fingerprint and a worker that computes it resolve a device the same way.
"""

from __future__ import annotations


def cuda_count() -> int:
    """GPUs torch sees on this machine (0 without CUDA, or without torch)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def planned_device(requested: str) -> str:
    """'cuda' or 'cpu' for `requested` as seen from this process ('auto': CUDA when torch sees a GPU)."""
    if requested == "auto":
        return "cuda" if cuda_count() else "cpu"
    return requested


def resolve_device(requested: str, worker_rank: int = 0) -> str:
    """The device a worker runs on: 'auto' -> cuda (one GPU per worker, by rank) when torch sees one, else
    cpu; 'cuda' -> the rank's GPU; 'cuda:N' as given. CUDA asked for where there is none is an error."""
    if requested == "cpu":
        return "cpu"
    count = cuda_count()
    if requested == "auto":
        return f"cuda:{worker_rank % count}" if count else "cpu"
    if not count:
        raise RuntimeError(f"runtime.device {requested!r} asked for CUDA, but torch sees no GPU on this machine")
    return requested if ":" in requested else f"cuda:{worker_rank % count}"
