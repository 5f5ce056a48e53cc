# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-slow demo bench clean readme browser mutants

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the package metadata changes.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# One test process per core, at most 4 (each trains the session's shared models once): 2 on CI's two cores.
JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -gt 4 ] && n=4; echo $$n)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n $(JOBS)

# Also the tests too slow for every run (minutes each: QGIS Deepness on a real scene with a model trained for it).
test-slow: $(STAMP) browser
	RS_EFFNET_SLOW=1 $(BIN)/python -m pytest -q -n $(JOBS)

# Break features on purpose in a copy of the project and check the tests notice (minutes; not part of test).
mutants: $(STAMP)
	$(BIN)/python tests/mutants.py

# The browser test of `rs-effnet view` needs Chromium: the distribution's package, where we may install it.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "note: Chromium is not installed and could not be; the browser test of rs-effnet view will skip"

demo: $(STAMP)
	$(BIN)/python -m robosat_effnet.demo demo

bench: $(STAMP)
	$(BIN)/rs-effnet bench

clean:
	rm -rf demo

# Regenerate README's command reference from --help.
readme: $(STAMP)
	$(BIN)/python -m robosat_effnet.cli.readme README.md
