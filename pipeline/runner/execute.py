"""Running chunks of requests: in this process, or on dask workers (a LocalCluster or any scheduler).

Workers write their results straight into the store with their own ShardWriter (arrays never travel
back through the scheduler); the driver receives counts and failure reasons only. A worker keeps its
stage (models loaded) and its writer across chunks of one run; `flush_worker` publishes the open
shard at the end of the run.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.config import load_params
from pipeline.hashmemo import publish_memos
from pipeline.models.device import resolve_device
from pipeline.runner.clipcheck import clip_problems
from pipeline.runner.stage import ItemRequest, Stage, WorkerContext, load_ref
from pipeline.store.layout import StageDir
from pipeline.store.records import Failure, Item
from pipeline.store.writer import ShardWriter


@dataclass(frozen=True)
class RunSpec:
    """Everything a worker needs to rebuild the stage: small and picklable."""

    stage: str  # its name (the store folder)
    stage_ref: str  # its class, `module:Class` (runner.stage.stage_ref)
    params_path: str
    overrides: tuple[tuple[str, str], ...]  # (dotted key, JSON value): hashable, lists included
    store_root: str
    fingerprint: str
    fingerprints: tuple[tuple[str, str], ...]
    device: str
    threads: int
    shard_items: int
    shard_seconds: float
    compression: str
    cwd: str


@dataclass
class ChunkReport:
    computed: int = 0
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (sample_id, reason, error)
    seconds: float = 0.0


@dataclass
class _WorkerState:
    stage: Stage
    ctx: WorkerContext
    writer: ShardWriter


_STATE: dict[RunSpec, _WorkerState] = {}


def _worker_rank() -> int:
    try:
        from distributed import get_worker

        name = get_worker().name
        return int(name) if str(name).isdigit() else 0
    except (ImportError, ValueError):
        return 0


def _state(spec: RunSpec) -> _WorkerState:
    state = _STATE.get(spec)
    if state is None:
        os.chdir(spec.cwd)  # params and data roots are relative to the project, wherever the worker started
        params = load_params(spec.params_path, {k: json.loads(v) for k, v in spec.overrides})
        stage = load_ref(spec.stage_ref)(params)
        device = resolve_device(spec.device, _worker_rank()) if stage.uses_gpu else "cpu"
        ctx = WorkerContext(params, Path(spec.store_root), device, dict(spec.fingerprints))
        _check_fingerprint(stage, ctx, spec)
        stage.open(ctx)
        if "torch" in sys.modules:  # only stages that use torch pay for importing it
            sys.modules["torch"].set_num_threads(spec.threads)
        writer = ShardWriter(
            StageDir(Path(spec.store_root), spec.stage, spec.fingerprint),
            max_items=spec.shard_items,
            max_seconds=spec.shard_seconds,
            compression=spec.compression,
        )
        state = _WorkerState(stage, ctx, writer)
        _STATE[spec] = state
    return state


def _check_fingerprint(stage: Stage, ctx: WorkerContext, spec: RunSpec) -> None:
    """Refuse to write under the run's fingerprint what this worker would compute under another one.

    The driver computes the fingerprint before any worker starts; a worker that sees another device
    (runtime.device auto: the driver saw no GPU, this worker has one, so its precision differs), other
    params or another checkpoint file at the same path would otherwise store items the key does not
    describe."""
    here = stage.fingerprint(ctx.fingerprints.get(stage.upstream)).digest
    if here != spec.fingerprint:
        raise RuntimeError(
            f"{spec.stage}: this worker ({ctx.device}) computes fingerprint {here[:12]}, the run was planned as "
            f"{spec.fingerprint[:12]}: its items would not be what their keys say. Set runtime.device to the "
            "workers' device (the precision a stage computes in depends on it), and give every machine the same "
            "params and checkpoint files"
        )


class _Sink:
    """Where one stage's results of one chunk go: checked against the clip and the request, then into
    the worker's shard (items) or failures table, and counted in the chunk's report."""

    def __init__(
        self,
        spec: RunSpec,
        state: _WorkerState,
        requests: list[ItemRequest],
        on_item: Callable[[Item | Failure], None] | None,
    ):
        self.spec, self.state, self.on_item = spec, state, on_item
        self.expected = {r.item_key for r in requests}
        self.by_sample = {r.sample_id: r for r in requests}
        self.store_root = Path(spec.store_root)
        self.report = ChunkReport()

    def accept(self, result: Item | Failure) -> None:
        if self.state.stage.reads_clips and isinstance(result, Item):
            after = clip_problems([self.by_sample[result.sample_id]], self.store_root).get(result.sample_id)
            if after is not None:  # the file changed while the stage read it: its key does not describe it
                result = Failure(result.sample_id, after.reason, after.message, result.item_key)
        if isinstance(result, Failure):
            if result.item_key is None and result.sample_id in self.by_sample:
                result.item_key = self.by_sample[result.sample_id].item_key
            self.state.writer.add_failure(result)
            self.report.failures.append((result.sample_id, result.reason, result.error))
        else:
            if result.item_key not in self.expected:
                raise RuntimeError(
                    f"stage {self.spec.stage} returned item {result.item_key} ({result.sample_id}) "
                    "that was not requested: a bug in the stage"
                )
            result.provenance.setdefault("device", self.state.ctx.device)
            self.state.writer.add(result)
            self.report.computed += 1
        self.expected.discard(result.item_key)
        if self.on_item is not None:
            self.on_item(result)

    def close(self, seconds: float) -> ChunkReport:
        if self.expected:
            raise RuntimeError(
                f"stage {self.spec.stage} returned nothing for {len(self.expected)} requested items: a bug in the stage"
            )
        self.report.seconds = seconds
        return self.report


def run_chunk(
    spec: RunSpec, requests: list[ItemRequest], on_item: Callable[[Item | Failure], None] | None = None
) -> ChunkReport:
    state = _state(spec)
    start = time.perf_counter()
    sink = _Sink(spec, state, requests, on_item)
    before = clip_problems(requests, sink.store_root) if state.stage.reads_clips else {}
    refused = (Failure(sid, problem.reason, problem.message) for sid, problem in before.items())
    computed = state.stage.process([r for r in requests if r.sample_id not in before], state.ctx)
    for result in itertools.chain(refused, computed):
        sink.accept(result)
    return sink.close(time.perf_counter() - start)


@dataclass
class SharedChunkReport:
    """One chunk of a shared-decode run: each member's report, and the clips decoded (by members)."""

    members: list[ChunkReport]
    decodes: dict[str, int]


