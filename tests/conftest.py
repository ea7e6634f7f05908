"""Shared fixtures: the real test files of ../shared/testdata and a tiny project built from the sample.

`tiny_project` is a throwaway project folder (params.yaml, data/, manifests/, cache/) holding a 12-clip
sample rendered at 160x120, with its manifest and probe view done, so stage tests start from there.
It is built once per test session and copied for each test that changes it (`project`).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from tests_support import TESTDATA, TINY_PARAMS, shared_file, write_params

STAND_INS = Path(__file__).resolve().parent / "stand_ins"  # stand-ins for libraries this machine cannot run


@pytest.fixture(scope="session")
def testdata() -> Path:
    """The real test files, ../shared/testdata beside the project root. Where they are missing (a fresh
    clone) the tests that need them skip with one line saying where and how to get them, so the rest of
    the suite still runs; CI sets SEDS_REQUIRE_TESTDATA=1 and such a test fails instead."""
    shared_file(TESTDATA / "SHA256SUMS", "the shared test data", TESTDATA, "get it with scripts/fetch_testdata.sh")
    return TESTDATA


@pytest.fixture
def chdir():
    """Run a block inside a folder (stages resolve params-relative paths from the working directory)."""
    old = os.getcwd()

    def go(path: Path) -> Path:
        os.chdir(path)
        return path

    yield go
    os.chdir(old)


@pytest.fixture(scope="session")
def tiny_project_template(tmp_path_factory) -> Path:
    from pipeline.cli import main

    project = tmp_path_factory.mktemp("tiny_project")
    write_params(project, TINY_PARAMS)
    old = os.getcwd()
    os.chdir(project)
    try:
        assert main(["sample"]) == 0
        assert main(["manifest"]) == 0
        assert main(["run", "probe", "--no-progress"]) == 0
    finally:
        os.chdir(old)
    return project


@pytest.fixture
def project(tiny_project_template, tmp_path, chdir) -> Path:
    """A private copy of the tiny project (sample + manifest + probe done), as the working directory."""
    dest = tmp_path / "project"
    shutil.copytree(tiny_project_template, dest, symlinks=True)
    return chdir(dest)


@pytest.fixture
def nvdec_stand_in(monkeypatch):
    """NVDEC on this machine's CPU: the stand-in PyNvVideoCodec (tests/stand_ins) imported first, and
    SEDS_NVDEC_ON_CPU=1, so runtime.decoder auto or nvdec resolves to NVDEC on device cpu and the real
    NvdecReader and the stages' NVDEC path run over it (set runtime.device: cpu where a GPU may be seen).
    Yields the fresh module: set its FAIL, read its OPENED and CALLS."""
    import importlib

    from pipeline.video import nvdec

    monkeypatch.syspath_prepend(str(STAND_INS))
    monkeypatch.setenv(nvdec.NVDEC_ON_CPU, "1")
    monkeypatch.setattr(nvdec, "_said", set())  # each test sees its own once-per-reason log lines
    sys.modules.pop("PyNvVideoCodec", None)
    module = importlib.import_module("PyNvVideoCodec")
    assert Path(module.__file__).parent.parent == STAND_INS, module.__file__
    yield module
    sys.modules.pop("PyNvVideoCodec", None)
