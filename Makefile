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

# Static checks of the deployment files run with their own tools, kept out of the project's venv.
DEPLOY_VENV ?= .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed
OVERLAYS := minikube production

.PHONY: run test lint format bench bench-service clean install system-deps deploy-check render mutation docs docs-check

install: $(STAMP)

# Re-install when the project's dependencies change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[train,dev,spark]"
	touch $@

run: $(STAMP)
	@if [ -f $(DATA_DIR)/train.csv ] && [ -f $(DATA_DIR)/test.csv ]; then \
		echo "Using existing data in $(DATA_DIR)/ (delete it to simulate again)"; \
	else \
		$(VENV)/bin/missile-classifier simulate --profile $(PROFILE) --tracks $(TRACKS) \
			--seed $(SEED) --output-dir $(DATA_DIR); \
	fi
	@if [ -e $(MODEL_DIR)/latest/metadata.json ] && \
		$(VENV)/bin/missile-classifier models check --models $(MODEL_DIR) >/dev/null; then \
		echo "Using the model in $(MODEL_DIR)/latest (delete it to train again)"; \
	else \
		$(VENV)/bin/missile-classifier train --train_data $(DATA_DIR)/train.csv \
			--test_data $(DATA_DIR)/test.csv --output $(MODEL_DIR) --seed $(SEED) $(TRAIN_ARGS); \
	fi
	@echo "Model ready in $(MODEL_DIR)/latest (report: $(MODEL_DIR)/latest/report.md)."
	MODEL_PATH=$(MODEL_DIR) PORT=$(PORT) exec $(VENV)/bin/missile-classifier serve

# The tests run real redis-server and promtool (Debian packages redis-server and prometheus), Spark
# on Java (default-jre-headless when no java is found), and kubectl's kustomize. Debian's
# kubernetes-client is kubectl 1.20, whose kustomize v2 cannot build the overlays, so kubectl is
# not installed here: a missing one is reported.
system-deps:
	@command -v kubectl >/dev/null || { \
		echo "kubectl 1.27 or newer (kustomize v5) is needed for the deployment tests and checks"; \
		exit 1; }
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
		echo "Installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			--no-install-recommends $$missing || { echo "Please install:$$missing"; exit 1; }; \
	fi

test: $(STAMP) system-deps
	$(PY) -m pytest --cov --cov-report=term-missing:skip-covered $(PYTEST_ARGS)

# lint-imports checks the import contracts in pyproject.toml (who may import what).
lint: $(STAMP) deploy-check
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

$(DEPLOY_STAMP): deploy/requirements-tools.txt
	test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	touch $@

# The image, the Kubernetes manifests and the alert rules, checked without a Docker engine or a
# cluster: hadolint and checkov on the Dockerfile; each overlay rendered by kustomize, equal to
# its committed single file, valid against the Kubernetes schemas and clean under checkov;
# the alert rules checked and unit-tested by promtool.
deploy-check: $(DEPLOY_STAMP) system-deps
	$(DEPLOY_VENV)/bin/hadolint Dockerfile
	$(DEPLOY_VENV)/bin/checkov -f Dockerfile --compact --quiet --skip-download
	DEPLOY_TOOLS=$(DEPLOY_VENV)/bin deploy/kubernetes/check.sh
	promtool check rules deploy/monitoring/alerts.rules.yaml
	promtool test rules deploy/monitoring/alerts.test.yaml

# Mutation testing (mutmut) of the modules listed in pyproject.toml; fails when a module's share of
# killed mutants is below its target there. Each mutant runs its tests in a new pytest session,
# so the small trained bundle the service tests need is trained once and kept in .mutation-cache.
mutation: $(STAMP) system-deps
	rm -rf mutants .mutation-cache
	MISSILE_CLASSIFIER_TEST_BUNDLE_CACHE=$(CURDIR)/.mutation-cache \
		$(VENV)/bin/mutmut run --max-children 2 > mutation.log 2>&1 || { tail -n 40 mutation.log; exit 1; }
	$(PY) scripts/mutation_score.py --record

# Rewrite deploy/kubernetes/rendered/*.yaml after changing a kustomization.
render: system-deps
	for overlay in $(OVERLAYS); do \
		kubectl kustomize deploy/kubernetes/overlays/$$overlay > deploy/kubernetes/rendered/$$overlay.yaml; \
	done

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts
	$(VENV)/bin/ruff format src tests benchmarks scripts

# Each benchmark records its results in docs/results/<benchmark>.json; the README and docs/
# figures are then regenerated from them (review with git diff).
bench: $(STAMP)
	$(PY) benchmarks/simulate_speed.py --record
	$(PY) benchmarks/train_targets.py --profile challenge --record
	$(PY) benchmarks/predict_speed.py --model /tmp/train-targets/models --record
	$(PYTHON) scripts/docs_results.py --write

# The service under load (wrk, a Debian package) and its profile (py-spy), with MODEL_DIR's
# bundle: ~15 minutes on 2 cores; run it on an idle machine (docs/performance.md).
bench-service: $(STAMP)
	@command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
	$(PY) benchmarks/service_load.py --model $(MODEL_DIR) --record
	$(PY) benchmarks/service_profile.py --model $(MODEL_DIR) --record
	$(PY) benchmarks/inference_threads.py --model $(MODEL_DIR) --record
	$(PYTHON) scripts/docs_results.py --write

# The measured figures of README.md and docs/ against docs/results/*.json (standard library
# only): `docs` rewrites them, `docs-check` fails when one is stale (tests/test_docs_results.py
# runs the same check in `make test`).
docs:
	$(PYTHON) scripts/docs_results.py --write

docs-check:
	$(PYTHON) scripts/docs_results.py --check

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .coverage htmlcov \
		mutants .mutation-cache mutation.log
