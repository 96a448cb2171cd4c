# news-monitor developer targets. `make run` and `make test` do all the set-up themselves.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= deploy/monitor.example.yml

.PHONY: install install-test run test lint format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	# pip older than 24 mis-resolves the lxml[html-clean] extra that trafilatura needs
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

run: install
	$(BIN)/news-monitor run -c $(CONFIG)

test: install-test
	scripts/ensure-redis
	$(BIN)/pytest -q

lint: install-test
	$(BIN)/ruff check monitor tests bench
	$(BIN)/ruff format --check monitor tests bench
	$(BIN)/mypy

format: install-test
	$(BIN)/ruff format monitor tests bench
	$(BIN)/ruff check --fix monitor tests bench

bench: install-test
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/match.py
	$(BIN)/python bench/deliver.py
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
