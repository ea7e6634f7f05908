"""DVC stage `sample`: render the built-in synthetic dataset (the same as `seds sample`)."""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["sample", *sys.argv[1:]]))
