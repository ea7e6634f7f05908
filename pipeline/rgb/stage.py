"""The rgb stage: I3D features of every clip, one 1024-d vector per window, windows as SEDS/CiCo take them.

Per clip: plan the windows (pipeline.rgb.windows), decode each needed frame once with the short side
resized to `rgb.resize` (pipeline.rgb.loader, decoding ahead of the model), centre-crop and
normalise for the feature set's family (pipeline.rgb.frames), and run the windows through I3D in
batches that span clips (pipeline.rgb.extractor). When runtime.decoder resolves to nvdec, a clip NVDEC
takes is decoded on the GPU at full size instead and resized, cropped and normalised there
(pipeline.rgb.gpu_frames): its frames never visit the host; the clips it declines or fails on go the
CPU way (pipeline.video.nvdec.nvdec_frame_sets), recorded in the item's provenance.
Output per clip (the agreed contract):
  features (n, 1024) float16, windows (n, window) int64 clip frame indices of each window's frames;
  attrs num_windows, total_windows, padded, family, frame_step.
A clip that cannot be decoded becomes a Failure with the decoder's reason; a missing or wrong
checkpoint stops the run before any item (it is a configuration error, not bad input).
"""

from __future__ import annotations

import weakref
from typing import Any, Iterator, Mapping

import numpy as np

from pipeline.config import Params
from pipeline.rgb.params import SET_PREFIX, RgbParams, with_feature_set
from pipeline.rgb.windows import WindowPlan
from pipeline.runner.stage import ItemRequest, Stage, WorkerContext
from pipeline.store.records import Failure, Item, ItemFailed
from pipeline.video.nvdec import NVDEC_DECODED, OnCpu, nvdec_frame_sets, open_nvdec

_FLOAT16_MAX = float(np.finfo(np.float16).max)  # features are stored as float16


