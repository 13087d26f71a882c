# monetate-ingest — the two commands are `make demo` and `make test`; both set up what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint unit bench build chromium clean help

help:
	@echo "make demo   run the main job end to end on the embedded local stack"
	@echo "make test   lint and every test (installs what it needs on first use)"
	@echo "make bench  benchmarks: print figures and write bench/results/latest.json"
	@echo "make build  sam build (the deployable artifacts)"

$(STAMP): requirements-dev.txt layers/monetate_ingest/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v 'is ignored' || true
	$(PY) -m pip install -q -r requirements-dev.txt 2>&1 | grep -v 'is ignored' || true
	$(PY) -c "import aws_lambda_powertools, requests, jwt, moto, pytest"
	touch $(STAMP)

venv: $(STAMP)

# Debian's Chromium for the spot-check page's browser tests (no browser downloads).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; }

demo: $(STAMP)
	PYTHONPATH=layers/monetate_ingest:. $(PY) -m local.demo $(DEMO_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy
	PYTHONPATH=layers/monetate_ingest $(VENV)/bin/lint-imports
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m scripts.template_check template.yaml
	bash scripts/checkov.sh

# pytest exits 5 when it collected nothing: that is a failure here (a suite that ran no test
# proves nothing), reported as such rather than passed through as a bare exit code.
test: lint chromium
	bash scripts/build.sh --if-stale --host-arch
	@rc=0; $(PY) -m pytest -p no:cacheprovider || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	PYTHONPATH=layers/monetate_ingest:. $(PY) -m bench $(BENCH_ARGS)

build:
	bash scripts/build.sh

clean:
	rm -rf $(VENV) .aws-sam .tools .pytest_cache .mypy_cache .ruff_cache
