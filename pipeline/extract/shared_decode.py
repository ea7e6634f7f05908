"""One decode per clip for the stages that read its frames: the pose stage and any rgb feature sets.

Why: decoding a 720p clip costs more host time than anything else the pose and rgb stages do on a GPU
node, and both read the same thinned frames. A clip needed by several members is decoded once: the
pose stage's units (pipeline/pose/batching.py) carry each rgb member's frames as extra sets, resized
in the decoder child to that member's short side, so pose sees its full-size frames and each rgb
member exactly the frames `RgbStage.process` would have decoded for it alone (byte for byte:
`decode.read_frame_sets`). Without pose, one request per clip decodes the union for the rgb members.
A clip only one member needs is decoded for it alone. A decode failure fails every member's item with
the same reason; a model failure (a clip I3D cannot take) fails that member's item only.

With NVDEC (runtime.decoder resolving to nvdec), the same holds on the GPU: a clip is decoded once
there, the union of every member's frames at full size (`nvdec_frame_sets`), and each member gets its
subset as a device tensor (rgb resizes on the device). The pose stage's stream does this for clips it
has a job for (pipeline/pose/batching.py `stream_on_device`); clips without pose are decoded here with
the first rgb member's reader. Clips NVDEC declines or fails on take the CPU path above, unchanged, and
every member's item of such a clip records it alike (`OnCpu.provenance`).

Each member keeps its own fingerprint, keys, store and view: this module only changes who decodes.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator, Mapping

import numpy as np

from pipeline.pose.batching import ClipJob
from pipeline.pose.stage import PoseStage
from pipeline.rgb.stage import RgbStage
from pipeline.rgb.windows import WindowPlan
from pipeline.runner.stage import ItemRequest, Stage
from pipeline.store.records import Failure, Item, ItemFailed
from pipeline.video.nvdec import NVDEC_DECODED, OnCpu, nvdec_frame_sets
from pipeline.video.service import DecodeService

Clip = dict[int, ItemRequest]  # member index -> that member's request for one clip (one row of the view)
Result = tuple[int, Item | Failure]
Planned = list[tuple[int, ItemRequest, WindowPlan]]  # one clip's rgb members: (member index, request, windows)


def check_members(members: list[Stage]) -> None:
    """Shared decoding knows the pose stage (at most one) and rgb stages; both map over probe's view."""
    kinds = [type(m) for m in members]
    if kinds.count(PoseStage) > 1 or any(k not in (PoseStage, RgbStage) for k in kinds):
        raise ValueError(f"one decode per clip serves one pose stage and rgb stages, not {[m.name for m in members]}")


def process_shared(members: list[Stage], clips: list[Clip], decodes: Counter) -> Iterator[Result]:
    """Every member's Item or Failure for every clip it is asked for, decoding each clip once. `decodes`
    counts the clips handed to a decoder by the members that shared each decode ("pose+rgb", "rgb")."""
    check_members(members)
    pose_i = next((i for i, m in enumerate(members) if isinstance(m, PoseStage)), None)
    pose_jobs: list[ClipJob] = []
    rgb_of_job: dict[int, Planned] = {}
    rgb_only: list[Planned] = []
    for clip in clips:
        job = None
        if pose_i is not None and pose_i in clip:
            job = members[pose_i].clip_job(clip[pose_i])
            if isinstance(job, Failure):
                yield pose_i, job
                job = None
        planned = []
        for i, request in clip.items():
            if i == pose_i:
                continue
            plan = members[i].plan(request)
            if isinstance(plan, Failure):
                yield i, plan
            else:
                planned.append((i, request, plan))
        if job is not None:
            job.extra_sets = [(plan.frames, members[i].rgb.resize) for i, _, plan in planned]
            rgb_of_job[id(job)] = planned
            pose_jobs.append(job)
            decodes["+".join([members[pose_i].name] + [_label(members[i]) for i, _, _ in planned])] += 1
        elif planned:
            rgb_only.append(planned)
            decodes["+".join(_label(members[i]) for i, _, _ in planned)] += 1
    if pose_jobs:
        pose = members[pose_i]
        for job in pose.stream(pose_jobs):
            yield pose_i, pose.finish(job)
            decoded_by = job.state.get("decoded_by", {})  # set by stream_on_device: NVDEC, or the CPU and why
            for k, (i, request, plan) in enumerate(rgb_of_job.pop(id(job))):
                frames = job.failure if job.failure is not None else job.extra(k)
                yield from ((i, r) for r in members[i].consume(request, plan, frames, decoded_by))
    if rgb_only:
        yield from _rgb_only(members, rgb_only)
    for i, member in enumerate(members):
        if i != pose_i:
            yield from ((i, r) for r in member.drain())


def _label(member: Stage) -> str:
    return f"rgb[{member.rgb.feature_set}]" if isinstance(member, RgbStage) else member.name


def _rgb_only(members: list[Stage], clips: list[Planned]) -> Iterator[Result]:
    """Clips without a pose job: one decode per clip of the union of its rgb members' frames, on the GPU
    when NVDEC takes the clip, else by the CPU decoder child (the next clip decoding while I3D runs)."""
    reader = members[clips[0][0][0]].reader
    on_cpu = []
    for planned in clips:
        request = planned[0][1]
        first = RgbStage.first_frame(request)
        sets = nvdec_frame_sets(reader, request, [first + plan.frames for _, _, plan in planned])
        if isinstance(sets, OnCpu):
            on_cpu.append((planned, sets.provenance))
            continue
        for (i, request, plan), frames in zip(planned, sets):
            yield from ((i, r) for r in members[i].consume(request, plan, frames, NVDEC_DECODED))
    if on_cpu:
        yield from _rgb_on_cpu(members, on_cpu)


def _rgb_on_cpu(members: list[Stage], clips: list[tuple[Planned, Mapping[str, str]]]) -> Iterator[Result]:
    """The clips' rgb frames from the CPU decoder child, each with the provenance entries of its decoder."""
    timeout = members[clips[0][0][0][0]].params.runtime.decode_timeout_s
    with DecodeService(timeout_s=timeout) as decoder:

        def submit(planned: Planned) -> int:
            request = planned[0][1]
            first = RgbStage.first_frame(request)
            return decoder.submit_frame_sets(
                request.video_path, [(first + plan.frames, members[i].rgb.resize) for i, _, plan in planned]
            )

        tickets = [submit(clips[0][0])]
        for n, (planned, decoded_by) in enumerate(clips):
            if n + 1 < len(clips):
                tickets.append(submit(clips[n + 1][0]))
            try:
                sets: list[np.ndarray | ItemFailed] = decoder.frame_sets(tickets[n])
            except ItemFailed as failed:
                sets = [failed] * len(planned)
            for (i, request, plan), frames in zip(planned, sets):
                yield from ((i, r) for r in members[i].consume(request, plan, frames, decoded_by))
