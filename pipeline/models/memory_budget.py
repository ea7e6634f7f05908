"""Batch sizes from a memory budget (`pose.batch_size: auto`, `rgb.batch_size: auto`).

The How2Sign profile's batch sizes (pose 256 crops, rgb 128 windows) suit a GPU; on a CPU they made
extract peak at 13.3 GB RSS, since every item of a batch holds its activations at once. `auto` picks the
largest batch whose activations fit the device's budget, capped at those GPU sizes:
- CPU: half the memory the kernel reports available (MemAvailable) when the worker opens its stage,
  shared by the `runtime.workers` processes of the machine;
- CUDA: 70% of the memory free on the worker's GPU (bf16 needs about half the fp32 figures used here,
  which leaves room for the cuDNN workspace).
What one item costs was measured as the growth of peak RSS per item in fp32 inference on the CPU
(batch 32 crops, 16 windows; /proc VmHWM), with random weights at the real sizes:

| model | input | MiB per item |
| --- | --- | --- |
| RTMPose-WholeBody-l | 384x288 crop | 50 |
| RTMPose-WholeBody-l | 256x192 crop | 25 (scaled by pixels) |
| RTMPose-WholeBody-m | 256x192 crop | 17 |
| I3D (Inception-v1 3D) | 16 frames x 224 x 224 | 70 |

A flip test runs each crop twice in one forward (twice the activations). Other I3D inputs scale with
frames x pixels. The batch size never enters a fingerprint, so `auto` changes no key.
"""

from __future__ import annotations

from pathlib import Path

AUTO = "auto"
POSE_CAP, RGB_CAP = 256, 128  # the How2Sign profile's GPU sizes: auto never goes beyond them
POSE_MIB_PER_CROP = {
    "rtmpose-l_8xb32-270e_coco-wholebody-384x288": 50.0,
    "rtmpose-l_8xb64-270e_coco-wholebody-256x192": 25.0,
    "rtmpose-m_8xb64-270e_coco-wholebody-256x192": 17.0,
}
I3D_MIB_PER_WINDOW = 70.0  # 16 frames of 224 x 224
_CPU_SHARE, _GPU_SHARE = 0.5, 0.7


def available_mib() -> float:
    """MemAvailable of /proc/meminfo in MiB (what the kernel can give without swapping)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    raise OSError("/proc/meminfo has no MemAvailable line")


def budget_mib(device: str, workers: int) -> float:
    """The memory one worker's batches may take on `device` ('cpu', 'cuda', 'cuda:N')."""
    if device.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        return _GPU_SHARE * free / 2**20
    return _CPU_SHARE * available_mib() / max(1, workers)


def batch_for(per_item_mib: float, budget: float, cap: int) -> int:
    """The largest batch of items costing `per_item_mib` that fits `budget`, within 1..cap."""
    return max(1, min(cap, int(budget // per_item_mib)))


def pose_batch(setting: int | str, model: str, flip_test: bool, device: str, workers: int) -> int:
    """pose.batch_size as a number of crops: the setting itself, or `auto` from the budget."""
    if setting != AUTO:
        return int(setting)
    per_crop = POSE_MIB_PER_CROP[model] * (2 if flip_test else 1)
    return batch_for(per_crop, budget_mib(device, workers), POSE_CAP)


def rgb_batch(setting: int | str, window: int, size: int, device: str, workers: int) -> int:
    """rgb.batch_size as a number of windows: the setting itself, or `auto` from the budget."""
    if setting != AUTO:
        return int(setting)
    per_window = I3D_MIB_PER_WINDOW * (window / 16) * (size / 224) ** 2
    return batch_for(per_window, budget_mib(device, workers), RGB_CAP)
