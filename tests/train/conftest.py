"""Fixtures of the train/evaluate tests (the store they read is built by train_support.build_store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from train_support import build_store


@pytest.fixture(scope="session")
def tiny_store_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_store")
    build_store(root)
    return root


@pytest.fixture
def tiny_store(tiny_store_template, tmp_path, chdir) -> Path:
    """A private copy of the tiny store as the working directory (params.yaml written by each test)."""
    dest = tmp_path / "project"
    shutil.copytree(tiny_store_template, dest)
    return chdir(dest)
