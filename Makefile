PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck install clean up

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ordersaga demo

up: $(STAMP)
	$(BIN)/ordersaga up --embedded --data-dir data

# Starts Kafka, PostgreSQL and MariaDB when they are not running, and stops those it started.
test: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy
	bash infra/with-infra.sh $(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache

# Kafka, PostgreSQL and MariaDB on 127.0.0.1, for the distributed mode (see infra/README.md).
INFRA := bash infra/infra.sh

.PHONY: infra-up infra-down infra-status

infra-up:
	$(INFRA) up

infra-down:
	$(INFRA) down

infra-status:
	$(INFRA) status
