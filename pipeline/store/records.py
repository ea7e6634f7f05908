"""What one item of a stage is, before it is written and after it is read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Item:
    """One sample's output of one stage: named arrays (time first) plus small JSON attributes."""

    item_key: str
    sample_id: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Failure:
    """Why one sample produced nothing. `item_key` is None when no key could be formed (missing file)."""

    sample_id: str
    reason: str
    error: str
    item_key: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)


class ItemFailed(Exception):
    """Raised by a stage's per-item code for an expected, recordable failure (bad input)."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
