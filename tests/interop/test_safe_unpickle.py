"""The restricted unpickler: numpy arrays of plain dtypes and plain data in, everything else refused by name,
before anything runs."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from pipeline.safe_unpickle import UnsafePickle, safe_load, safe_loads


class _CreatesFile:
    """A pickle payload that, unpickled by plain pickle, would create a file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsShell:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_arrays_lists_dicts_strings_numbers_round_trip(protocol):
    value = {
        "feature": np.arange(12, dtype=np.float32).reshape(3, 4),
        "img_list": ["images0001.png", "b"],
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "n": 3,
        "x": 0.5,
        "scalar": np.float32(1.25),
        "flags": np.array([True, False]),
        "nested": [(1, "a"), {"k": None}],
    }
    back = safe_loads(pickle.dumps(value, protocol=protocol))
    assert back["feature"].dtype == np.float32 and np.array_equal(back["feature"], value["feature"])
    assert np.array_equal(back["fortran"], value["fortran"]) and back["fortran"].dtype == np.int64
    assert back["img_list"] == value["img_list"] and back["scalar"] == np.float32(1.25)
    assert back["nested"] == [(1, "a"), {"k": None}] and back["n"] == 3


def test_malicious_reduce_is_refused_without_running(tmp_path):
    target = tmp_path / "created_by_pickle"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"feature": np.zeros((2, 1024), np.float32), "x": _CreatesFile(str(target))}))
    with pytest.raises(UnsafePickle, match=r"evil\.pkl: refused global (builtins|io)\.open"):
        safe_load(path)
    assert not target.exists()
    # the same payload through plain pickle does create it: the test's payload is real
    pickle.loads(path.read_bytes())["x"].close()
    assert target.exists()


def test_os_system_is_refused_by_name():
    with pytest.raises(UnsafePickle, match=r"refused global (posix|os|nt)\.system"):
        safe_loads(pickle.dumps(_RunsShell()), "shell.pkl")


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize(
    "value, message",
    [
        (np.array([1, "a"], dtype=object), "dtype\\('O'\\)"),
        (np.zeros(2, dtype=[("a", "f4")]), "kind 'V'"),
        ({1, 2}, "set"),
        (b"raw", "bytes"),
    ],
)
def test_object_arrays_and_other_types_are_refused(protocol, value, message):
    with pytest.raises(UnsafePickle, match=message):
        safe_loads(pickle.dumps({"x": value}, protocol=protocol), "f.pkl")


def test_truncated_pickle_names_the_file(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"feature": np.ones((4, 1024), np.float32)})[:100])
    with pytest.raises(UnsafePickle, match=r"cut\.pkl: not a readable pickle"):
        safe_load(path)
