"""pyproject.toml and the hashed locks agree (scripts/lock.sh writes them; scripts/setup.sh installs only them).

What `disagreements` checks, walking the dependency graph from pyproject.toml's requirements through the
installed distributions' metadata, markers evaluated for this Python:
- every requirement of pyproject (its dependencies and its `test` extra) is pinned in requirements/lock.txt
  at a version its specifier admits, and so is every package those pull in, at a version each requirer
  admits: the lock is complete;
- nothing in the lock is unreachable from those requirements: the lock holds nothing stale;
- every locked package is pinned with == and carries at least one sha256 hash.
The OpenMMLab set (pyproject's [tool.seds] no-deps) is installed with --no-deps: it is pinned and hashed in
requirements/openmmlab.txt, exactly that set, and none of it is in requirements/lock.txt. Its declared
dependencies are not walked: each is either locked at a version it admits (its real needs, listed in
pyproject's dependencies, which are walked) or named in [tool.seds] left-out (torchvision, chumpy, timm:
not installed). The `nvdec` extra is not locked (scripts/setup.sh does not install it).
The second half shows each failure mode on a small hand-made pyproject/lock pair. No network; well under a
second.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCK = "requirements/lock.txt"
NO_DEPS_LOCK = "requirements/openmmlab.txt"
INSTALLER_LOCK = "requirements/uv.txt"
FIX = "regenerate the locks (scripts/lock.sh) and reinstall (make setup)"


@dataclass(frozen=True)
class Pin:
    version: Version
    hashes: tuple[str, ...]


def parse_lock(text: str, where: str) -> tuple[dict[str, Pin], list[str]]:
    """A requirements file as uv writes it -> {canonical name: Pin}, and its problems (lines that pin nothing
    exactly). Option lines (--no-binary ...) and comments are skipped."""
    pins, problems = {}, []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith(("#", "--")):
            continue
        spec, *options = line.split()
        try:
            requirement = Requirement(spec)
        except InvalidRequirement:
            problems.append(f"{where}: {spec!r} is not a requirement")
            continue
        exact = [s.version for s in requirement.specifier if s.operator == "==" and "*" not in s.version]
        if len(requirement.specifier) != 1 or not exact:
            problems.append(f"{where}: {spec!r} is not pinned with ==")
        pins[canonicalize_name(requirement.name)] = Pin(
            Version(exact[0]) if exact else None, tuple(o for o in options if o.startswith("--hash=sha256:"))
        )
    return pins, problems


def disagreements(
    project: dict, lock_text: str, no_deps_text: str, requires: Callable[[str], list[str] | None]
) -> list[str]:
    """Every way pyproject.toml (`project`, parsed) and the two locks disagree, as messages. `requires(name)`
    gives a locked package's own requirement strings (its metadata), or None where it is not installed."""
    lock, problems = parse_lock(lock_text, LOCK)
    no_deps_lock, more = parse_lock(no_deps_text, NO_DEPS_LOCK)
    problems += more
    for where, pins in ((LOCK, lock), (NO_DEPS_LOCK, no_deps_lock)):
        problems += [f"{where}: {name} has no --hash" for name, pin in pins.items() if not pin.hashes]

    def admits(requirement: Requirement, pin: Pin) -> bool:
        return pin.version is not None and requirement.specifier.contains(pin.version, prereleases=True)

    # The OpenMMLab set: exactly pyproject's list, in its own file, not in the main lock. Its declared
    # needs are not walked: each must be locked at an admitted version or named in [tool.seds] left-out.
    seds = project.get("tool", {}).get("seds", {})
    no_deps = [Requirement(r) for r in seds.get("no-deps", [])]
    left_out = {canonicalize_name(n) for n in seds.get("left-out", [])}
    for requirement in no_deps:
        name = canonicalize_name(requirement.name)
        if name not in no_deps_lock:
            problems.append(
                f"pyproject.toml's [tool.seds] no-deps has {requirement}, which {NO_DEPS_LOCK} does not pin"
            )
        elif not admits(requirement, no_deps_lock[name]):
            problems.append(
                f"pyproject.toml's [tool.seds] no-deps has {requirement}, "
                f"{NO_DEPS_LOCK} pins {name}=={no_deps_lock[name].version}"
            )
        if name in lock:
            problems.append(f"{LOCK} pins {name}, which pyproject.toml installs with --no-deps ({NO_DEPS_LOCK})")
        declared = requires(name)
        if declared is None:
            problems.append(f"{name} is pinned in {NO_DEPS_LOCK} but not installed here: make setup")
        for dependency in map(Requirement, declared or []):
            needed = canonicalize_name(dependency.name)
            if needed in left_out or (dependency.marker is not None and not dependency.marker.evaluate({"extra": ""})):
                continue
            pin = lock.get(needed) or no_deps_lock.get(needed)
            if pin is None:
                problems.append(
                    f"{name} requires {dependency}, which {LOCK} does not pin (nor does [tool.seds] "
                    f"left-out of pyproject.toml name it)"
                )
            elif not admits(dependency, pin):
                problems.append(f"{name} requires {dependency}, the locks pin {needed}=={pin.version}")
    for name in sorted(set(no_deps_lock) - {canonicalize_name(r.name) for r in no_deps}):
        problems.append(f"{NO_DEPS_LOCK} pins {name}, which is not in pyproject.toml's [tool.seds] no-deps")
    for name in sorted(left_out & (set(lock) | set(no_deps_lock))):
        problems.append(f"the locks pin {name}, which pyproject.toml's [tool.seds] left-out says is not installed")

    # Walk from pyproject's requirements: (package, extra) pairs, "" for a package's own requirements.
    top = project["project"]["dependencies"] + project["project"].get("optional-dependencies", {}).get("test", [])
    edges = [("pyproject.toml", r) for r in map(Requirement, top) if r.marker is None or r.marker.evaluate()]
    seen: set[tuple[str, str]] = set()
    reached: set[str] = set()
    while edges:
        requirer, requirement = edges.pop()
        name = canonicalize_name(requirement.name)
        reached.add(name)
        if name not in lock:
            problems.append(f"{requirer} requires {requirement}, which {LOCK} does not pin")
            continue
        if not admits(requirement, lock[name]):
            problems.append(f"{requirer} requires {requirement}, {LOCK} pins {name}=={lock[name].version}")
        for extra in ["", *sorted(canonicalize_name(e) for e in requirement.extras)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            own = requires(name)
            if own is None:
                problems.append(f"{name} is pinned in {LOCK} but not installed here: make setup")
                break
            for dependency in map(Requirement, own):
                if extra and "extra" not in str(dependency.marker):
                    continue  # a requirement of the package itself: walked with extra ""
                if dependency.marker is None or dependency.marker.evaluate({"extra": extra}):  # this Python?
                    dependency.marker = None
                    edges.append((f"{name}[{extra}]" if extra else name, dependency))
    for name in sorted(set(lock) - reached):
        problems.append(f"{LOCK} pins {name}, which nothing in pyproject.toml needs (for this Python)")
    return problems


def installed_requires(name: str) -> list[str] | None:
    try:
        return importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return None


def read(path: str) -> str:
    return (ROOT / path).read_text()


# --- the project's own files -------------------------------------------------------------------------


def test_pyproject_and_the_locks_agree():
    project = tomllib.loads(read("pyproject.toml"))
    problems = disagreements(project, read(LOCK), read(NO_DEPS_LOCK), installed_requires)
    assert not problems, f"pyproject.toml and the locks disagree ({FIX}):\n" + "\n".join(problems)


def test_this_environment_is_the_lock():
    """The walk above reads the installed metadata, so it is only right where the venv holds the locked
    versions (make setup reinstalls when a lock changes). uv, the installer, is left out: a tool of
    scripts/setup.sh, not part of what the pipeline runs on."""
    wrong = []
    for path in (LOCK, NO_DEPS_LOCK):
        pins, _ = parse_lock(read(path), path)
        for name, pin in pins.items():
            try:
                installed = Version(importlib.metadata.version(name))
            except importlib.metadata.PackageNotFoundError:
                installed = None
            if installed != pin.version:
                wrong.append(f"{path} pins {name}=={pin.version}, this environment has {installed}")
    assert not wrong, f"{len(wrong)} installed versions differ from the locks (make setup):\n" + "\n".join(wrong)


def test_the_installer_is_pinned_and_hashed_and_xtcocotools_builds_from_its_sdist():
    pins, problems = parse_lock(read(INSTALLER_LOCK), INSTALLER_LOCK)
    assert not problems and list(pins) == ["uv"] and pins["uv"].hashes, read(INSTALLER_LOCK)
    assert "--no-binary xtcocotools" in read(NO_DEPS_LOCK).splitlines(), (
        f"{NO_DEPS_LOCK} lost '--no-binary xtcocotools' (its wheel breaks on numpy 2): {FIX}"
    )
    torch = parse_lock(read(LOCK), LOCK)[0]["torch"]
    assert torch.version.local == "cpu", f"{LOCK} pins torch=={torch.version}, not the CPU build: {FIX}"


# --- each failure mode on a hand-made pair ---------------------------------------------------------

HASH = "--hash=sha256:" + "ab" * 32
PROJECT = {
    "project": {
        "dependencies": ["dask[distributed]>=2024.1", "torch>=2.4", "tomli>=2; python_version < '3.11'"],
        "optional-dependencies": {"test": ["pytest>=8"], "nvdec": ["pynvvideocodec>=2.0"]},
    },
    "tool": {"seds": {"no-deps": ["mmpose==1.3.2"], "left-out": ["chumpy", "torchvision"]}},
}
METADATA = {  # each package's own requirements, as importlib.metadata.requires gives them
    "dask": ["toolz>=0.10", "distributed==2026.8.0; extra == 'distributed'", "pandas>=2; extra == 'dataframe'"],
    "distributed": ["toolz>=0.11", "tblib>=1.6"],
    "toolz": [],
    "tblib": [],
    "torch": ["filelock", "nvidia-cublas-cu12==12.8; platform_system == 'Windows'"],
    "filelock": [],
    "pytest": ["iniconfig>=1", "colorama>=0.4; sys_platform == 'win32'"],
    "iniconfig": [],
    "mmpose": ["chumpy", "torchvision", "numpy; python_version < '3'", "pytest; extra == 'tests'", "toolz>=0.12"],
}
PINS = {
    "dask": "2026.8.0",
    "distributed": "2026.8.0",
    "toolz": "1.2.0",
    "tblib": "3.2.2",
    "torch": "2.13.0+cpu",
    "filelock": "4.3.2",
    "pytest": "9.2.0",
    "iniconfig": "2.3.1",
}


def lock_text(pins: dict[str, str], hashless: tuple[str, ...] = ()) -> str:
    """A lock in uv's layout: header, continuation lines, annotations."""
    lines = ["# This file was autogenerated by uv via the following command:", "#    scripts/lock.sh"]
    for name, version in pins.items():
        lines += [f"{name}=={version}" + ("" if name in hashless else f" \\\n    {HASH}"), "    # via -r x"]
    return "\n".join(lines) + "\n"


NO_DEPS = "--no-binary xtcocotools\n\n" + lock_text({"mmpose": "1.3.2"})


def check(project=PROJECT, pins=PINS, no_deps=NO_DEPS, metadata=METADATA, hashless=()):
    return disagreements(project, lock_text(pins, hashless), no_deps, metadata.get)


def test_a_matching_pair_has_no_disagreement():
    """Markers are evaluated: tomli (Python < 3.11), colorama (Windows), dask's dataframe extra (not asked
    for) are needed by nothing here; the distributed extra of dask is."""
    assert check() == []


def test_a_requirement_of_pyproject_that_the_lock_does_not_pin():
    project = {
        **PROJECT,
        "project": {**PROJECT["project"], "dependencies": [*PROJECT["project"]["dependencies"], "blake3>=0.4"]},
    }
    assert check(project=project) == [f"pyproject.toml requires blake3>=0.4, which {LOCK} does not pin"]


def test_a_pin_that_pyprojects_specifier_does_not_admit():
    assert check(pins={**PINS, "pytest": "7.4.4"}) == [f"pyproject.toml requires pytest>=8, {LOCK} pins pytest==7.4.4"]


def test_a_dependency_the_lock_misses_and_one_whose_pin_its_requirer_rejects():
    missing = {k: v for k, v in PINS.items() if k != "tblib"}
    assert check(pins=missing) == [f"distributed requires tblib>=1.6, which {LOCK} does not pin"]
    assert check(pins={**PINS, "distributed": "2026.7.0"}) == [
        f"dask[distributed] requires distributed==2026.8.0, {LOCK} pins distributed==2026.7.0"
    ]


def test_a_locked_package_that_nothing_needs():
    assert check(pins={**PINS, "tomli": "2.0.1", "colorama": "0.4.6"}) == [
        f"{LOCK} pins colorama, which nothing in pyproject.toml needs (for this Python)",
        f"{LOCK} pins tomli, which nothing in pyproject.toml needs (for this Python)",
    ]


def test_a_locked_package_without_a_hash_or_without_an_exact_pin():
    assert check(hashless=("toolz",)) == [f"{LOCK}: toolz has no --hash"]
    unpinned = lock_text(PINS) + f"numpy>=2 \\\n    {HASH}\n"
    assert disagreements(PROJECT, unpinned, NO_DEPS, METADATA.get) == [
        f"{LOCK}: 'numpy>=2' is not pinned with ==",
        f"{LOCK} pins numpy, which nothing in pyproject.toml needs (for this Python)",
    ]


def test_the_no_deps_set_in_its_own_file_exactly_and_never_walked():
    """mmpose's declared chumpy and torchvision are left out (not locked, not installed); its other needs
    must be locked at versions it admits, but are not walked from it."""
    assert check(no_deps="") == [
        f"pyproject.toml's [tool.seds] no-deps has mmpose==1.3.2, which {NO_DEPS_LOCK} does not pin"
    ]
    assert check(no_deps=lock_text({"mmpose": "1.3.1"})) == [
        f"pyproject.toml's [tool.seds] no-deps has mmpose==1.3.2, {NO_DEPS_LOCK} pins mmpose==1.3.1"
    ]
    assert check(no_deps=NO_DEPS + lock_text({"mmdet": "3.3.0"})) == [
        f"{NO_DEPS_LOCK} pins mmdet, which is not in pyproject.toml's [tool.seds] no-deps"
    ]
    assert check(no_deps=lock_text({"mmpose": "1.3.2"}, hashless=("mmpose",))) == [
        f"{NO_DEPS_LOCK}: mmpose has no --hash"
    ]
    assert check(pins={**PINS, "mmpose": "1.3.2"}) == [
        f"{LOCK} pins mmpose, which pyproject.toml installs with --no-deps ({NO_DEPS_LOCK})",
        f"{LOCK} pins mmpose, which nothing in pyproject.toml needs (for this Python)",
    ]


def test_what_the_no_deps_set_declares_is_locked_or_named_as_left_out():
    """Its real needs must be in the lock, so a new release of mmpose that needs more cannot slip in."""
    needs_more = {**METADATA, "mmpose": [*METADATA["mmpose"], "munkres>=1.1"]}
    assert check(metadata=needs_more) == [
        f"mmpose requires munkres>=1.1, which {LOCK} does not pin "
        "(nor does [tool.seds] left-out of pyproject.toml name it)"
    ]
    assert check(pins={**PINS, "toolz": "0.11.2"}) == ["mmpose requires toolz>=0.12, the locks pin toolz==0.11.2"]
    seds = {"no-deps": ["mmpose==1.3.2"], "left-out": ["chumpy"]}
    assert check(project={**PROJECT, "tool": {"seds": seds}}) == [
        f"mmpose requires torchvision, which {LOCK} does not pin "
        "(nor does [tool.seds] left-out of pyproject.toml name it)"
    ]
    assert check(
        pins={**PINS, "torchvision": "0.29.1"},
        metadata={**METADATA, "torch": ["filelock", "torchvision"], "torchvision": []},
    ) == ["the locks pin torchvision, which pyproject.toml's [tool.seds] left-out says is not installed"]


def test_a_locked_package_that_is_not_installed_is_named():
    metadata = {k: v for k, v in METADATA.items() if k not in ("iniconfig", "mmpose")}
    assert check(metadata=metadata) == [
        f"mmpose is pinned in {NO_DEPS_LOCK} but not installed here: make setup",
        f"iniconfig is pinned in {LOCK} but not installed here: make setup",
    ]


@pytest.mark.parametrize("spec", ["torch>=2.4", "torch==2.13.0", "torch>=2.13,<2.14"])
def test_a_local_version_such_as_the_cpu_build_satisfies_a_plain_specifier(spec):
    project = {**PROJECT, "project": {**PROJECT["project"], "dependencies": ["dask[distributed]>=2024.1", spec]}}
    assert check(project=project) == []
