"""Is each clip still the file its item key was made from? Checked by the worker before and after computing.

An item key hashes the clip's content as probe found it (the `content_hash` column). A video replaced
afterwards by another valid one would decode fine and be stored under the key of the old content, so
the store would hold an item its key does not describe. Stages that read the clip (`reads_clips`)
therefore have each clip's content hash taken again (from the hash memo: a stat when nothing changed,
a full read when the stat did) just before computing, and once more before the item is stored, which
catches a file replaced while it was being read. A clip whose content differs fails as
`changed_since_probe`; one that is gone or not a regular file fails with that reason. Never stored.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.hashmemo import content_hashes
from pipeline.runner.stage import ItemRequest
from pipeline.store.records import ItemFailed

CHANGED = "changed_since_probe"


def clip_problems(requests: list[ItemRequest], store_root: Path) -> dict[str, ItemFailed]:
    """sample_id -> why its clip is no longer the content its key was made from (absent when it is)."""
    problems: dict[str, ItemFailed] = {}
    for request, now in zip(requests, content_hashes([r.video_path for r in requests], store_root)):
        if isinstance(now, ItemFailed):
            problems[request.sample_id] = now
        elif now != request.content_hash:
            problems[request.sample_id] = ItemFailed(
                CHANGED,
                f"{request.video_path} changed since probe: its content hash is {now} now, {request.content_hash} "
                "when probed; rerun probe (dvc repro, or seds run probe) to take the new content, or put the "
                "probed file back and rerun with --retry-failed",
            )
    return problems
