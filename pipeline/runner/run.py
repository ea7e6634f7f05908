"""Run one item stage over its input view: plan, reuse, compute (locally or on dask), finalize, summarise.

The same call serves `dvc repro` (whole manifest, then the view), an array task (`--shard I/N`: its
rows only, no view) and `seds finalize <stage>` (no computing: coverage check and view).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pipeline.config import Params
from pipeline.models.device import resolve_device
from pipeline.progress import Progress
from pipeline.runner.execute import ChunkReport, RunSpec, discard_worker, flush_worker, run_chunk
from pipeline.runner.plan import Plan, ShardSpec, build_plan
from pipeline.runner.runlog import RUNS_FOLDER, RunLog
from pipeline.runner.shared_store import import_from_shared
from pipeline.runner.stage import ItemRequest, Stage, stage_ref
from pipeline.runner.view import Coverage, finalize
from pipeline.store.index import StageIndex
from pipeline.store.layout import StoreError
from pipeline.store.records import Failure
from pipeline.store.writer import ShardWriter, cleanup_temporaries


@dataclass
class RunOptions:
    params_path: str = "params.yaml"
    overrides: dict[str, Any] = field(default_factory=dict)
    shard: ShardSpec = field(default_factory=ShardSpec)
    retry_failed: bool = False
    finalize_only: bool = False
    progress: bool = True


@dataclass
class RunSummary:
    stage: str
    fingerprint: str
    total: int = 0
    computed: int = 0
    reused: int = 0
    shared: int = 0
    shared_rejected: int = 0
    failed_now: Counter = field(default_factory=Counter)
    coverage: Coverage | None = None
    seconds: float = 0.0
    weights: str = ""
    shard: ShardSpec = field(default_factory=ShardSpec)
    extra_record: dict[str, Any] = field(
        default_factory=dict
    )  # a shared-decode run's decode counts (runner/together.py)

    @property
    def failed(self) -> int:
        return self.coverage.failed_total if self.coverage else sum(self.failed_now.values())

    def line(self) -> str:
        rate = self.computed / self.seconds if self.seconds > 0 else 0.0
        failed = self.coverage.failed if self.coverage else dict(self.failed_now)
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(failed.items()))
        shard = f" shard {self.shard}" if self.shard.count > 1 else ""
        upstream = (
            f", {self.coverage.upstream_failed} skipped (upstream failed)"
            if self.coverage and self.coverage.upstream_failed
            else ""
        )
        if self.coverage and self.coverage.skipped:
            upstream += f", {self.coverage.skipped} left out by its params"
        shared = f"{self.shared} from the shared store, " if self.shared or self.shared_rejected else ""
        rejected = f"{self.shared_rejected} shared item(s) rejected (checksum), " if self.shared_rejected else ""
        text = (
            f"{self.stage}{shard}: {self.total} items: {self.computed} computed, {self.reused} reused, "
            f"{shared}{rejected}"
            f"{self.failed} failed{f' ({reasons})' if reasons else ''}{upstream} in {self.seconds:.1f} s "
            f"({rate:.2f} items/s) [fingerprint {self.fingerprint[:12]}]"
        )
        return text + (f" [weights: {self.weights}]" if self.weights else "")

    def record(self, finalize_only: bool) -> dict[str, Any]:
        """What `seds report run` needs of this run (pipeline/runner/runlog.py)."""
        return {
            "stage": self.stage,
            "fingerprint": self.fingerprint,
            "shard": str(self.shard),
            "finalize_only": finalize_only,
            "total": self.total,
            "computed": self.computed,
            "reused": self.reused,
            "shared": self.shared,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "weights": self.weights,
            **self.extra_record,
        }


def _chunks(items: list[ItemRequest], size: int) -> Iterator[list[ItemRequest]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@contextlib.contextmanager
def dask_client(scheduler: str, workers: int, threads: int) -> Iterator[Any]:
    """A client for `runtime.scheduler`: a LocalCluster of `workers` processes, or a running scheduler."""
    import dask
    from distributed import Client, LocalCluster

    # Stages start decoder subprocesses; daemonic workers may not have children.
    with dask.config.set({"distributed.worker.daemon": False, "distributed.admin.log-events": False}):
        if scheduler == "local":
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
                worker_class="distributed.Nanny",
                env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
            )
            with cluster, Client(cluster) as client:
                yield client
        else:
            with Client(scheduler) as client:
                yield client


def _once_per_key(requests: list[ItemRequest]) -> list[ItemRequest]:
    """One request per item key: rows naming the same clip (same content and bounds) share one item,
    and a stage asked twice for one key in a chunk would write it twice."""
    seen: set[str] = set()
    return [r for r in requests if not (r.item_key in seen or seen.add(r.item_key))]


def _record_blocked(plan: Plan, retry_failed: bool) -> None:
    """Rows with no key (missing files) go to the failures table so the view can account for them."""
    fresh = [b for b in plan.blocked if b.status == "failed"]
    if not fresh:
        return
    plan.stage_dir.create(plan.fingerprint)
    index = StageIndex.load(plan.stage_dir)
    with ShardWriter(plan.stage_dir) as writer:
        for b in fresh:
            failure = Failure(b.row["sample_id"], b.reason, b.error)
            if not index.records(failure):
                writer.add_failure(failure)


@dataclass
class Prepared:
    """A stage run up to computing: its plan, its summary so far, the requests left to compute, and its
    run record (written at the start, completed by `finish_stage` or `failure_recorded`)."""

    plan: Plan
    summary: RunSummary
    todo: list[ItemRequest]
    started: float
    log: RunLog
    finalize_only: bool

    def record(self) -> dict[str, Any]:
        self.summary.seconds = time.perf_counter() - self.started
        return self.summary.record(self.finalize_only)


@contextlib.contextmanager
def failure_recorded(runs: list[Prepared]) -> Iterator[None]:
    """Complete as failed, with the error, the records still open of runs whose block raises: a run that
    stopped on an error is not one that was killed. Whether the record could be written or not, the
    error that stopped the run is what propagates."""
    try:
        yield
    except BaseException as err:
        for run in runs:
            if run.log.open:
                try:
                    run.log.fail(run.record(), err)
                except StoreError as unwritten:
                    err.add_note(f"{run.log.path} still says running: {unwritten}")
        raise


def prepare_stage(stage_cls: type[Stage], params: Params, options: RunOptions) -> Prepared:
    """Plan, record blocked rows, reuse what the store (or the shared store) has: what is left is `todo`."""
    runtime = params.runtime
    stage = stage_cls(params)
    name = stage.name
    started, started_at = time.perf_counter(), time.time()
    decoder = None
    if stage.follows_decoder and not options.finalize_only:  # runtime.decoder: nvdec without a GPU stops here
        from pipeline.video.nvdec import run_decoder

        decoder = run_decoder(runtime.decoder, runtime.device, runtime.scheduler)
    plan = build_plan(stage, Path(runtime.manifests), Path(runtime.store), Path(params["data"].root), options.shard)
    summary = RunSummary(
        name,
        plan.fingerprint.digest,
        total=len(plan.requests) + len(plan.blocked),
        weights=stage.describe_weights(),
        shard=options.shard,
    )
    if decoder is not None:
        summary.extra_record["decoder"] = decoder  # the run record says which decoder this run's items came from
    plan.stage_dir.create(plan.fingerprint)
    log = RunLog(plan.stage_dir.path / RUNS_FOLDER, summary.record(options.finalize_only), started_at)
    prepared = Prepared(plan, summary, [], started, log, options.finalize_only)
    if options.finalize_only:
        return prepared
    with failure_recorded([prepared]):
        cleanup_temporaries(plan.stage_dir)
        _record_blocked(plan, options.retry_failed)
        index = StageIndex.load(plan.stage_dir)
        todo = _once_per_key(
            [
                r
                for r in plan.requests
                if r.item_key not in index
                and (options.retry_failed or index.failure_for(r.item_key, r.sample_id) is None)
            ]
        )
        summary.reused = len(plan.requests) - len(todo)
        if todo and runtime.shared_store:
            imported = import_from_shared(
                plan, todo, Path(runtime.shared_store), compression=runtime.compression, shard_items=runtime.shard_items
            )
            todo, summary.shared, summary.shared_rejected = imported.remaining, imported.copied, imported.rejected
        prepared.todo = todo
    return prepared


def finish_stage(prepared: Prepared, params: Params, options: RunOptions) -> RunSummary:
    """Coverage check and view (the whole view unless this is one shard), run record completed, summary.
    Call it inside `failure_recorded`: a coverage error ends the run too."""
    plan, summary = prepared.plan, prepared.summary
    manifests = Path(params.runtime.manifests)
    if options.finalize_only or options.shard.count == 1:
        summary.coverage = finalize(plan, manifests)
    else:
        summary.coverage = finalize(plan, manifests, options.shard)
    prepared.log.finish(prepared.record())
    return summary


def run_stage(stage_cls: type[Stage], params: Params, options: RunOptions) -> RunSummary:
    prepared = prepare_stage(stage_cls, params, options)
    with failure_recorded([prepared]):
        if prepared.todo:
            _compute(prepared.plan, prepared.todo, params, options, prepared.summary)
        return finish_stage(prepared, params, options)


def run_spec(plan: Plan, params: Params, options: RunOptions) -> RunSpec:
    """What a worker needs to rebuild this run's stage (and check it computes the planned fingerprint)."""
    runtime = params.runtime
    overrides = tuple((k, json.dumps(v, sort_keys=True)) for k, v in sorted(options.overrides.items()))
    return RunSpec(
        plan.stage.name,
        stage_ref(type(plan.stage)),
        str(Path(options.params_path).resolve()),
        overrides,
        str(Path(runtime.store).resolve()),
        plan.fingerprint.digest,
        tuple(sorted(plan.upstream_fingerprints.items())),
        runtime.device,
        runtime.threads_per_worker,
        runtime.shard_items,
        runtime.shard_seconds,
        runtime.compression,
        str(Path.cwd()),
    )


