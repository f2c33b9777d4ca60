# The two commands: `make run` and `make test`. Both set up what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export MCP_ACL_HOME ?= $(CURDIR)/.data

.PHONY: run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,bench]'
	touch $@

# Initialise, seed the demo once, print tokens and how to connect, then serve.
run: $(VENV)/.installed
	$(PY) -m mcp_acl run-demo

test: $(VENV)/.installed
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) bench/decide.py
	$(PY) bench/gateway.py
	$(PY) bench/cli.py
	$(PY) bench/notify.py
	$(PY) bench/upstream.py

clean:
	rm -rf $(VENV) .data .pytest_cache .hypothesis
