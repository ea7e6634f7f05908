# The two things a new user runs (README.md):
#   make repro   set up .venv (first time: ~4 min, 2.3 GB) and run the whole pipeline on the sample
#   make test    set up .venv and run the test suite (what CI runs)
VENV ?= .venv
PYTHON := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: setup repro test test-faults bench

setup: $(VENV)/.installed

$(VENV)/.installed: scripts/setup.sh requirements/lock.txt requirements/openmmlab.txt pyproject.toml
	scripts/setup.sh $(VENV)
	touch $@

repro: setup
	dvc repro

test: setup
	$(PYTHON) -m pytest -q

test-faults: setup
	$(PYTHON) -m pytest -q -m faults

bench: setup
	$(PYTHON) benchmarks/run.py
