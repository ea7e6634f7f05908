"""What an item stage is, to the runner: a fingerprint and a function from requests to items.

A stage subclass declares its name, VERSION (bump it whenever the code changes what is written),
the stage whose view it reads, and implements `fingerprint_inputs()` and `process()`. Everything
else (keys, reuse, sharding, dask, shards, views, summaries) is the runner's.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

from pipeline.config import Params
from pipeline.fingerprint import StageFingerprint
from pipeline.store.layout import StageDir
from pipeline.store.reader import StageReader
from pipeline.store.records import Failure, Item


@dataclass
class ItemRequest:
    """One clip to process: where it is, its identity, and what upstream stages know about it."""

    sample_id: str
    item_key: str
    video_path: Path  # absolute (data root joined)
    start_s: float | None
    end_s: float | None
    content_hash: str
    row: dict[str, Any]  # the input view's row (probe metadata, upstream keys, text, ...)

    def upstream_key(self, stage: str) -> str:
        return self.row[f"{stage}_key"]


@dataclass
class WorkerContext:
    """Per-worker-process resources a stage may use (built once per worker, not per item)."""

    params: Params
    store_root: Path
    device: str
    fingerprints: dict[str, str]  # stage -> fingerprint of every upstream stage (from the input view)
    _readers: dict[str, StageReader] = field(default_factory=dict)

    @property
    def workers(self) -> int:
        """Worker processes sharing this machine's memory: runtime.workers of a local cluster, else 1."""
        runtime = self.params.runtime
        return runtime.workers if runtime.scheduler == "local" else 1

    def upstream_reader(self, stage: str) -> StageReader:
        reader = self._readers.get(stage)
        if reader is None:
            reader = StageReader(StageDir(self.store_root, stage, self.fingerprints[stage]))
            self._readers[stage] = reader
        return reader


class Stage:
    name: ClassVar[str]
    VERSION: ClassVar[int]
    upstream: ClassVar[str]  # the view this stage maps over ("manifest", "probe", "pose", ...)
    view_attrs: ClassVar[tuple[str, ...]] = ()  # attrs copied into the stage's view as columns
    uses_gpu: ClassVar[bool] = False
    reads_clips: ClassVar[bool] = True  # decodes the clip: its content is checked against the key before and after
    follows_decoder: ClassVar[bool] = False  # decodes as runtime.decoder says: the driver checks it before planning

    def __init__(self, params: Params):
        self.params = params

    def fingerprint_inputs(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(output-changing params, artifacts role -> content hash or explicit choice such as 'random')."""
        raise NotImplementedError

    def fingerprint(self, upstream: str | None) -> StageFingerprint:
        params, artifacts = self.fingerprint_inputs()
        if self.follows_decoder and self.params.runtime.decoder == "nvdec":
            # NVDEC's frames differ from the CPU decoder's by a few levels, by an amount not yet measured on a
            # GPU: its items are keyed apart (a CPU run's fingerprint, with no `decoder`, is unchanged).
            params = {**params, "decoder": "nvdec"}
        return StageFingerprint(self.name, self.VERSION, params, artifacts, upstream)

    def describe_weights(self) -> str:
        """One line for summaries: which weights the stage uses (random ones are always said so)."""
        return ""

    def item_content(self, row: dict[str, Any], content_hash: str) -> str:
        """What an item's key hashes besides its bounds and the fingerprint: the clip's content hash, plus
        any per-clip input the stage reads that is not the video (so one clip's changed input recomputes
        that clip only, where a whole-file hash in the fingerprint would recompute them all)."""
        return content_hash

    def skip_reason(self, row: dict[str, Any]) -> str | None:
        """Why this stage leaves a row out by its own params (status `skipped`, never computed, never a
        failure), or None: it computes every row by default."""
        return None

    def open(self, ctx: WorkerContext) -> None:
        """Load models and other per-worker state. Called once per worker process."""

    def process(self, requests: list[ItemRequest], ctx: WorkerContext) -> Iterator[Item | Failure]:
        """Yield one Item or Failure per request (any order). Raise only for errors that should stop
        the run (a bug, a missing checkpoint); bad input becomes a Failure."""
        raise NotImplementedError


def stage_ref(cls: type[Stage]) -> str:
    """`module:Class`, how a stage class travels to a worker (small, picklable), never imported by name here."""
    return f"{cls.__module__}:{cls.__qualname__}"


def load_ref(ref: str):
    """The object a `module:name` reference names (a stage class, the shared decode's function): the runner
    runs what its caller hands it and imports no stage of its own (docs/architecture.md, "Layers")."""
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)
