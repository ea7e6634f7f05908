"""Where a model's weights come from, and how they are read without running anyone's pickled code.

A checkpoint param is one of three things, all recorded in the stage fingerprint:
- a URL (http(s) or file://): downloaded once into the checkpoint cache
  (`~/.cache/seds/checkpoints`, or `$SEDS_CHECKPOINT_CACHE`) as `<sha256[:16]>-<name>` beside a
  `.json` note of the URL and the full sha256, and found there by URL afterwards, with no network;
- a local path;
- the word `random`: the explicit, offline choice of randomly initialised weights. Nothing falls
  back to random weights silently.

The fingerprint gets the file's blake3 content hash (as every file in this project), so renaming or
moving a checkpoint changes nothing, and a different file with the same name changes the key.

Loading: `torch.load(weights_only=True)` only, with an explicit allowlist of the numpy types that
OpenMMLab checkpoints keep in their `meta` (the dataset metadata holds numpy arrays) and training
checkpoints keep beside their weights (best scores, epoch metrics). A file that needs any other
global is refused with an error naming it; nothing is ever loaded with weights_only=False.
`.safetensors` files are read with safetensors. `load_state_dict` unwraps the usual containers
(`state_dict` or `model` entries, DataParallel's `module.` prefix); `check_state_dict` is the one
strict comparison of a state dict with the network it is meant for.

Every model file of the project goes through here (RTMPose, the RTMDet detector, I3D), with one
error class, one allowlist and one cache folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import urllib.parse
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from pipeline.config import ParamError

RANDOM = "random"
CACHE_ENV = "SEDS_CHECKPOINT_CACHE"
# OpenMMLab names files `<name>-<first 8 hex of sha256>[_<date>].pth`; torch.hub uses the same idea.
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,})(?:_\d{8})?\.(?:pth|pt|ckpt)$")
_DOWNLOAD_TIMEOUT_S = 60
_DOWNLOAD_RETRIES = 3
_LOCK_WAIT_S = 3600.0  # the longest a fetch of the largest checkpoint (a few hundred MB) may take
_READ_CHUNK = 8 << 20
_SHOWN_KEYS = 20


class CheckpointError(ParamError):
    """A checkpoint cannot be found, fetched, safely loaded, or does not fit its network. The message
    names the param or file and the fix. A ParamError, so a run stops before any item with one line."""


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint param: the file to read (None for random) and its content hash."""

    spec: str  # what the params said: URL, path or "random"
    path: Path | None
    content_hash: str  # blake3 of the bytes, or "random"
    key: str = "checkpoint"  # the dotted param it came from, for error messages

    @property
    def is_random(self) -> bool:
        return self.path is None

    def describe(self) -> str:
        if self.is_random:
            return f"random (explicit, checkpoint: {RANDOM})"
        return f"{self.path.name} (blake3 {self.content_hash[:12]})"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "seds" / "checkpoints")


def is_url(spec: str) -> bool:
    return urllib.parse.urlparse(spec).scheme in ("http", "https", "file")


def resolve_checkpoint(spec: str, key: str) -> Checkpoint:
    """Turn a checkpoint param into a local file (downloading a URL into the cache when needed).

    `key` is the dotted param name (e.g. `pose.checkpoint`); every error names it."""
    if spec == RANDOM:
        return Checkpoint(spec, None, RANDOM, key)
    path = cached_download(spec, key) if is_url(spec) else Path(spec).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"{key}: checkpoint file {path} does not exist (give a path, a URL, or "
            f"'{RANDOM}' for explicitly random weights)"
        )
    stat = path.stat()
    return Checkpoint(
        spec, path.resolve(), _content_hash(os.fspath(path.resolve()), stat.st_size, stat.st_mtime_ns), key
    )


@lru_cache(maxsize=16)
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    """blake3 of a checkpoint, once per process and file version (stages resolve their checkpoint for
    the fingerprint, the summary and the model load: a 200 MB file is read once, not three times)."""
    from pipeline.fingerprint import hash_file  # blake3, imported only for files: a bare GPU box may lack it

    return hash_file(path)


