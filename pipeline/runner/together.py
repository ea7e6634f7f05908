"""Run several item stages over one decode per clip: `seds run pose rgb` (and dvc.yaml's extract stage).

Each member is planned, reused and finalized exactly as `run_stage` does it alone (own fingerprint,
keys, store, view, summary line and run record); only computing is shared. The clips some member still
needs are grouped by sample, cut into chunks of `runtime.chunk_items` clips and run by
`execute.run_shared_chunk` (in this process or on dask workers), which decodes each clip once for every
member that needs it (pipeline/extract/shared_decode.py). A clip one member already has is decoded for
the other alone; a clip all members have is not decoded at all.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from pipeline.config import Params
from pipeline.models.device import resolve_device
from pipeline.progress import Progress
from pipeline.runner.execute import SharedChunkReport, discard_worker, flush_worker, run_shared_chunk
from pipeline.runner.run import (
    Prepared,
    RunOptions,
    RunSummary,
    dask_client,
    failure_recorded,
    finish_stage,
    prepare_stage,
    run_spec,
)
from pipeline.runner.stage import ItemRequest, Stage
from pipeline.store.records import Failure


@dataclass
class Member:
    """One stage of a shared run, with its own params (an rgb feature set is `rgb.feature_set=<name>`)."""

    stage: type[Stage]
    params: Params
    options: RunOptions


@dataclass
class TogetherSummary:
    members: list[RunSummary]
    decodes: Counter = field(default_factory=Counter)  # clips decoded, by the members that shared each decode
    seconds: float = 0.0

    def line(self) -> str:
        shares = ", ".join(f"{n} for {who}" for who, n in sorted(self.decodes.items())) or "none needed"
        return f"decodes: {sum(self.decodes.values())} clip(s) decoded once each ({shares}) in {self.seconds:.1f} s"


def _clips(prepared: list[Prepared]) -> list[dict[int, ItemRequest]]:
    """Each sample some member still needs, with every such member's request, in view order."""
    clips: dict[str, dict[int, ItemRequest]] = {}
    for i, member in enumerate(prepared):
        for request in member.todo:
            clips.setdefault(request.sample_id, {})[i] = request
    return list(clips.values())


def _chunks(clips: list, size: int) -> Iterator[list]:
    for start in range(0, len(clips), size):
        yield clips[start : start + size]


def run_together(members: list[Member], processor: str) -> TogetherSummary:
    """`processor`: the `module:function` that decodes each clip once for every member (see
    execute.run_shared_chunk); the caller names it, the runner imports no stage of its own."""
    started = time.perf_counter()
    prepared: list[Prepared] = []
    with failure_recorded(prepared):  # a member that fails to prepare ends the others' runs too
        for m in members:
            prepared.append(prepare_stage(m.stage, m.params, m.options))
        clips = _clips(prepared)
        result = TogetherSummary([])
        if clips:
            _compute(members, prepared, clips, result, processor)
        for member, ready in zip(members, prepared):
            ready.summary.extra_record.update(
                decodes=dict(result.decodes), decoded_with=[m.stage.name for m in members]
            )
            result.members.append(finish_stage(ready, member.params, member.options))
    result.seconds = time.perf_counter() - started
    return result


def _compute(
    members: list[Member],
    prepared: list[Prepared],
    clips: list[dict[int, ItemRequest]],
    result: TogetherSummary,
    processor: str,
) -> None:
    lead = members[0]
    runtime, options = lead.params.runtime, lead.options
    specs = tuple(run_spec(p.plan, m.params, m.options) for m, p in zip(members, prepared))
    bar = Progress(
        sum(len(p.todo) for p in prepared),
        "+".join(m.stage.name for m in members),
        bar=options.progress,
        every_s=runtime.progress_every_s,
    )

    def absorb(report: SharedChunkReport) -> None:
        for ready, member_report in zip(prepared, report.members):
            ready.summary.computed += member_report.computed
            for _, reason, _ in member_report.failures:
                ready.summary.failed_now[reason] += 1
        result.decodes.update(report.decodes)

    try:
        if runtime.scheduler == "synchronous":
            resolve_device(runtime.device)  # fail before any work when CUDA was asked for and is absent
            try:
                for chunk in _chunks(clips, runtime.chunk_items):
                    absorb(
                        run_shared_chunk(
                            specs,
                            processor,
                            chunk,
                            on_item=lambda result: bar.update(1, failed=int(isinstance(result, Failure))),
                        )
                    )
            except BaseException:
                for spec in specs:
                    discard_worker(spec)
                raise
            for spec in specs:
                flush_worker(spec)
        else:
            from distributed import as_completed

            with dask_client(runtime.scheduler, runtime.workers, runtime.threads_per_worker) as client:
                futures = [
                    client.submit(run_shared_chunk, specs, processor, chunk, pure=False)
                    for chunk in _chunks(clips, runtime.chunk_items)
                ]
                try:
                    for future in as_completed(futures):
                        report = future.result()
                        absorb(report)
                        bar.update(
                            sum(r.computed + len(r.failures) for r in report.members),
                            failed=sum(len(r.failures) for r in report.members),
                        )
                finally:
                    for spec in specs:
                        client.run(flush_worker, spec)
    finally:
        bar.close()
