"""DVC stage `train`: the same as `seds train` (see pipeline/train/loop.py)."""

import sys

from pipeline.cli import command_main
from pipeline.commands import train as command

if __name__ == "__main__":
    raise SystemExit(command_main(command, ["train", *sys.argv[1:]]))
