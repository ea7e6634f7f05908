#!/usr/bin/env bash
# Create .venv and install the pipeline from the hashed locks only, on a fresh machine, no manual steps.
# Every package comes pinned from requirements/{uv,lock,openmmlab}.txt (written by scripts/lock.sh), every
# downloaded file is checked against its sha256 there, and nothing is resolved here: --no-deps installs
# exactly the lock, and sdists build against the venv's own locked setuptools (no build isolation,
# which would fetch unpinned build tools). Needs CPython 3.11 with pip and venv, gcc and the Python headers.
# Usage: scripts/setup.sh [VENV_DIR]      (default .venv; reruns are cheap: what is there is skipped)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv}
python=${PYTHON:-python3}
start=$(date +%s)

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
# The locks were resolved for CPython 3.11 on x86_64 Linux (scripts/lock.sh): other targets would fail
# on missing hashes halfway through, so say it first.
"$venv/bin/python" -c 'import platform, sys; sys.exit(sys.version_info[:2] != (3, 11) or platform.machine() != "x86_64")' || {
    echo "setup: requirements/lock.txt is for CPython 3.11 on x86_64 Linux, and $venv has Python" \
         "$("$venv/bin/python" -c 'import platform; print(platform.python_version(), platform.machine())')." \
         "Remove $venv and rerun with PYTHON=python3.11." >&2
    exit 1
}

# 1. uv, the installer: pip (which every venv has) installs it, itself pinned and hashed. uv installs the
#    2.3 GB below in about half of pip's time (docs/install.md has the measurements).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
    -r requirements/uv.txt 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)  # pip noise on this kind
# --compile-bytecode: write each installed package's .pyc files now, as pip does. Python would write them
# on first import, but not where PYTHONDONTWRITEBYTECODE is set (as on this machine kind): every process
# importing torch, transformers and mmdet then compiles them again (the import check below: 13 s -> 26 s).
install=("$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --no-deps --require-hashes --compile-bytecode)

# torch 2.13.0+cpu is not on PyPI: a local copy of the wheel where one lies (this machine kind: /opt/wheels),
# else PyTorch's CPU index. The sha256 in requirements/lock.txt checks either.
torch_wheels=${SEDS_TORCH_WHEELS:-https://download.pytorch.org/whl/cpu/torch/}
compgen -G '/opt/wheels/torch-*+cpu-cp311-*.whl' >/dev/null && torch_wheels=${SEDS_TORCH_WHEELS:-/opt/wheels}

# 2. setuptools from the lock before anything builds: the lock's one sdist (antlr4-python3-runtime), then
#    xtcocotools and the project itself, build with it. Its hashes come from the lock (-c).
"${install[@]}" -c requirements/lock.txt "$(grep -m1 '^setuptools==' requirements/lock.txt | cut -d' ' -f1)"
# 3. The whole environment.
"${install[@]}" --no-build-isolation --find-links "$torch_wheels" -r requirements/lock.txt
# 4. The OpenMMLab set without its declared needs (pyproject.toml's [tool.seds] no-deps says why);
#    the file says --no-binary xtcocotools: built from its sdist against numpy 2 with the lock's Cython.
"${install[@]}" --no-build-isolation -r requirements/openmmlab.txt
# 5. The project itself, editable (the `seds` command): local source, so no hash to check.
"$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --no-deps --no-build-isolation -e .

# Import check: what the stages import, and mmpose's/mmdet's registries as the mmpose backend loads them.
"$venv/bin/python" -c "import pipeline.cli, pipeline.pose.stage, pipeline.rgb.stage, pipeline.train.loop
from pipeline.pose.openmmlab import import_registries; import_registries()"
echo "setup: $venv ready in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1)"
