# Two commands (see README): `make repro` and `make test`. Both are idempotent and say what they do.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export NUMBA_CACHE_DIR := $(CURDIR)/.numba_cache
export PYTHONHASHSEED := 0
# DVC stages call `python -m curator...`: make that the virtualenv's python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

# extra pip arguments, e.g. PIP_EXTRA="--extra-index-url https://download.pytorch.org/whl/cpu" for torch's CPU build
PIP_EXTRA ?=

.PHONY: help setup repro compare check-lock test test-fast lint bench check

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@echo ">>> creating $(VENV) and installing pinned requirements (torch CPU/CUDA pin in the same call)"
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); } || \
		{ rm -rf $(VENV); echo "error: '$(PYTHON) -m venv' failed; on Debian/Ubuntu: apt install python3-venv"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(PIP_EXTRA) -r requirements.txt -c constraints.txt -e .
	@touch $(STAMP)

setup: $(STAMP) ## create the virtualenv (skipped when up to date)
	@echo ">>> environment ready: $(VENV)"
	@git rev-parse --git-dir >/dev/null 2>&1 || (echo ">>> initialising git (DVC needs a repository)" && git init -q)
	@git config user.email >/dev/null || git config user.email "curator@localhost"
	@git config user.name >/dev/null || git config user.name "urgent-curator"

check: setup ## validate params.yaml (every section) before any work
	$(BIN)/curator check

repro: check ## run the whole DVC pipeline (prepare -> manifest -> score -> select -> train -> eval)
	@echo ">>> dvc repro (stages already up to date are skipped)"
	$(BIN)/dvc repro
	@$(BIN)/curator summary

compare: check ## the curation-efficacy matrix only (selectors x budgets x seeds) and its paired report
	$(BIN)/dvc repro cmp_report
	@cat metrics/compare.md

check-lock: check ## rerun the data stages, the matrix's selection cells and one training cell with its evaluation, compare their hashes with the committed dvc.lock (CI does this)
	$(BIN)/dvc repro select source_simulate cmp_select cmp_eval@random-0.25-0
	$(BIN)/python benchmarks/check_lock.py

test: setup ## run the test suite (end-to-end DVC test included)
	@echo ">>> pytest"
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --timeout 1800 --durations=15

test-fast: setup ## unit tests only (skips the end-to-end DVC runs)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not slow"

lint: setup ## ruff over src, tests and benchmarks
	$(BIN)/ruff check src tests benchmarks

bench: setup ## speed and memory benchmarks with their defaults, after `make repro` (JSON on stdout)
	@for b in benchmarks/bench_*.py; do \
		if [ "$$b" = benchmarks/bench_simulation_fidelity.py ]; then \
			echo ">>> $$b skipped: it needs --official-checkout (see its --help)"; continue; fi; \
		echo ">>> $$b"; $(BIN)/python $$b || exit 1; done
