# tipoff: every target sets up what it needs on a fresh machine (venv, Java, Maven).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.tipoff-installed

.PHONY: setup demo test test-fast lint fmt stack-down

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
