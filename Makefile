# Two entry points that set everything up on a fresh machine: `make run` and `make test`.
# `make run` ends serving the API on PORT (8000) until interrupted.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Main job settings (override on the command line: make run PROFILE=ballistic TRACKS=500).
PROFILE ?= challenge
TRACKS ?= 100
SEED ?= 42
DATA_DIR ?= data
MODEL_DIR ?= models
PORT ?= 8000
TRAIN_ARGS ?=

.PHONY: run test lint format bench clean install system-deps

install: $(STAMP)

# Re-install when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[train,dev]"
	touch $@

run: $(STAMP)
	@if [ -f $(DATA_DIR)/train.csv ] && [ -f $(DATA_DIR)/test.csv ]; then \
		echo "Using existing data in $(DATA_DIR)/ (delete it to simulate again)"; \
	else \
		$(VENV)/bin/missile-classifier simulate --profile $(PROFILE) --tracks $(TRACKS) \
			--seed $(SEED) --output-dir $(DATA_DIR); \
	fi
	@if [ -e $(MODEL_DIR)/latest/metadata.json ]; then \
		echo "Using the model in $(MODEL_DIR)/latest (delete it to train again)"; \
	else \
		$(VENV)/bin/missile-classifier train --train_data $(DATA_DIR)/train.csv \
			--test_data $(DATA_DIR)/test.csv --output $(MODEL_DIR) --seed $(SEED) $(TRAIN_ARGS); \
	fi
	@echo "Model ready in $(MODEL_DIR)/latest (report: $(MODEL_DIR)/latest/report.md)."
	MODEL_PATH=$(MODEL_DIR) PORT=$(PORT) exec $(VENV)/bin/missile-classifier serve

# The tests run real redis-server and promtool (Debian packages redis-server and prometheus).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends $$missing || { echo "Please install:$$missing"; exit 1; }; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

# lint-imports checks the import contracts in pyproject.toml (who may import what).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts
	$(VENV)/bin/ruff format src tests benchmarks scripts

bench: $(STAMP)
	$(PY) benchmarks/simulate_speed.py
	$(PY) benchmarks/train_targets.py --profile challenge
	$(PY) benchmarks/predict_speed.py --model /tmp/train-targets/models

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
