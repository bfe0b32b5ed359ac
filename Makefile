# make run: set up everything and serve the sample app.  make test: set up everything and run the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
GATI := $(VENV)/bin/gati
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test setup system-deps venv modules tools proto bench clean

run: setup
	$(GATI) serve examples/app --host $(HOST) --port $(PORT)

test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

setup: system-deps venv modules tools

system-deps:
	bash scripts/install-system-deps.sh

venv: $(VENV)/.installed

# pip builds the WASM call path (sandboxes/wasm/_callpath.c) in place too: a change to it installs again.
$(VENV)/.installed: pyproject.toml sandboxes/wasm/_callpath.c
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

modules: venv
	bash scripts/build-modules.sh

tools:
	bash scripts/install-tools.sh

proto: venv
	$(PY) proto/generate.py

bench: setup
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) -m bench

clean:
	rm -rf $(VENV) .gati examples/app/.gati build sandboxes/wasm/_callpath*.so
	find sample_modules -name build -type d -prune -exec rm -rf {} +
	rm -rf tools/typescript/node_modules
