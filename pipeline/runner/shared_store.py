"""Reuse a lab-mate's items: a read-only shared store consulted by key before computing.

A shared store (e.g. a lab NFS path, `runtime.shared_store`) has the same layout as ours. For every
item still to compute, its key is looked up there; a hit is read back with checksum verification and
copied into the local store through our own writer (pipeline.store.transfer.copy_verified). An item
whose bytes do not match its checksum (or whose index row points outside its shard) is reported and
left to be recomputed: never used. Nothing is ever written to, locked in or cleaned in the shared store.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.runner.plan import Plan
from pipeline.runner.stage import ItemRequest
from pipeline.store.layout import StageDir, StoreError, StoreWriteError
from pipeline.store.transfer import copy_verified


@dataclass
class SharedImport:
    copied: int
    rejected: int
    remaining: list[ItemRequest]


def import_from_shared(
    plan: Plan, todo: list[ItemRequest], shared_root: Path, *, compression: str, shard_items: int
) -> SharedImport:
    shared_dir = StageDir(Path(shared_root), plan.stage.name, plan.fingerprint.digest)
    if not shared_dir.exists():
        return SharedImport(0, 0, list(todo))
    try:
        report = copy_verified(
            shared_dir,
            plan.stage_dir,
            [r.item_key for r in todo],
            compression=compression,
            shard_items=shard_items,
            note=str(shared_dir.path),
        )
    except (StoreWriteError, OSError):
        raise  # our own store could not be written: not the shared store's fault
    except StoreError as err:  # its index or STAGE.json cannot be trusted: use none of it
        print(f"{plan.stage.name}: shared store {shared_dir.path} not used, computing instead: {err}", file=sys.stderr)
        return SharedImport(0, 0, list(todo))
    for message in report.rejected:
        print(f"{plan.stage.name}: shared store item rejected, recomputing: {message}", file=sys.stderr)
    done = set()
    if report.copied:
        from pipeline.store.index import StageIndex

        done = set(StageIndex.load(plan.stage_dir).rows)
    return SharedImport(report.copied, len(report.rejected), [r for r in todo if r.item_key not in done])
