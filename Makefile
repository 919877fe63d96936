# fingerspell: `make install`, `make test`, then `dvc repro` (or `make pipeline`).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
MIRROR ?= $(abspath ../shared/data/sign-mnist/sign-language-mnist.zip)

.PHONY: help install test test-fast lint format typecheck pipeline params mirror bench ui clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

install:  ## create .venv with the package, its tools and the test browser driver
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'

test:  ## the whole suite, slow and end-to-end tests included (what CI runs)
	$(PY) -m pytest

test-fast:  ## the quick loop: no slow or end-to-end tests
	$(PY) -m pytest -m "not slow and not e2e"

lint:  ## ruff lint + format check, mypy on src/
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy src

format:  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

pipeline:  ## the whole DVC pipeline (same as `dvc repro`)
	dvc repro

params:  ## rewrite params.yaml from conf/ (what `dvc exp run` does before each experiment)
	$(PY) -c 'from pathlib import Path; from dvc.utils.hydra import compose_and_dump; \
	compose_and_dump("params.yaml", str(Path("conf").resolve()), None, "train", ".", [])'

mirror:  ## point the data import at a mirror: make mirror MIRROR=/path/or/url/to/sign-language-mnist.zip
	@case "$(MIRROR)" in *://*) ;; *) test -e "$(MIRROR)" || { \
	  echo "make mirror: $(MIRROR): no such file; give the path or URL of sign-language-mnist.zip" >&2; exit 1; } ;; esac
	dvc remote modify --local upstream url "$(MIRROR)"
	@echo "upstream -> $(MIRROR) (in .dvc/config.local); run 'dvc repro'"

bench:  ## benchmarks, side by side against their baselines; JSON under benchmarks/results/
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/inference.py
	$(PY) benchmarks/serve_load.py
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/train_accuracy.py
	$(PY) benchmarks/real_hands.py

ui:  ## the MLflow UI on the local store
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --port 5000

clean:  ## remove caches and run logs (not data, models or the MLflow store)
	rm -rf .pytest_cache .ruff_cache .mypy_cache logs outputs multirun
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
