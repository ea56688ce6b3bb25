# Everything runs here, with no AWS account and no Docker.
#   make demo    - the product's daily job on an in-memory AWS organization
#   make test    - the whole suite (unit, state machine, lint, security scanners, sam build)
#   make bench   - calls, invocations, transitions and cost figures (QUICK=1: a few minutes; SCALE=10000: one run over 10,000 accounts)
#   make preview - every email template rendered into preview/
#   make build   - sam build into build/sam (checks first for the functions' Python, python3.12)
#   make asl     - statemachine/*.asl.json from the .asl.yaml beside it (edit the YAML, then run this)
#   .venv/bin/keyrotation --help - the operator CLI, installed from this repository by `make venv`

PYTHON ?= python3.11
VENV := .venv
SAM_VENV := .venv-sam
SCAN_VENV := .venv-scan
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
PYTEST_WORKERS ?= 2

.PHONY: venv sam-venv scan-venv demo test unit integration statemachine lint build bench preview asl clean

venv: $(VENV)/.installed
sam-venv: $(SAM_VENV)/.installed
scan-venv: $(SCAN_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt layers/keyrotation/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --no-deps -e .  # the `keyrotation` command (pyproject.toml)
	touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements-sam.txt
	touch $@

# checkov pins many libraries of its own (boto3 among them): the scanners get a virtualenv of their own.
$(SCAN_VENV)/.installed: requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --upgrade pip
	$(SCAN_VENV)/bin/pip install --quiet -r requirements-scan.txt
	touch $@

demo: venv
	$(PY) scripts/demo.py $(if $(REPEAT),--repeat $(REPEAT))

test: venv sam-venv scan-venv
	SAM_CLI=$(abspath $(SAM)) SCAN_BIN=$(abspath $(SCAN_VENV))/bin $(PY) -m pytest -n $(PYTEST_WORKERS) -q

unit: venv
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q tests/unit

integration: venv
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q tests/integration

statemachine: venv
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q -m statemachine

lint: venv sam-venv scan-venv
	SAM_CLI=$(abspath $(SAM)) SCAN_BIN=$(abspath $(SCAN_VENV))/bin $(PY) -m pytest -q tests/test_lint.py tests/test_security_scan.py

# sam build resolves the layer with the functions' Python (template.yaml's Runtime, python3.12): found first, or
# scripts/function_python.py says how to install it and the build stops there.
build: sam-venv
	PATH="$$($(SAM_VENV)/bin/python scripts/function_python.py)" && $(SAM) build --template-file template.yaml --build-dir build/sam

bench: venv
	$(PY) scripts/bench.py $(if $(QUICK),--quick) $(if $(SCALE),--scale $(SCALE))

preview: venv
	$(PY) scripts/preview_emails.py

asl: venv
	$(PY) scripts/build_asl.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(SCAN_VENV) build preview .aws-sam
