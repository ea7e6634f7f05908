"""What every command shares: params options, error reporting and exit codes."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Callable

import yaml

from pipeline.errors import UserError

# Exit codes (README.md, "One stage on a GPU batch queue"): 0 success; 1 items failed beyond --max-failures; 2 the run
# could not start (bad params, bad manifest, missing upstream view); 3 coverage check failed (items unaccounted for);
# 128 + N stopped by signal N (130 SIGINT, 143 SIGTERM), what was finished kept.
EXIT_OK, EXIT_FAILURES, EXIT_CANNOT_START, EXIT_COVERAGE = 0, 1, 2, 3
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the run unwinds as from Ctrl-C, so what is finished is published (the
    runner publishes the items of the open shard, the trainer keeps its last checkpoint) and the rest
    is left to the rerun. A batch queue's SIGTERM at the time limit and a user's Ctrl-C end alike."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def add_params_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one param for this run (YAML value), e.g. --set runtime.workers=4",
    )


def parse_overrides(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE")
        out[key.strip()] = yaml.safe_load(value)
    return out


def params_of(args: argparse.Namespace):
    """The command's params: --params with its --set overrides and --device."""
    from pipeline.config import load_params

    overrides = parse_overrides(args.overrides)
    if getattr(args, "device", None):
        overrides["runtime.device"] = args.device
    return load_params(args.params, overrides)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="override runtime.device (auto, cpu, cuda, cuda:N)")


def guarded(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the errors a user can fix (pipeline.errors.UserError: a param, a file or row, a checkpoint, the
    store's state; a missing file) into one clear line and exit code 2, with no traceback; SIGINT and
    SIGTERM into one line and exit 128 + N (Interrupted)."""

    def wrapper(args: argparse.Namespace) -> int:
        try:
            with stopped_by_signals():
                return fn(args)
        except (UserError, FileNotFoundError) as err:
            print(f"seds: error: {err}", file=sys.stderr)
            return EXIT_CANNOT_START
        except Interrupted as stop:
            print(
                f"seds: stopped by {signal.Signals(stop.signum).name}: what was finished is kept (published "
                "items, the last checkpoint); run the same command again to do only the rest",
                file=sys.stderr,
            )
            return 128 + stop.signum

    return wrapper


class stopped_by_signals:
    """SIGINT and SIGTERM raise Interrupted in the main thread while the block runs (elsewhere, in a
    thread, the handlers cannot be set and the defaults stay)."""

    def __enter__(self) -> None:
        self.previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self.previous[signum] = signal.signal(signum, self._raise)

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
