"""ruff's checks (pyflakes' errors, import order, lines of at most 120 characters) and its formatting hold
for the whole project, so CI fails on either ([tool.ruff] in pyproject.toml). Fix locally with
`ruff check --fix . && ruff format .`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests_support import ROOT

RUFF = Path(sys.executable).parent / "ruff"


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=ROOT, capture_output=True, text=True)


def test_ruff_check_finds_nothing():
    result = ruff("check", "--no-cache", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_leaves_every_file_as_it_is():
    result = ruff("format", "--no-cache", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_catches_what_it_is_configured_for(tmp_path):
    """The project's config is the one read, and it selects the three rule sets: a file breaking each is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nimport os\n\nx = '" + "a" * 130 + "'\n")
    result = ruff(
        "check", "--no-cache", "--output-format", "concise", "--config", str(ROOT / "pyproject.toml"), str(bad)
    )
    assert result.returncode == 1
    assert {"F401", "I001", "E501"} <= {word for line in result.stdout.splitlines() for word in line.split()}
