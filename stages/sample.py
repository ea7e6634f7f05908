"""DVC stage `sample`: render the built-in synthetic dataset (the same as `seds sample`)."""

import sys

from pipeline.cli import command_main
from pipeline.commands import sample as command

if __name__ == "__main__":
    raise SystemExit(command_main(command, ["sample", *sys.argv[1:]]))
