# Two entry points a newcomer needs (see README): `make greeter` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OLDEST_VENV := .venv-oldest-protobuf
OLDEST_PROTOBUF := 5.26.1
# buf, for the test of the documented buf.gen.yaml recipe; the npm registry ships its binary.
BUF_VERSION := 1.75.0
# The oldest supported Python runs the oldest-protobuf job when the machine has it (pyenv keeps it
# off PATH here); otherwise the default python3 does.
OLDEST_PYTHON ?= $(firstword $(wildcard /root/.pyenv/versions/3.10*/bin/python3.10) \
	$(shell command -v python3.10 2>/dev/null) $(PYTHON))

.PHONY: greeter test test-main test-oldest-protobuf typecheck format-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(OLDEST_VENV)/.installed: pyproject.toml
	$(OLDEST_PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q -e '.[aiohttp,flask]' pytest 'protobuf==$(OLDEST_PROTOBUF)'
	touch $@

# Without npm the buf recipe test is skipped (and says so); everything else runs.
.tools/.installed:
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION) \
			|| echo "buf could not be installed: the buf recipe test will be skipped"; \
	else echo "npm not found: the buf recipe test will be skipped"; fi
	mkdir -p .tools && touch $@

## Set up, then generate the greeter walkthrough from schemas/ into examples/greeter/.
greeter: $(VENV)/.installed
	$(PY) -m statefun_codegen schemas/

## The whole test suite: type and format checks, all tests on the newest protobuf, SDK and 2.x tests on the oldest
## protobuf (and the oldest Python, where installed).
test: typecheck format-check test-main test-oldest-protobuf

typecheck: $(VENV)/.installed
	$(PY) -m mypy

format-check: $(VENV)/.installed
	$(PY) -m black --check --quiet .

test-main: $(VENV)/.installed .tools/.installed
	$(PY) -m pytest -q

test-oldest-protobuf: $(OLDEST_VENV)/.installed
	$(OLDEST_VENV)/bin/python -c 'import sys, google.protobuf as p; print("SDK and 2.x tests on Python", sys.version.split()[0], "and protobuf", p.__version__)'
	$(OLDEST_VENV)/bin/python -m pytest -q tests/statefun tests/compat

clean:
	rm -rf $(VENV) $(OLDEST_VENV)
