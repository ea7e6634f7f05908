"""The code each item stage's output depends on, hashed, so a change without a VERSION bump is caught.

A stage's items are reused by key, and the key holds the stage's VERSION, not its code: a change that
alters what a stage writes but forgets the bump would let the runner serve items of the old code as
if they were the new one's. `tests/stage_code.json` records, per item stage, its VERSION and a hash of
every module its output depends on; tests/test_stage_code.py compares it with the working tree and
fails on any difference, naming the modules.

The modules of a stage: its own module and, transitively, every `pipeline` module it imports (at the
top or inside a function), minus the infrastructure that moves items without computing them (the
runner, the store, params parsing, fingerprints, the commands). A module's hash is blake3 of its
source as `ast.unparse` writes it back with docstrings removed, so comments, docstrings and layout
never count; any change of code does.

When the check fails, either the output changed (bump the stage's VERSION, then record the table) or
it did not (say so explicitly):

    python -m pipeline.devtools.codehash                          # record bumped stages (refuses others)
    python -m pipeline.devtools.codehash --output-unchanged pose  # record pose's change as output-neutral
    python -m pipeline.devtools.codehash --check                  # what the test does: list differences
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.devtools.imports import ROOT, import_closure, module_file, parse

TABLE = ROOT / "tests" / "stage_code.json"
# Packages and modules that carry items without computing them: their changes never alter an item.
# The store's reader, index and records are not among them: a stage reads its input through them (select
# reads pose's items), so a change there can change what it writes.
INFRASTRUCTURE = (
    "pipeline.runner",
    "pipeline.store.writer",
    "pipeline.store.layout",
    "pipeline.store.maintenance",
    "pipeline.store.transfer",
    "pipeline.config",
    "pipeline.fingerprint",
    "pipeline.hashmemo",
    "pipeline.commands",
    "pipeline.cli",
    "pipeline.progress",
    "pipeline.devtools",
)
_HASH_CHARS = 16


@dataclass(frozen=True)
class StageCode:
    """What the table holds for one stage: its VERSION and the hash of each module (path -> hash)."""

    version: int
    modules: dict[str, str]

    def as_record(self) -> dict:
        return {"version": self.version, "modules": dict(sorted(self.modules.items()))}


def _is_infrastructure(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in INFRASTRUCTURE)


def _without_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def stage_modules(module: str, root: Path = ROOT) -> dict[str, str]:
    """Project-relative path -> code hash of `module` and every non-infrastructure pipeline module it
    imports, transitively (modules found under `root`)."""
    closure = import_closure(module, root, skip=lambda name: name == "pipeline" or _is_infrastructure(name))
    return {path.relative_to(root).as_posix(): _code_hash(parse(path)) for path in closure.values()}


def _code_hash(tree: ast.Module) -> str:
    from pipeline.fingerprint import hash_bytes

    return hash_bytes(ast.unparse(_without_docstrings(tree)).encode())[:_HASH_CHARS]


def module_hash(module: str, root: Path = ROOT) -> dict[str, str]:
    """Project-relative path -> code hash of `module` alone (not what it imports)."""
    path = module_file(module, root)
    return {path.relative_to(root).as_posix(): _code_hash(parse(path))}


# What else stores items, beside the item stages: the imports (`seds import pose | authors`), each under its
# module's VERSION constant.
IMPORTS = {"import:pose_file": "pipeline.interop.pose_import", "import:authors_pkl": "pipeline.interop.store_import"}


def current() -> dict[str, StageCode]:
    """Everything that stores items, with its VERSION and module hashes from the working tree: each item
    stage's module's import closure, plus, for pose and rgb, the shared decode's module alone (code
    outside that closure that drives their computation over one decode; its own imports are the other
    stage's business: commands/item_stages.py names the pairing); each import's module's import closure."""
    import importlib

    from pipeline.commands.item_stages import ITEM_STAGES, SHARED_DECODE_MEMBERS, SHARED_DECODE_PROCESSOR, item_stage

    table = {}
    for name, target in sorted(ITEM_STAGES.items()):
        cls = item_stage(name)
        modules = stage_modules(target.split(":")[0])
        if name in SHARED_DECODE_MEMBERS:
            modules.update(module_hash(SHARED_DECODE_PROCESSOR.split(":")[0]))
        table[name] = StageCode(cls.VERSION, modules)
    for name, module in sorted(IMPORTS.items()):
        table[name] = StageCode(importlib.import_module(module).VERSION, stage_modules(module))
    return table


def recorded(table: Path = TABLE) -> dict[str, StageCode]:
    data = json.loads(table.read_text()) if table.is_file() else {}
    return {name: StageCode(entry["version"], entry["modules"]) for name, entry in data.get("stages", {}).items()}


def differences(now: dict[str, StageCode], then: dict[str, StageCode]) -> dict[str, str]:
    """stage -> what differs between the working tree and the table, in words (empty when they agree)."""
    out = {}
    for name in sorted(set(now) | set(then)):
        a, b = now.get(name), then.get(name)
        if a is None or b is None:
            out[name] = "an item stage not in the table" if b is None else "in the table but no longer an item stage"
            continue
        changed = sorted(p for p in set(a.modules) | set(b.modules) if a.modules.get(p) != b.modules.get(p))
        if a.version != b.version:
            out[name] = f"VERSION {b.version} -> {a.version} (not recorded yet)"
        elif changed:
            out[name] = f"code changed without a VERSION bump (still {a.version}): {', '.join(changed)}"
    return out


def write(now: dict[str, StageCode], table: Path = TABLE) -> None:
    record = {
        "about": "item stages' VERSION and code hashes; written by `python -m pipeline.devtools.codehash` "
        "(see its docstring), checked by tests/test_stage_code.py",
        "stages": {name: code.as_record() for name, code in sorted(now.items())},
    }
    table.write_text(json.dumps(record, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--output-unchanged",
        nargs="+",
        default=[],
        metavar="STAGE",
        help="record these stages' code changes as not changing their output (no VERSION bump)",
    )
    parser.add_argument("--check", action="store_true", help="only list the differences (exit 1 when any)")
    parser.add_argument("--table", type=Path, default=TABLE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    now, then = current(), recorded(args.table)
    diff = differences(now, then)
    for name, text in diff.items():
        print(f"{name}: {text}")
    if args.check:
        return 1 if diff else 0
    unknown = sorted(set(args.output_unchanged) - set(now))
    if unknown:
        print(f"--output-unchanged: {', '.join(unknown)} are not item stages ({', '.join(now)})", file=sys.stderr)
        return 2
    refused = [
        name for name, text in diff.items() if text.startswith("code changed") and name not in args.output_unchanged
    ]
    if refused:
        print(
            f"not recorded: {', '.join(refused)} changed without a VERSION bump. Bump the VERSION of each stage whose "
            f"output changes; name the others with --output-unchanged",
            file=sys.stderr,
        )
        return 1
    write(now, args.table)
    print(f"wrote {args.table}" + ("" if diff else " (no change)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
