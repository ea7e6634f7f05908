#!/usr/bin/env bash
# Wheels the GPU benchmarks need beyond what a bare GPU box has (Python 3.12, CUDA torch, numpy,
# h5py, pyarrow, opencv, tqdm): the same versions as this project's .venv, for CPython 3.12 on
# x86-64 Linux, into .whl/ (git-ignored), so `run` can carry them (benchmarks/gpu.sh installs them
# offline). Needs the package index, not the GPU box.
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
versions=$($py -m pip freeze | grep -iE '^(transformers|huggingface.hub|tokenizers|safetensors|regex|pyyaml|packaging|typer|filelock|fsspec|hf.xet|click|rich|shellingham|typing.extensions|httpx|anyio|certifi|h11|httpcore|idna|markdown.it.py|pygments|mdurl|blake3)==')
mkdir -p .whl
$py -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .whl $versions
du -sh .whl