class RgbStage(Stage):
    name = "rgb"
    VERSION = 1
    upstream = "probe"
    view_attrs = ("num_windows", "total_windows", "padded", "family")
    uses_gpu = True
    follows_decoder = True

    @property
    def rgb(self) -> RgbParams:
        return self.params["rgb"]

    @classmethod
    def used_feature_sets(cls, params: Params) -> list[str]:
        """The feature sets something reads, as `--used-feature-sets` computes them: each `set:NAME` of
        train.rgb_views, then rgb.feature_set (its view is what the `rgb` entry reads; last, so the view a
        run writes is its). One name per fingerprint: two names with one fingerprint (both `random`, or
        one checkpoint file under two names) are one computation, rgb.feature_set standing for it."""
        current = params["rgb"].feature_set
        read = [entry[len(SET_PREFIX) :] for entry in params["train"].rgb_views if entry.startswith(SET_PREFIX)]
        ordered = [name for name in dict.fromkeys(read) if name != current] + [current]
        by_fingerprint: dict[str, str] = {}
        for name in ordered:
            digest = cls(with_feature_set(params, name)).fingerprint(None).digest
            if name == current or digest not in by_fingerprint:
                by_fingerprint[digest] = name
        kept = set(by_fingerprint.values())
        return [name for name in ordered if name in kept]

    def _checkpoint(self):
        from pipeline.models.checkpoints import resolve_checkpoint

        p = self.rgb
        return resolve_checkpoint(p.current.checkpoint, f"rgb.feature_sets.{p.feature_set}.checkpoint")

    def fingerprint_inputs(self) -> tuple[dict[str, Any], dict[str, str]]:
        from pipeline.models.precision import planned_precision

        p = self.rgb
        params = {
            **p.sampling(),
            "family": p.current.family,
            "size": p.size,
            "resize": p.resize,
            "crop": "centre",
            "pooling": "mean_mixed_5c",
            "precision": planned_precision(self.params.runtime.device, p.precision),
        }
        return params, {"checkpoint": self._checkpoint().content_hash}

    def describe_weights(self) -> str:
        p = self.rgb
        return f"I3D '{p.feature_set}' {self._checkpoint().describe()}, family {p.current.family}"

    def open(self, ctx: WorkerContext) -> None:
        import torch

        from pipeline.models.i3d import load_i3d
        from pipeline.models.memory_budget import rgb_batch
        from pipeline.models.precision import resolve_precision
        from pipeline.rgb.extractor import WindowExtractor

        p = self.rgb
        loaded = load_i3d(self._checkpoint())
        self.layout = loaded.layout
        device = torch.device(ctx.device)
        self.precision = resolve_precision(ctx.device, p.precision)
        batch = rgb_batch(p.batch_size, p.window, p.size, ctx.device, ctx.workers)
        self.extractor = WindowExtractor(loaded.model.fold_batch_norm(), device, batch, self.precision, p.compile)
        self.decoder = None  # started on first use and kept across chunks: a child start costs ~1 s
        self.reader = open_nvdec(self.params.runtime.decoder, ctx.device)  # None: every clip on the CPU
        self._plans: dict[str, tuple[ItemRequest, WindowPlan, Mapping[str, str]]] = {}  # clips in the extractor, by key

    def process(self, requests: list[ItemRequest], ctx: WorkerContext) -> Iterator[Item | Failure]:
        jobs = []
        for request in requests:
            plan = self.plan(request)
            if isinstance(plan, Failure):
                yield plan
                continue
            indices = self.first_frame(request) + plan.frames
            decoded = nvdec_frame_sets(self.reader, request, [indices])
            if isinstance(decoded, OnCpu):
                jobs.append(((request, plan, decoded.provenance), request.video_path, indices))
            else:
                yield from self.consume(request, plan, decoded[0], NVDEC_DECODED)
        for (request, plan, decoded_by), frames in self._decoders().run(jobs) if jobs else ():
            yield from self.consume(request, plan, frames, decoded_by)
        yield from self.drain()

    def plan(self, request: ItemRequest) -> WindowPlan | Failure:
        """The clip's windows and the frames they need (a Failure when the probe found no frames)."""
        from pipeline.rgb.windows import plan_windows

        p = self.rgb
        frames = int(request.row.get("num_frames") or 0)
        if frames <= 0:
            return Failure(
                request.sample_id,
                "no_frames",
                f"{request.row.get('video_path')}: the probe found no frames in this clip",
                request.item_key,
            )
        return plan_windows(
            frames, window=p.window, stride=p.stride, max_frames=p.max_frames, num_windows=p.kept_windows
        )

    @staticmethod
    def first_frame(request: ItemRequest) -> int:
        """Video frame number of the clip's frame 0."""
        return int(request.row.get("first_frame") or 0)

    def consume(
        self,
        request: ItemRequest,
        plan: WindowPlan,
        frames: "np.ndarray | torch.Tensor | ItemFailed",  # noqa: F821
        decoded_by: Mapping[str, str],
    ) -> Iterator[Item | Failure]:
        """Hand one clip's decoded frames (plan.frames) to I3D; yield the clips whose features are complete
        so far. `frames` is the CPU decoder's (short side already resized to rgb.resize), NVDEC's (a tensor
        of full-size frames, resized here on its device), or the clip's decode failure. `decoded_by`: the
        provenance entries saying which decoder gave them (NVDEC_DECODED, OnCpu.provenance)."""
        from pipeline.rgb.frames import to_model_input

        key = request.item_key
        if isinstance(frames, ItemFailed):
            yield Failure(request.sample_id, frames.reason, frames.message, key, dict(decoded_by))
            return
        p, on_device = self.rgb, not isinstance(frames, np.ndarray)
        try:
            if on_device:
                from pipeline.rgb.gpu_frames import to_model_input_on_device

                clip = to_model_input_on_device(frames, p.resize, p.size, p.current.family).to(self.extractor.device)
            else:
                clip = to_model_input(frames, p.size, p.current.family, self.extractor.device)
        except ValueError as err:
            yield Failure(request.sample_id, "error", f"{request.video_path}: {err}", key, dict(decoded_by))
            return
        self._plans[key] = (request, plan, decoded_by)
        self.extractor.submit(key, clip, plan.positions)
        yield from self._items(self.extractor.ready())

    def drain(self) -> Iterator[Item | Failure]:
        """The clips still in I3D's batches: call once the last clip of a chunk has been consumed."""
        yield from self._items(self.extractor.finish())

    def _decoders(self):
        """The decoder children of this worker, started once and closed with the stage (or at exit)."""
        if self.decoder is None:
            from pipeline.rgb.loader import PrefetchingDecoder

            p = self.rgb
            self.decoder = PrefetchingDecoder(p.decoders, p.prefetch, p.resize, self.params.runtime.decode_timeout_s)
            weakref.finalize(self, self.decoder.close)
        return self.decoder

    def _items(self, finished) -> Iterator[Item | Failure]:
        p = self.rgb
        for key, features in finished:
            request, plan, decoded_by = self._plans.pop(key)
            if not (np.isfinite(features).all() and np.abs(features).max() <= _FLOAT16_MAX):
                yield Failure(
                    request.sample_id,
                    "non_finite_features",
                    f"I3D gave features beyond float16 range or NaN (max |x| = {np.abs(features).max():.3g})",
                    key,
                    dict(decoded_by),
                )
                continue
            stored = features.astype(np.float16)
            attrs = {
                "num_windows": int(len(plan.windows)),
                "total_windows": plan.total_windows,
                "padded": plan.padded,
                "family": p.current.family,
                "frame_step": plan.step,
            }
            provenance = {
                "content_hash": request.content_hash,
                "start_s": request.start_s,
                "end_s": request.end_s,
                "precision": self.precision,
                "checkpoint_layout": self.layout,
                **decoded_by,
            }  # nothing for clips only the CPU decoder saw: their provenance is as before
            yield Item(key, request.sample_id, {"features": stored, "windows": plan.windows}, attrs, provenance)
