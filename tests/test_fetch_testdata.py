"""The real test data on a fresh clone: scripts/fetch_testdata.sh downloads it (here from a local mirror
laid out by source, since there is no network) and verifies every file; without it the tests that need
it skip, naming the folder, and fail instead when SEDS_REQUIRE_TESTDATA=1 (what CI sets)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests_support import ROOT, fresh_clone

SCRIPT = ROOT / "scripts" / "fetch_testdata.sh"


def sources() -> list[dict[str, str]]:
    rows = []
    for line in (ROOT / "scripts" / "testdata.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            path, sha256, source, location, lines, _licence = line.split("\t")
            rows.append({"path": path, "sha256": sha256, "source": source, "location": location, "lines": lines})
    return rows


def fetch(dest: Path, mirror: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SEDS_TESTDATA_BASE_URL=mirror.as_uri())
    return subprocess.run(["bash", str(SCRIPT), str(dest)], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def mirror(tmp_path, testdata) -> Path:
    """The public sources as the script asks for them, filled from the shared copy. The How2Sign row is an
    excerpt: its source holds more rows than the 25 kept."""
    root = tmp_path / "mirror"
    for row in sources():
        target = root / row["source"] / row["location"]
        target.parent.mkdir(parents=True, exist_ok=True)
        data = (testdata / row["path"]).read_bytes()
        if row["lines"] != "-":
            data += b"more\trows\tof\tthe\tfull\tfile\r\n" * 3
        target.write_bytes(data)
    return root


def test_fetch_downloads_every_file_verifies_it_and_writes_sha256sums(tmp_path, mirror, testdata):
    dest = tmp_path / "shared" / "testdata"
    run = fetch(dest, mirror)
    assert run.returncode == 0, run.stderr
    assert f"{len(sources())} files verified -> {dest}" in run.stdout
    for row in sources():
        assert (dest / row["path"]).read_bytes() == (testdata / row["path"]).read_bytes(), row["path"]
    assert (dest / "SHA256SUMS").read_bytes() == (testdata / "SHA256SUMS").read_bytes()
    again = fetch(dest, mirror)  # an existing folder is verified, not fetched again
    assert again.returncode == 0 and "already here; every file matches" in again.stdout


def test_fetch_refuses_a_file_whose_checksum_differs_and_installs_nothing(tmp_path, mirror):
    row = next(r for r in sources() if r["path"] == "videos/mmpose__demo.mp4")
    tampered = mirror / row["source"] / row["location"]
    data = bytearray(tampered.read_bytes())
    data[1000] ^= 0xFF
    tampered.write_bytes(bytes(data))
    dest = tmp_path / "shared" / "testdata"
    run = fetch(dest, mirror)
    assert run.returncode == 1
    assert f"videos/mmpose__demo.mp4 from {mirror.as_uri()}/github/{row['location']} has SHA-256" in run.stderr
    assert f"expected {row['sha256']}" in run.stderr
    assert list((tmp_path / "shared").iterdir()) == []  # no folder, no temporary


def test_fetch_names_a_file_it_cannot_download(tmp_path, mirror):
    (mirror / "gdrive").rename(tmp_path / "elsewhere")
    run = fetch(tmp_path / "testdata", mirror)
    assert run.returncode == 1
    assert "could not download annotations/how2sign_NC/how2sign_realigned_val.first25rows.csv" in run.stderr
    assert not (tmp_path / "testdata").exists()


def test_a_fresh_clone_without_the_shared_data_skips_those_tests_and_ci_fails_them(tmp_path):
    clone = fresh_clone(tmp_path / "alone" / "project")  # ../shared/testdata does not exist beside it
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-ra",
        "-p",
        "no:cacheprovider",
        "tests/manifest/test_importers.py",
    ]
    env = dict(os.environ, PYTHONPATH=str(clone))
    env.pop("SEDS_REQUIRE_TESTDATA", None)
    run = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    folder = tmp_path / "alone" / "shared" / "testdata"
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all(
        f"needs the shared test data at {folder}: get it with scripts/fetch_testdata.sh" in line for line in skipped
    ), run.stdout
    assert " passed" in run.stdout  # the tests that do not need it ran
    ci = subprocess.run(
        command, cwd=clone, env={**env, "SEDS_REQUIRE_TESTDATA": "1"}, capture_output=True, text=True, timeout=300
    )
    assert ci.returncode == 1
    assert "SEDS_REQUIRE_TESTDATA=1" in ci.stdout and "skipped" not in ci.stdout
