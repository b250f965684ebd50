# Two entry points for humans and CI: `make serve` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.mini-llm-installed
# Every pip install below takes its versions from here (README "Pinned versions"); a pin change reinstalls.
CONSTRAINTS := constraints.txt
PIP_INSTALL := $(BIN)/python -m pip install --quiet --constraint $(CONSTRAINTS)
SOURCES := pyproject.toml setup.py $(CONSTRAINTS) $(wildcard ext/*.pyx)
# Debian packages the tests drive: Chromium for the playground test (never Playwright's own download).
CHROMIUM := /usr/bin/chromium
WRK := /usr/bin/wrk
NGINX := /usr/sbin/nginx
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup serve test lint lint-rules lint-format typecheck pytest pytest-pure pytest-aiohttp bench bench-e2e annotate constraints clean

$(STAMP): $(SOURCES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --upgrade pip
	$(PIP_INSTALL) "setuptools>=77" "Cython>=3.1"
	$(PIP_INSTALL) --no-build-isolation -e '.[test]'
	# Byte-compile the package as a wheel install would: an editable install never does, and the
	# start-up cost of compiling every module shows in the cold start (PYTHONDONTWRITEBYTECODE setups).
	$(BIN)/python -m compileall -q src/mini_llm
	touch $@

setup: $(STAMP)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

$(WRK):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk

$(NGINX):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light

serve: setup
	$(BIN)/mini-llm serve

lint: lint-rules lint-format

lint-rules: setup
	$(BIN)/ruff check .

lint-format: setup
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

# The whole suite on the compiled hot path (benchmarks run once each as checks),
# then again on the pure-Python path (MINI_LLM_NO_EXTENSIONS=1), as aiohttp's CI matrix does.
pytest: setup $(CHROMIUM) $(WRK)
	$(BIN)/pytest tests benchmarks --benchmark-disable -p no:cacheprovider

pytest-pure: setup $(CHROMIUM) $(WRK)
	MINI_LLM_NO_EXTENSIONS=1 $(BIN)/pytest tests -p no:cacheprovider

# The end-to-end suites again with every gateway on the alternative upstream client (aiohttp), so both
# clients pass the same tests; the unit tests do not depend on it.
pytest-aiohttp: setup $(CHROMIUM) $(WRK)
	MINI_LLM_UPSTREAM_CLIENT=aiohttp $(BIN)/pytest tests/e2e tests/sdk -p no:cacheprovider

# Every check runs even when an earlier one fails, so one run reports every failure; make then
# exits non-zero if any failed.
test: setup
	$(MAKE) --keep-going --no-print-directory lint typecheck pytest pytest-pure pytest-aiohttp

bench: setup
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-columns=median,iqr,ops --benchmark-sort=name

# The end-to-end load benchmark (README "End-to-end benchmark"): ARGS="--quick" for a short run.
bench-e2e: setup $(WRK) $(NGINX)
	$(BIN)/python -m benchmarks.e2e $(ARGS)

annotate: setup
	MINI_LLM_CYTHON_ANNOTATE=1 $(BIN)/python setup.py build_ext --inplace

# Re-resolve every pin to the newest releases pyproject.toml's bounds allow, in a scratch venv (a
# pure install: nothing is compiled); then run `make test` before committing the new file.
PINS_VENV := .venv-pins
constraints:
	rm -rf $(PINS_VENV)
	$(PYTHON) -m venv $(PINS_VENV)
	$(PINS_VENV)/bin/python -m pip install --quiet --upgrade pip "setuptools>=77" "Cython>=3.1"
	MINI_LLM_NO_EXTENSIONS=1 $(PINS_VENV)/bin/python -m pip install --quiet --no-build-isolation -e '.[test]'
	{ grep '^#' $(CONSTRAINTS); $(PINS_VENV)/bin/python -m pip freeze --all --exclude-editable | LC_ALL=C sort -f; } \
		> $(CONSTRAINTS).new
	mv $(CONSTRAINTS).new $(CONSTRAINTS)
	rm -rf $(PINS_VENV)

clean:
	rm -rf build $(VENV) $(PINS_VENV) src/*.egg-info src/mini_llm/hotpath/*.so ext/*.c ext/*.html .pytest_cache .mypy_cache .ruff_cache
