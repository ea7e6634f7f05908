"""What one item of a stage is, before it is written and after it is read back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Reasons an item can fail, as recorded in failures tables. Stages may add their own, but these are
# the ones the probe stage and the runner produce (docs/stages.md lists what each means).
REASONS = (
    "missing_file",      # video_path does not exist under the data root
    "empty_file",        # zero bytes
    "not_a_video",       # no decodable video stream (text file, audio only, random bytes)
    "no_frames",         # a video stream that yields no frame
    "truncated",         # decoding stopped before the frames the container announced
    "clip_out_of_range", # start_s/end_s outside the decodable duration
    "decode_timeout",    # the decoder did not answer within runtime.decode_timeout_s
    "error",             # anything else: the message is kept in `error`
)


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