# -- the cache -------------------------------------------------------------------------------------
def _url_name(url: str) -> str:
    name = Path(urllib.parse.urlparse(url).path).name
    return name or "checkpoint"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _check_name_hash(name: str, sha256: str, source: str) -> None:
    """OpenMMLab (and torch.hub) file names carry a sha256 prefix: a mismatch is a corrupt file."""
    match = _HASH_IN_NAME.search(name)
    if match and not sha256.startswith(match.group(1)):
        raise CheckpointError(
            f"{source}: sha256 {sha256[:12]}... does not start with {match.group(1)}, the hash "
            f"its name promises: the file is corrupt or not the one named; delete it and retry"
        )


def _note_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def find_cached(url: str) -> Path | None:
    """The cached file for `url`: one recorded for it, or one a user copied in under its name."""
    root = cache_dir()
    if not root.is_dir():
        return None
    name = _url_name(url)
    for path in sorted(root.glob(f"*{name}")):
        if not (path.name == name or path.name.endswith("-" + name)) or not path.is_file():
            continue
        note = _note_path(path)
        if note.is_file():
            if json.loads(note.read_text()).get("url") == url:
                return path
            continue
        sha256 = _sha256(path)  # copied in by hand: check it once, then remember it
        _check_name_hash(name, sha256, str(path))
        note.write_text(json.dumps({"url": url, "sha256": sha256}))
        return path
    return None


def cached_download(url: str, key: str = "checkpoint", sha256: str | None = None) -> Path:
    """Download `url` into the cache unless it is there already; return the local file. `key` (the
    dotted param) starts every error; `sha256`, where the source publishes it, is checked (else the
    sha256 prefix an OpenMMLab or torch.hub file name carries).

    pooch fetches (to a temporary name, moved into place when whole; `_DOWNLOAD_RETRIES` more tries on
    a failed transfer). Array tasks that start together must not each fetch a 200 MB file, nor move
    half-written ones over each other, so one fetches while the others wait on a lock file made by
    exclusive creation (filelock's SoftFileLock: it works where POSIX locks do not, as on NFS without
    lockd, which is where home folders and their caches often are) and then find the file cached."""
    import pooch
    from filelock import SoftFileLock, Timeout

    found = find_cached(url)
    if found is not None:
        return found
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    name = _url_name(url)
    try:
        with SoftFileLock(root / f".{name}.lock", timeout=_LOCK_WAIT_S):
            found = find_cached(url)  # fetched by another task while this one waited
            if found is not None:
                return found
            fetched = root / f".download-{name}"
            if url.startswith("file://"):  # a file on a mounted share: copied, as pooch fetches only over a network
                shutil.copyfile(urllib.parse.unquote(urllib.parse.urlparse(url).path), fetched)
            else:
                fetcher = pooch.create(
                    path=root,
                    base_url="",
                    registry={fetched.name: None},
                    urls={fetched.name: url},
                    retry_if_failed=_DOWNLOAD_RETRIES,
                )
                fetcher.fetch(
                    fetched.name, downloader=pooch.HTTPDownloader(progressbar=False, timeout=_DOWNLOAD_TIMEOUT_S)
                )
            digest = _sha256(fetched)
            if sha256 is not None and digest != sha256:
                fetched.unlink()
                raise CheckpointError(
                    f"{key}: {url} has sha256 {digest[:16]}..., not the published {sha256[:16]}...: "
                    "the download is corrupt or not the file named; retry"
                )
            try:
                _check_name_hash(name, digest, f"{key}: {url}")
            except CheckpointError:
                fetched.unlink()
                raise
            final = root / f"{digest[:16]}-{name}"
            os.replace(fetched, final)
            _note_path(final).write_text(json.dumps({"url": url, "sha256": digest}))
            return final
    except Timeout:
        raise CheckpointError(
            f"{key}: another process has been fetching {url} into {root} for over "
            f"{_LOCK_WAIT_S:.0f} s; if none is, remove {root / f'.{name}.lock'} (left by a killed "
            "fetch) and retry"
        ) from None
    except (OSError, ValueError) as err:  # requests' errors are OSErrors; pooch raises ValueError on bad URLs
        raise CheckpointError(
            f"{key}: cannot download {url} ({err}). Without network: fetch it on a machine that has one and copy it "
            f"into {root}/ under its name ({name}), or set the checkpoint param to a local path, or to "
            f"'{RANDOM}' for explicitly random weights"
        ) from None


