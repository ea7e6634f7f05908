"""Fixtures of the SEDS model tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread, as tests/pose does: these modules are tiny, and on the busy 2-core machine
    two OpenMP threads waiting on each other made a narrow GCN's forward 10-50x slower (measured);
    results do not depend on the thread count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
