"""Each DVC stage's code dependencies are the import closure of its entry point, written by this tool.

dvc.yaml runs `python -m stages.<name>`. Every project module that process can import (stages/ and
pipeline/, imports inside functions included: pipeline/devtools/imports.py) can change what the stage
writes, so those files are its code deps, and no others: one missing lets an edit (frame thinning,
feature mixing) leave a stage's output stale; one too many reruns a stage for nothing. Hand-written
lists did both. A folder stands for its files where every Python file under it is in the closure.

    python -m pipeline.devtools.dvcdeps            # rewrite the code deps of dvc.yaml from the import graph
    python -m pipeline.devtools.dvcdeps --check    # list what is missing or extra (tests/test_dvc_deps.py)

Only the lines of a stage's `deps:` that name stages/ or pipeline/ are rewritten; data, views and
comments stay where they are. The entry point imports its stage classes (stages/probe.py imports
ProbeStage), so an item stage's own code is in its closure, with the runner that drives it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from pipeline.devtools.imports import PROJECT_PACKAGES, ROOT, import_closure

DVC_YAML = ROOT / "dvc.yaml"
_ENTRY = re.compile(r"python -m (stages\.\w+)")


def _is_code(dep: str) -> bool:
    return dep.split("/")[0] in PROJECT_PACKAGES


def _python_files(path: Path, root: Path) -> set[str]:
    files = [path] if path.is_file() else sorted(path.rglob("*.py"))
    return {f.relative_to(root).as_posix() for f in files if f.suffix == ".py" and "__pycache__" not in f.parts}


def closure_files(entry: str, root: Path = ROOT) -> set[str]:
    """Project-relative paths of every module `python -m <entry>` can import."""
    return {path.relative_to(root).as_posix() for path in import_closure(entry, root).values()}


def as_deps(files: set[str], root: Path = ROOT) -> list[str]:
    """`files` as dvc.yaml deps: a folder where all its Python files are among them, else each file."""
    deps: list[str] = []
    covered: set[str] = set()
    folders = sorted(
        {Path(f).parent.as_posix() for f in files} | {p for f in files for p in _ancestors(f)},
        key=lambda folder: (folder.count("/"), folder),
    )
    for folder in folders:
        if any(folder == d or folder.startswith(d + "/") for d in deps):
            continue
        inside = _python_files(root / folder, root)
        if inside and inside <= files:
            deps.append(folder)
            covered |= inside
    deps += sorted(files - covered)
    return sorted(deps)


def _ancestors(file: str) -> list[str]:
    parts = Path(file).parent.parts
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _stages(text: str) -> dict[str, dict]:
    """Stage name -> its definition (a foreach stage's `do`)."""
    return {name: spec.get("do", spec) for name, spec in yaml.safe_load(text)["stages"].items()}


def expected(text: str, root: Path = ROOT) -> dict[str, list[str]]:
    """Stage name -> the code deps its entry point's import closure gives."""
    out = {}
    for name, spec in _stages(text).items():
        found = _ENTRY.search(spec["cmd"])
        if found is None:
            raise SystemExit(f"dvc.yaml stage {name}: cmd {spec['cmd']!r} is not `python -m stages.<name>`")
        out[name] = as_deps(closure_files(found.group(1), root), root)
    return out


def check(text: str, root: Path = ROOT) -> dict[str, dict[str, list[str]]]:
    """Stage name -> {'missing': modules its closure holds that no dep covers, 'extra': modules the deps
    cover that its closure does not hold} (stages that agree left out)."""
    problems = {}
    for name, spec in _stages(text).items():
        found = _ENTRY.search(spec["cmd"])
        want = closure_files(found.group(1), root) if found else set()
        have: set[str] = set()
        for dep in spec.get("deps", []):
            if _is_code(dep):
                have |= _python_files(root / dep, root)
        missing, extra = sorted(want - have), sorted(have - want)
        if missing or extra:
            problems[name] = {"missing": missing, "extra": extra}
    return problems


def rewrite(text: str, root: Path = ROOT) -> str:
    """dvc.yaml with each stage's code deps replaced by its closure's (other lines untouched)."""
    want = expected(text, root)
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    stage, in_deps, indent = None, False, ""
    for line in lines:
        header = re.match(r"^  (\w+):\s*$", line)
        if header:
            stage, in_deps = header.group(1), False
        deps = re.match(r"^(\s+)deps:\s*$", line)
        if deps and stage in want:
            in_deps, indent = True, deps.group(1) + "  "
            out.append(line)
            out.extend(f"{indent}- {dep}\n" for dep in want[stage])
            continue
        if in_deps:
            item = re.match(rf"^{indent}- (\S+)", line)
            if item:
                if not _is_code(item.group(1)):
                    out.append(line)
                continue
            in_deps = False
        out.append(line)
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list missing and extra modules; exit 1 if any")
    parser.add_argument("--dvc-yaml", type=Path, default=DVC_YAML)
    args = parser.parse_args(argv)
    text = args.dvc_yaml.read_text()
    if args.check:
        problems = check(text)
        for name, found in problems.items():
            for kind in ("missing", "extra"):
                if found[kind]:
                    print(f"{name}: {kind}: {', '.join(found[kind])}")
        return 1 if problems else 0
    new = rewrite(text)
    args.dvc_yaml.write_text(new)
    print(f"wrote {args.dvc_yaml}" + (" (no change)" if new == text else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
