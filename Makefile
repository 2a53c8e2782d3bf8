# tipoff: every target sets up what it needs on a fresh machine (venv, Java, Maven).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tipoff-installed

.PHONY: setup demo test test-fast lint fmt stack-down test-k8s image-jars image monitoring deployments

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v java >/dev/null || { apt-get update -q && apt-get install -y -q openjdk-17-jdk-headless; }
	@command -v mvn >/dev/null || { apt-get update -q && apt-get install -y -q maven; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

## The main job end to end on the embedded local stack.
demo: setup
	$(BIN)/tipoff demo

## Everything that matters: lint, types, unit and integration tests on the real stack.
test: setup lint
	$(BIN)/pytest

## The edit-test loop: no JVM, seconds.
test-fast: setup
	$(BIN)/pytest -m "not integration and not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

stack-down: setup
	$(BIN)/tipoff stack down

## Kubernetes (docs/deploy.md). The manifest, image and alert-rule checks alone (no cluster):
test-k8s: setup
	$(BIN)/pytest tests/unit/k8s

IMAGE ?= tipoff:dev

## The connector jars the image puts in /opt/flink/lib, then the image itself (needs Docker).
image-jars: setup
	$(BIN)/python k8s/image/fetch_jars.py

image: image-jars
	docker build -f k8s/image/Dockerfile -t $(IMAGE) .

## Rewrite k8s/base/<job>.yaml (one FlinkDeployment per job) from the template.
deployments: setup
	$(BIN)/python k8s/base/deployments.py

## Rewrite k8s/monitoring/prometheusrule.yaml and dashboard.json from generate.py.
monitoring: setup
	$(BIN)/python k8s/monitoring/generate.py
