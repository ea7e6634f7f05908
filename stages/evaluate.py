"""DVC stage `evaluate`: the same as `seds evaluate` (see pipeline/train/evaluate.py)."""

import sys

from pipeline.cli import command_main
from pipeline.commands import evaluate as command

if __name__ == "__main__":
    raise SystemExit(command_main(command, ["evaluate", *sys.argv[1:]]))
