"""The one way this project reads a pickle it did not write: nothing in it is ever executed.

Pickle runs code by design: a `GLOBAL` opcode names any importable callable and `REDUCE` calls it.
`RestrictedUnpickler` closes the one door every global goes through (`find_class`: GLOBAL,
STACK_GLOBAL, INST and the copyreg extension codes alike) to all but what its caller admits, by name,
before anything is called, and refuses persistent ids unless the caller reads them. Its users:
- plain data (`safe_load`, here): the SEDS release's split files and the authors' features; admitted
  are only the numpy constructors an array of a plain dtype needs, each wrapped so it refuses object
  dtypes (an object array unpickles arbitrary objects inside it); what comes out is walked once more
  and must be dicts, lists, tuples, strings, numbers, None and plain numpy arrays or scalars;
- OpenAI's TorchScript CLIP archive (pipeline/models/torchscript_weights.py): modules as attribute
  bags and tensors from the archive's storages;
- a train checkpoint's plain values, read without torch (pipeline/report/checkpoint_info.py).
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy._core import multiarray as _multiarray
from numpy._core import numeric as _numeric

from pipeline.errors import UserError

# Array dtype kinds admitted: bool, signed/unsigned integers, floats, complex, fixed-width text/bytes.
PLAIN_KINDS = frozenset("biufcUS")


class UnsafePickle(UserError, ValueError):
    """A pickle that asks for something other than plain data and numpy arrays of plain dtypes."""


def _plain_dtype(spec: Any, *args: Any) -> np.dtype:
    dtype = np.dtype(spec, *args)
    if dtype.hasobject or dtype.kind not in PLAIN_KINDS:
        raise UnsafePickle(
            f"numpy dtype {dtype!r} (kind {dtype.kind!r}) is not a plain dtype; only "
            f"{''.join(sorted(PLAIN_KINDS))} kinds are admitted"
        )
    return dtype


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickle(f"array subtype {subtype!r} is not numpy.ndarray")
    return _multiarray._reconstruct(np.ndarray, shape, _plain_dtype(dtype))


def _scalar(dtype: Any, *args: Any) -> Any:
    return _multiarray.scalar(_plain_dtype(dtype), *args)


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    return _numeric._frombuffer(buffer, _plain_dtype(dtype), shape, order)


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocols 0-2 carry an array's raw bytes as latin-1 text turned back into bytes by this call.
    if not isinstance(text, str) or encoding != "latin1":
        raise UnsafePickle(f"_codecs.encode is admitted only as pickle's latin1 bytes transport, got {encoding!r}")
    return text.encode("latin1")


# module.name -> what the unpickler gets instead (numpy 1.x wrote numpy.core, numpy 2 writes numpy._core).
ADMITTED: dict[str, Callable[..., Any] | type] = {
    "numpy.ndarray": np.ndarray,  # only ever passed to _reconstruct, which checks it
    "numpy.dtype": _plain_dtype,
    "numpy.core.multiarray._reconstruct": _reconstruct,
    "numpy._core.multiarray._reconstruct": _reconstruct,
    "numpy.core.multiarray.scalar": _scalar,
    "numpy._core.multiarray.scalar": _scalar,
    "numpy.core.numeric._frombuffer": _frombuffer,
    "numpy._core.numeric._frombuffer": _frombuffer,
    "_codecs.encode": _codecs_encode,
}


Lookup = Callable[[str, str], Any]  # (module, name) -> what the unpickler gets instead, or None: refused


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that hands out only what `lookup` admits for a global; anything else raises `refuse`
    (an exception class) naming the global and `admits` (what this reader takes, in words). Persistent
    ids are refused unless `persistent` reads them."""

    def __init__(
        self,
        data: bytes,
        lookup: Lookup,
        refuse: type[Exception],
        admits: str,
        persistent: Callable[[Any], Any] | None = None,
    ):
        super().__init__(io.BytesIO(data))
        self._lookup, self._refuse, self._admits, self._persistent = lookup, refuse, admits, persistent

    def find_class(self, module: str, name: str) -> Any:
        admitted = self._lookup(module, name)
        if admitted is None:
            raise self._refuse(f"refused global {module}.{name}: {self._admits}")
        return admitted

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise self._refuse(f"refused persistent id {pid!r}")
        return self._persistent(pid)


def _check_plain(value: Any, path: str) -> None:
    """Raise UnsafePickle naming the first value (by its path in the data) that is not plain data."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.hasobject or value.dtype.kind not in PLAIN_KINDS:
            raise UnsafePickle(f"{path}: numpy value of dtype {value.dtype} is not plain data")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise UnsafePickle(f"{path}: dict key {key!r} is not a string or integer")
            _check_plain(item, f"{path}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{path}[{i}]")
        return
    raise UnsafePickle(f"{path}: a {type(value).__name__} is not admitted (arrays, lists, dicts, strings, numbers)")


def safe_loads(data: bytes, where: str = "<bytes>") -> Any:
    """Unpickle `data` admitting only plain data; UnsafePickle (naming `where`) for anything else."""
    try:
        value = RestrictedUnpickler(
            data,
            lambda module, name: ADMITTED.get(f"{module}.{name}"),
            UnsafePickle,
            "only numpy arrays of plain dtypes, lists, dicts, strings and numbers are admitted",
        ).load()
    except UnsafePickle as err:
        raise UnsafePickle(f"{where}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise UnsafePickle(f"{where}: not a readable pickle ({type(err).__name__}: {err})") from None
    try:
        _check_plain(value, "pickle")
    except UnsafePickle as err:
        raise UnsafePickle(f"{where}: {err}") from None
    return value


def safe_load(path: Path | str) -> Any:
    """Unpickle a file admitting only plain data (see safe_loads)."""
    path = Path(path)
    return safe_loads(path.read_bytes(), str(path))
