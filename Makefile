# The two things a new user runs (README.md):
#   make repro   set up .venv (first time: ~2 min, 2.3 GB) and run the whole pipeline on the sample
#   make test    set up .venv and run the test suite (what CI runs)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup lock repro test test-faults bench

setup: $(VENV)/.installed

# Reinstalls when a lock changes: setup installs only from the hashed locks.
$(VENV)/.installed: scripts/setup.sh requirements/lock.txt requirements/openmmlab.txt requirements/uv.txt pyproject.toml
	scripts/setup.sh $(VENV)
	touch $@

# Rewrite the locks from pyproject.toml (needs PyPI and uv from setup); tests/test_lock.py checks them.
lock: setup
	UV=$(VENV)/bin/uv scripts/lock.sh

repro: setup
	dvc repro

# One pytest worker per core (pytest-xdist), each test handed out as a worker frees up.
test: setup
	$(PYTHON) -m pytest -q -n auto --dist worksteal

test-faults: setup
	$(PYTHON) -m pytest -q -m faults

bench: setup
	$(PYTHON) benchmarks/run.py
