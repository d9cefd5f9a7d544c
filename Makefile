# Two entry points a newcomer needs (see README): `make greeter` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OLDEST_VENV := .venv-oldest-protobuf
OLDEST_PROTOBUF := 5.26.1

.PHONY: greeter test test-main test-oldest-protobuf typecheck bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(OLDEST_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q -e '.[aiohttp,flask]' pytest 'protobuf==$(OLDEST_PROTOBUF)'
	touch $@

## Set up, then generate the greeter walkthrough from schemas/ into examples/greeter/.
greeter: $(VENV)/.installed
	$(PY) -m statefun_codegen schemas/

## The whole test suite: type checks, all tests on the newest protobuf, SDK tests on the oldest.
test: typecheck test-main test-oldest-protobuf

typecheck: $(VENV)/.installed
	$(PY) -m mypy

test-main: $(VENV)/.installed
	$(PY) -m pytest -q

test-oldest-protobuf: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -c 'import google.protobuf as p; print("SDK tests on protobuf", p.__version__)'
	$(OLDEST_VENV)/bin/python -m pytest -q tests/statefun

clean:
	rm -rf $(VENV) $(OLDEST_VENV)
