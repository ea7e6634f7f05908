"""The one precision rule (pipeline.models.precision) and the worker's refusal to write under a
fingerprint it would not compute."""

from __future__ import annotations

import pytest
import torch

from pipeline.config import load_params
from pipeline.models.precision import autocast_dtype, planned_precision, resolve_precision
from pipeline.rgb.stage import RgbStage
from pipeline.runner.execute import RunSpec, run_chunk


@pytest.mark.parametrize(
    "device, requested, expected",
    [
        ("cpu", "bf16", "fp32"),
        ("cpu", "fp16", "fp32"),
        ("cpu", "auto", "fp32"),  # the CPU always computes fp32
        ("cuda", "bf16", "bf16"),
        ("cuda:1", "fp16", "fp16"),
        ("cuda", "fp32", "fp32"),
        ("cuda", "off", "fp32"),
    ],
)
def test_resolve_precision(device, requested, expected):
    assert resolve_precision(device, requested) == expected


def test_auto_on_cuda_is_bf16_where_supported_else_fp16(monkeypatch):
    for supported, expected in ((True, "bf16"), (False, "fp16")):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True, s=supported: s)
        assert resolve_precision("cuda", "auto") == expected


def _pretend_gpus(monkeypatch, count: int) -> None:
    """Make torch see `count` GPUs, as pipeline/models/device.py asks (availability and count)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_planned_precision_follows_what_torch_sees_for_auto(monkeypatch):
    _pretend_gpus(monkeypatch, 0)
    assert planned_precision("auto", "bf16") == "fp32"
    _pretend_gpus(monkeypatch, 1)
    assert planned_precision("auto", "bf16") == "bf16" and planned_precision("cpu", "bf16") == "fp32"


def test_autocast_dtypes():
    assert (autocast_dtype("fp32"), autocast_dtype("bf16"), autocast_dtype("fp16")) == (
        None,
        torch.bfloat16,
        torch.float16,
    )
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        resolve_precision("cuda", "fp8")


def test_a_worker_that_would_compute_another_precision_refuses_to_run(project, monkeypatch):
    """runtime.device auto: the driver saw a GPU and planned bf16 keys; a worker without one would write
    fp32 features under them. It stops before loading anything."""
    params = load_params("params.yaml")
    assert params.runtime.device == "auto" and params["rgb"].precision == "bf16"
    _pretend_gpus(monkeypatch, 1)  # the driver's machine has a GPU
    planned = RgbStage(params).fingerprint("probe-fp").digest
    _pretend_gpus(monkeypatch, 0)  # this worker's does not
    spec = RunSpec(
        "rgb",
        "pipeline.rgb.stage:RgbStage",
        str(project / "params.yaml"),
        (),
        str(project / "cache"),
        planned,
        (("probe", "probe-fp"),),
        "auto",
        1,
        4,
        60.0,
        "lzf",
        str(project),
    )
    with pytest.raises(RuntimeError, match=r"rgb: this worker \(cpu\) computes fingerprint .* the run was planned as"):
        run_chunk(spec, [])
    assert not (project / "cache" / "rgb").exists()  # nothing was written