def run_shared_chunk(
    specs: tuple[RunSpec, ...],
    processor: str,
    clips: list[dict[int, ItemRequest]],
    on_item: Callable[[Item | Failure], None] | None = None,
) -> SharedChunkReport:
    """`run_chunk` for several stages that read the same clips: each clip is checked against its probed
    content once, then `processor` (a `module:function` reference, pipeline/extract/shared_decode.py's
    process_shared: members, clips, decode counts -> (member index, result)) decodes it once, and each
    member's results go to its own store."""
    states = [_state(spec) for spec in specs]
    start = time.perf_counter()
    sinks = [
        _Sink(spec, state, [clip[i] for clip in clips if i in clip], on_item)
        for i, (spec, state) in enumerate(zip(specs, states))
    ]
    before = clip_problems([next(iter(clip.values())) for clip in clips], sinks[0].store_root)
    for clip in clips:
        for i, request in clip.items():
            problem = before.get(request.sample_id)
            if problem is not None:
                sinks[i].accept(Failure(request.sample_id, problem.reason, problem.message))
    decodes: Counter = Counter()
    live = [clip for clip in clips if next(iter(clip.values())).sample_id not in before]
    for i, result in load_ref(processor)([state.stage for state in states], live, decodes):
        sinks[i].accept(result)
    seconds = time.perf_counter() - start
    return SharedChunkReport([sink.close(seconds) for sink in sinks], dict(decodes))


def flush_worker(spec: RunSpec) -> int:
    """Publish the open shard and pending failures of this run (and forget the worker state)."""
    publish_memos()
    state = _STATE.pop(spec, None)
    if state is None:
        return 0
    state.writer.close()
    for reader in state.ctx._readers.values():
        reader.close()
    return state.writer.published_items


def discard_worker(spec: RunSpec) -> None:
    """After an error: publish what is complete (items already added are valid), drop the rest."""
    publish_memos()
    state = _STATE.pop(spec, None)
    if state is not None:
        try:
            state.writer.close()
        except Exception:
            state.writer.abandon()
            raise
