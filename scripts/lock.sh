#!/usr/bin/env bash
# Regenerate the hashed locks from pyproject.toml. The one command: scripts/lock.sh  (or make lock)
#   requirements/lock.txt       every package of the environment: pyproject's dependencies and its
#                               `test` extra with all they pull in, each pinned == with its sha256 hashes
#   requirements/openmmlab.txt  [tool.seds] no-deps of pyproject.toml, pinned and hashed, no dependencies
#   requirements/uv.txt         uv itself, the installer scripts/setup.sh bootstraps with pip
# Pins already in a lock are kept (uv prefers them), so a rerun with an unchanged pyproject.toml writes
# the same files; a new requirement gets the newest versions that fit. To move pins on purpose, pass
# uv's flags through:  scripts/lock.sh --upgrade   or   scripts/lock.sh --upgrade-package dvc
# Needs PyPI (and torch's wheel: see torch_wheels below). tests/test_lock.py checks the result.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
[ -x "$uv" ] || { echo "lock: no uv at $uv: run scripts/setup.sh first (it installs uv from requirements/uv.txt), or set UV=/path/to/uv" >&2; exit 1; }

# torch 2.13.0+cpu (requirements/constraints.txt) is not on PyPI: take it from a local copy of the wheel
# where one lies (this machine kind: /opt/wheels), else from PyTorch's CPU index. Same file, same hash.
torch_wheels=${SEDS_TORCH_WHEELS:-https://download.pytorch.org/whl/cpu/torch/}
compgen -G '/opt/wheels/torch-*+cpu-cp311-*.whl' >/dev/null && torch_wheels=${SEDS_TORCH_WHEELS:-/opt/wheels}

# Lock for the target, whatever machine runs this: CPython 3.11 on x86_64 Linux (CI's and the team's).
compile=("$uv" pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
         --custom-compile-command scripts/lock.sh "$@")

"${compile[@]}" pyproject.toml --extra test --constraint requirements/constraints.txt \
    --find-links "$torch_wheels" --output-file requirements/lock.txt

# The no-deps set, read from pyproject.toml. --emit-build-options writes "--no-binary xtcocotools" into
# the file: it is built from its sdist against numpy 2 (its wheel was compiled against numpy 1).
python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["seds"]["no-deps"]))' \
    | "${compile[@]}" - --no-deps --no-binary xtcocotools --emit-build-options --output-file requirements/openmmlab.txt

echo uv | "${compile[@]}" - --output-file requirements/uv.txt
echo "lock: wrote requirements/lock.txt ($(grep -c '^[A-Za-z0-9]' requirements/lock.txt) packages), requirements/openmmlab.txt, requirements/uv.txt"
