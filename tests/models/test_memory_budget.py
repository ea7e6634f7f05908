"""`batch_size: auto`: batches from a memory budget, so a GPU profile on a CPU does not take 13 GB."""

from __future__ import annotations

import pytest

from pipeline.config import ParamError, load_params
from pipeline.models.memory_budget import POSE_CAP, RGB_CAP, available_mib, batch_for, budget_mib, pose_batch, rgb_batch
from tests_support import TINY_PARAMS, write_params

L384 = "rtmpose-l_8xb32-270e_coco-wholebody-384x288"


def test_the_largest_batch_that_fits_within_one_and_the_cap():
    assert batch_for(50.0, 1000.0, 256) == 20
    assert batch_for(50.0, 10.0, 256) == 1  # never below one item
    assert batch_for(1.0, 1e9, 256) == 256  # never beyond the GPU size


def test_the_cpu_budget_is_half_the_available_memory_shared_by_the_workers():
    assert budget_mib("cpu", 1) == pytest.approx(0.5 * available_mib(), rel=0.05)
    assert budget_mib("cpu", 4) == pytest.approx(budget_mib("cpu", 1) / 4, rel=0.05)


def test_auto_sizes_follow_the_per_item_cost_and_numbers_pass_through(monkeypatch):
    import pipeline.models.memory_budget as budget

    monkeypatch.setattr(budget, "available_mib", lambda: 24_000.0)  # the kernel's MemAvailable, fixed
    assert pose_batch(7, L384, True, "cpu", 1) == 7 and rgb_batch(5, 16, 224, "cpu", 1) == 5
    assert pose_batch("auto", L384, False, "cpu", 2) == 120  # 6000 MiB / 50 MiB per crop
    assert pose_batch("auto", L384, True, "cpu", 2) == 60  # a flip test runs each crop twice
    assert rgb_batch("auto", 16, 224, "cpu", 2) == 85  # 6000 / 70
    assert rgb_batch("auto", 8, 112, "cpu", 2) == RGB_CAP  # 8.75 MiB a window: the cap
    assert pose_batch("auto", L384, True, "cpu", 16) == 7  # 16 workers of rtmpose-l: 750 MiB each
    assert pose_batch("auto", L384, False, "cpu", 1) == 240 < POSE_CAP


def test_batch_size_takes_a_number_or_auto_and_nothing_else(tmp_path):
    write_params(tmp_path, {**TINY_PARAMS, "pose": {"batch_size": "auto"}, "rgb": {"batch_size": "auto"}})
    params = load_params(tmp_path / "params.yaml")
    assert params["pose"].batch_size == "auto" and params["rgb"].batch_size == "auto"
    write_params(tmp_path, {**TINY_PARAMS, "pose": {"batch_size": "lots"}})
    with pytest.raises(ParamError, match="pose.batch_size: 'lots' is not a number of crops or 'auto'"):
        load_params(tmp_path / "params.yaml")