# -- safe loading ----------------------------------------------------------------------------------
def numpy_safe_globals() -> list[Any]:
    """The numpy globals checkpoints keep beside their weights, and nothing else.

    mmpose stores `dataset_meta` (keypoint colours as uint8 arrays, sigmas and weights as float32
    arrays) in `meta`; training checkpoints (BSL-1K, CiCo) keep best scores and epoch metrics as numpy
    scalars. Rebuilding an array needs `_reconstruct`, `ndarray`, `dtype` and, since numpy 2, the
    concrete dtype class of each array (UInt8DType, Float32DType, ...); `scalar` rebuilds numpy
    scalars. Checkpoints written under numpy 1.x name these `numpy.core.multiarray.*`, so that
    spelling is allowlisted for the same functions. Object arrays stay refused: their elements would
    be arbitrary pickles."""
    import numpy as np
    from numpy._core import multiarray

    dtype_classes = [
        np.dtypes.BoolDType,
        np.dtypes.Int8DType,
        np.dtypes.Int16DType,
        np.dtypes.Int32DType,
        np.dtypes.Int64DType,
        np.dtypes.UInt8DType,
        np.dtypes.UInt16DType,
        np.dtypes.UInt32DType,
        np.dtypes.UInt64DType,
        np.dtypes.Float16DType,
        np.dtypes.Float32DType,
        np.dtypes.Float64DType,
    ]
    return [
        multiarray._reconstruct,
        multiarray.scalar,
        np.ndarray,
        np.dtype,
        *dtype_classes,
        (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        (multiarray.scalar, "numpy.core.multiarray.scalar"),
    ]


def load_checkpoint(path: Path, label: str | None = None) -> dict[str, Any]:
    """The checkpoint's top-level object, read with weights_only=True plus the numpy allowlist
    (`.safetensors`: its tensors as {'state_dict': ...}). `label` starts every error; the path by default."""
    import torch

    path = Path(path)
    label = label or str(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {"state_dict": load_file(os.fspath(path), device="cpu")}
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = str(err).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0]
        raise CheckpointError(
            f"{label}: refused to load: it needs a Python global outside the allowlist ({detail}). Checkpoints "
            "are only read with torch.load(weights_only=True); re-save the weights as a plain "
            "{'state_dict': ...} (or .safetensors) from a trusted environment"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"{label}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{label}: expected a dict checkpoint, got {type(obj).__name__}")
    return obj


def load_state_dict(path: Path, label: str | None = None) -> dict[str, Any]:
    """The weights of a checkpoint: its `state_dict` (or `model`) entry, or the file itself when it is a
    flat dict of tensors; keys lose DataParallel's `module.` prefix when every key has it."""
    import torch

    obj: Any = load_checkpoint(path, label)
    label = label or str(path)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{label}: no state dict of tensors in it (top-level keys: {sorted(obj)[:10]})")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _listing(title: str, keys: list[str]) -> str:
    more = f" ... and {len(keys) - _SHOWN_KEYS} more" if len(keys) > _SHOWN_KEYS else ""
    return f"{len(keys)} {title}: {', '.join(keys[:_SHOWN_KEYS])}{more}"


def check_state_dict(
    model: Any, state: Mapping[str, Any], source: str, architecture: str, optional: tuple[str, ...] = ()
) -> None:
    """Strict loading's check, with every problem listed: raise CheckpointError naming the missing keys,
    the unexpected keys and the shape mismatches of `state` against `model`. Keys ending in one of
    `optional` may be absent (I3D: BatchNorm's `num_batches_tracked`, which old files lack and which
    do not affect evaluation)."""
    expected = model.state_dict()
    missing = sorted(k for k in set(expected) - set(state) if not k.endswith(optional))
    unexpected = sorted(set(state) - set(expected))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    )
    problems = [
        _listing(title, keys)
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if keys
    ]
    if problems:
        raise CheckpointError(f"{source} does not fit {architecture}: " + "; ".join(problems))
