"""What every command shares: params options, error reporting and exit codes."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

import yaml

# Exit codes (README.md, "One stage on a GPU batch queue"): 0 success; 1 items failed beyond --max-failures; 2 the run could not
# start (bad params, bad manifest, missing upstream view); 3 coverage check failed (items unaccounted for).
EXIT_OK, EXIT_FAILURES, EXIT_CANNOT_START, EXIT_COVERAGE = 0, 1, 2, 3


def add_params_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one param for this run (YAML value), e.g. --set runtime.workers=4")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="override runtime.device (auto, cpu, cuda, cuda:N)")


def guarded(fn: Callable[[argparse.Namespace], int],
            more: Callable[[], tuple[type[BaseException], ...]] = tuple) -> Callable[[argparse.Namespace], int]:
    """Turn the errors a user can fix into one clear line and exit code 2 (no traceback). `more` names a
    command's own such errors; it is called only when the command runs, so heavy modules (torch) are
    imported by the commands that need them, not by `seds --help`."""
    def wrapper(args: argparse.Namespace) -> int:
        from pipeline.config import ParamError
        from pipeline.manifest.schema import ManifestError
        from pipeline.store.layout import StoreError

        try:
            return fn(args)
        except (ParamError, ManifestError, StoreError, FileNotFoundError, *more()) as err:
            print(f"seds: error: {err}", file=sys.stderr)
            return EXIT_CANNOT_START
    return wrapper
