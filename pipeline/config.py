"""Typed, validated params: every knob of params.yaml is checked before any work starts.

Each section of params.yaml is a dataclass; a field's metadata may carry `min`, `max`, `choices` and
`help`. Unknown keys (typos such as `pose.bach_size`), wrong types and out-of-range values raise
`ParamError` naming the dotted key and what is allowed. Sections are registered in `SECTIONS` by
import path, so `import pipeline.config` stays light and stage modules own their params.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from pipeline.errors import UserError


class ParamError(UserError, ValueError):
    """A param is missing, unknown, of the wrong type or out of range. The message names the key."""


def knob(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    min: float | None = None,
    max: float | None = None,
    choices: tuple | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with validation metadata (and the text `seds params --help` prints)."""
    meta = {"help": help, "min": min, "max": max, "choices": choices}
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(key, value, option)
            except ParamError as err:
                errors.append(str(err))
        raise ParamError(f"{key}: {value!r} is not any of {' | '.join(_type_name(a) for a in args)}")
    if origin is Literal:
        if value not in args:
            raise ParamError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ParamError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        return [_coerce(f"{key}[{i}]", v, inner) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(f"{key}: expected a string, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_section(tp, value, key)
    raise ParamError(f"{key}: unsupported param type {tp}")


def _check_range(key: str, value: Any, meta: Mapping[str, Any]) -> None:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if meta.get("choices") is not None and v not in meta["choices"]:
            raise ParamError(f"{key}: {v!r} is not one of {list(meta['choices'])}")
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if meta.get("min") is not None and v < meta["min"]:
                raise ParamError(f"{key}: {v!r} is below the minimum {meta['min']}")
            if meta.get("max") is not None and v > meta["max"]:
                raise ParamError(f"{key}: {v!r} is above the maximum {meta['max']}")


def build_section(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass `cls` from a mapping, naming `prefix.key` in every error."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ParamError(f"{prefix}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        hints_text = []
        for name in unknown:
            close = difflib.get_close_matches(str(name), list(fields), n=1)
            hints_text.append(f"{prefix}.{name}" + (f" (did you mean {prefix}.{close[0]}?)" if close else ""))
        raise ParamError(f"unknown param {', '.join(hints_text)}; {prefix} takes: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}"
        if name in data:
            value = _coerce(key, data[name], hints[name])
            _check_range(key, value, f.metadata)
            kwargs[name] = value
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamError(f"{key} is required ({f.metadata.get('help', '')})")
    instance = cls(**kwargs)
    check = getattr(instance, "validate", None)
    if check is not None:
        check(prefix)
    return instance


def as_dict(section: Any) -> dict[str, Any]:
    return dataclasses.asdict(section)


# ---------------------------------------------------------------------------------------------
# Sections owned by the foundation. Stage sections live beside their stages (see SECTIONS).


@dataclass(frozen=True)
class RuntimeParams:
    """How a run executes. None of these enter a fingerprint: they never change what is written."""

    store: str = knob("cache", help="store root (the content-addressed cache)")
    shared_store: str | None = knob(
        None, help="read-only store of a lab-mate or NFS path, consulted by key before computing"
    )
    manifests: str = knob(
        "manifests",
        help="folder of manifest.parquet and each item stage's view <stage>.parquet "
        "(Parquet manifests, one row per clip, pointing into the store) that DVC tracks",
    )
    scheduler: str = knob(
        "local",
        help="'synchronous' (one process), 'local' (dask LocalCluster) or a dask scheduler address tcp://host:port",
    )
    workers: int = knob(1, min=1, help="dask worker processes for a local cluster")
    threads_per_worker: int = knob(1, min=1, help="torch/OpenCV threads in each worker")
    chunk_items: int = knob(32, min=1, help="items per task sent to a worker")
    shard_items: int = knob(256, min=1, help="items per HDF5 shard before it is published")
    shard_seconds: float = knob(
        300.0, min=1.0, help="publish an open shard after this many seconds (bounds what a kill loses)"
    )
    max_failures: int | float = knob(
        0,
        min=-1,
        help="failed items tolerated before the exit code is non-zero: a count "
        "(-1: any number) or a fraction of the run's items between 0 and 1 "
        "(0.05: 5%); a run in which every item failed exits non-zero whatever "
        "this says",
    )
    progress_every_s: float = knob(
        30.0,
        min=0.1,
        help="where no progress bar is shown (under DVC, in a batch log), a progress line every this many seconds",
    )
    decode_timeout_s: float = knob(
        120.0, min=1.0, help="seconds a decode may take before it is a recorded decode_timeout failure"
    )
    device: str = knob("auto", help="'auto', 'cpu', 'cuda' or 'cuda:N'")
    decoder: str = knob(
        "auto",
        choices=("auto", "cpu", "nvdec"),
        help="video decoding for pose and rgb: 'cpu' (decord/PyAV in a child process, the "
        "reference), 'nvdec' (GPU, PyNvVideoCodec: frames stay on the GPU; the mmpose pose "
        "backend still decodes on the CPU; its items get a fingerprint of their own) or "
        "'auto' (cpu, until NVDEC's pixels are measured against the CPU decoder's on a GPU)",
    )
    compression: str = knob(
        "lzf",
        choices=("lzf", "gzip", "none"),
        help="HDF5 compression of shards, applied to an array where it halves the shard's first "
        "item (frame indices, windows, masks do; float features and keypoints rarely do and "
        "stay raw, which keeps random reads fast)",
    )

    def failures_allowed(self, items: int) -> int | None:
        """How many of `items` may fail before the exit code says so (None: any number)."""
        if isinstance(self.max_failures, float):
            return int(self.max_failures * items)
        return None if self.max_failures < 0 else self.max_failures

    def validate(self, prefix: str) -> None:
        if isinstance(self.max_failures, float) and not 0.0 < self.max_failures < 1.0:
            raise ParamError(
                f"{prefix}.max_failures: {self.max_failures!r} is neither a whole number of items nor a "
                "fraction between 0 and 1 (e.g. 0.05 for 5%)"
            )
        if not (self.scheduler in ("synchronous", "local") or "://" in self.scheduler):
            raise ParamError(
                f"{prefix}.scheduler: {self.scheduler!r} is not 'synchronous', 'local' or an address like tcp://host:8786"
            )
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise ParamError(f"{prefix}.device: {self.device!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'")


@dataclass(frozen=True)
class GraphParams:
    """Which optional stages dvc.yaml holds: each is a `foreach` over one of these lists, and an empty list
    makes no stage, so under a real dataset's profile `dvc status` and `dvc repro` never speak of them."""

    sample: list[str] = knob(
        default_factory=list,
        help="['synthetic']: the built-in sample stage (sample@synthetic), "
        "which renders data/sample; [] where the data is a real dataset",
    )
    gt_keypoints: list[str] = knob(
        default_factory=list,
        help="['sample']: the gt_keypoints stage (gt_keypoints@sample), "
        "the sample's ground-truth keypoints for select.source: "
        "gt_keypoints; [] where select reads pose",
    )

    def validate(self, prefix: str) -> None:
        for name, value in (("sample", self.sample), ("gt_keypoints", self.gt_keypoints)):
            if len(value) > 1:
                raise ParamError(
                    f"{prefix}.{name}: {value!r} would make {len(value)} copies of the stage; give one "
                    "name or an empty list"
                )


SECTIONS: dict[str, str] = {
    "runtime": "pipeline.config:RuntimeParams",
    "graph": "pipeline.config:GraphParams",
    "data": "pipeline.manifest.params:DataParams",
    "sample": "pipeline.sample.generate:SampleParams",
    "probe": "pipeline.probe.stage:ProbeParams",
    "pose": "pipeline.pose.params:PoseParams",
    "select": "pipeline.keypoints.params:SelectParams",
    "rgb": "pipeline.rgb.params:RgbParams",
    "train": "pipeline.train.params:TrainParams",
    "evaluate": "pipeline.train.params:EvaluateParams",
}


def section_class(name: str) -> type:
    try:
        target = SECTIONS[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(SECTIONS), n=1)
        raise ParamError(
            f"unknown params section {name!r}"
            + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; sections: {', '.join(SECTIONS)}"
        ) from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


@dataclass
class Params:
    """All of params.yaml, validated. `sections` holds each built section by name."""

    path: Path
    raw: dict[str, Any]
    sections: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        if name not in self.sections:
            self.sections[name] = build_section(section_class(name), {}, name)
        return self.sections[name]

    @property
    def runtime(self) -> RuntimeParams:
        return self["runtime"]


def load_params(path: str | Path = "params.yaml", overrides: Mapping[str, Any] | None = None) -> Params:
    """Read and validate every section of a params file (plus dotted `overrides`, e.g. from the CLI)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ParamError(f"params file {path} does not exist (run from the project root or pass --params)") from None
    except yaml.YAMLError as err:
        raise ParamError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ParamError(f"{path}: expected a mapping of sections at the top level")
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ParamError(f"override {dotted!r} must be section.key")
        raw.setdefault(section, {})
        if raw[section] is None:
            raw[section] = {}
        raw[section][key] = value
    sections = {name: build_section(section_class(name), data, name) for name, data in raw.items()}
    return Params(path, raw, sections)