def _compute(plan: Plan, todo: list[ItemRequest], params: Params, options: RunOptions, summary: RunSummary) -> None:
    runtime = params.runtime
    spec = run_spec(plan, params, options)
    bar = Progress(len(todo), plan.stage.name, bar=options.progress, every_s=runtime.progress_every_s)

    def absorb(report: ChunkReport) -> None:
        summary.computed += report.computed
        for _, reason, _ in report.failures:
            summary.failed_now[reason] += 1

    def one_item(result) -> None:
        bar.update(1, failed=int(isinstance(result, Failure)))

    try:
        if runtime.scheduler == "synchronous":
            if plan.stage.uses_gpu:
                resolve_device(runtime.device)  # fail before any work when CUDA was asked for and is absent
            try:
                for chunk in _chunks(todo, runtime.chunk_items):
                    absorb(run_chunk(spec, chunk, on_item=one_item))
            except BaseException:
                discard_worker(spec)
                raise
            flush_worker(spec)
        else:
            from distributed import as_completed

            with dask_client(runtime.scheduler, runtime.workers, runtime.threads_per_worker) as client:
                futures = [
                    client.submit(run_chunk, spec, chunk, pure=False) for chunk in _chunks(todo, runtime.chunk_items)
                ]
                try:
                    for future in as_completed(futures):
                        report = future.result()
                        absorb(report)
                        bar.update(report.computed + len(report.failures), failed=len(report.failures))
                finally:
                    client.run(flush_worker, spec)
    finally:
        bar.close()
