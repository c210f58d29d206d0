# Jembatan: every routine action has a target. `make run` and `make test` install first
# when needed, so a fresh clone needs only those two commands.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto' 2>/dev/null)
GRPC_OUT := jembatan/grpc_gen
PYTEST_ARGS ?=

.PHONY: help install proto run run-distributed test test-deps test-unit lint format bench infra-up infra-down infra-status tools clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(INSTALLED) $(GRPC_OUT)/.generated services/web/node_modules/.installed ## virtualenv, pinned dependencies, gRPC stubs, the pages' browser libraries

$(INSTALLED): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

proto: $(GRPC_OUT)/.generated ## generate the gRPC stubs from proto/

$(GRPC_OUT)/.generated: $(INSTALLED) $(PROTOS)
	rm -rf $(GRPC_OUT) && mkdir -p $(GRPC_OUT)
	@if [ -n "$(PROTOS)" ]; then \
	  $(PY) -m grpc_tools.protoc -Iproto --python_out=$(GRPC_OUT) --pyi_out=$(GRPC_OUT) \
	    --grpc_python_out=$(GRPC_OUT) $(PROTOS); \
	fi
	$(PY) -m jembatan.grpc_stubs_fixup $(GRPC_OUT)
	touch $@

run: install ## the whole ecosystem on this machine (embedded log and store; Ctrl-C stops)
	$(VENV)/bin/jembatan run

# Browser libraries the pages serve themselves (Leaflet; axe-core for the browser tests): npm, no CDN.
services/web/node_modules/.installed: services/web/package.json services/web/package-lock.json
	cd services/web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run-distributed: install ## the production shape here: Kafka, mongo-atomic, 2 replicas of each service (Ctrl-C stops)
	$(PY) infra/run_distributed.py

test-deps: clients/node/node_modules/.installed ## what the tests use besides Python: Go tools, CRD schemas, the Node client
	bash infra/tools.sh go
	bash infra/tools.sh crds

clients/node/node_modules/.installed: clients/node/package.json clients/node/package-lock.json
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install test-deps ## every test, against real Kafka, FerretDB and mongo-atomic (started here when not running)
	@started=$$(mktemp); \
	trap 'bash infra/servers.sh down --recorded "$$started"; rm -f "$$started"' EXIT; \
	bash infra/servers.sh up all --record "$$started" && \
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: install ## the fast tests that need no server
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check jembatan services tests
	$(VENV)/bin/ruff format --check jembatan services tests
	$(VENV)/bin/mypy jembatan services

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format jembatan services tests
	$(VENV)/bin/ruff check --fix jembatan services tests

bench: install ## both modes in one run (ratios, targets): docs/benchmarks.json, docs/benchmarks.md rendered from it
	@started=$$(mktemp); \
	trap 'bash infra/servers.sh down --recorded "$$started"; rm -f "$$started"' EXIT; \
	bash infra/servers.sh up all --record "$$started" && \
	$(PY) -m tests.bench.run

infra-up: ## start Kafka (KRaft), FerretDB and mongo-atomic on 127.0.0.1, downloading/building once
	bash infra/servers.sh up all

infra-down: ## stop the local Kafka, FerretDB and mongo-atomic
	bash infra/servers.sh down all

infra-status: ## are the local servers running?
	bash infra/servers.sh status

tools: ## Debian packages some tests use: kcat, prometheus (+ promtool), chromium (+ driver)
	bash infra/tools.sh

clean: ## remove the virtualenv, generated code and local data (keeps .cache downloads)
	rm -rf $(VENV) $(GRPC_OUT) .data .pytest_cache .mypy_cache .ruff_cache
