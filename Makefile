# Every target installs what it needs on first use: a .venv at the root, the CDK CLI from npm.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
UV := $(VENV)/bin/uv
CDK_STAMP := node_modules/.installed
CDK := npx --no-install cdk
# make deploy EMAIL=me@example.com CONTEXT="-c pollerRate=2 -c modelId=..."
CONTEXT ?=
EMAIL ?=
CDK_CONTEXT = $(if $(EMAIL),-c notificationEmail=$(EMAIL)) $(CONTEXT)
# The preflight checks the model and tracing that CONTEXT deploys with; DOCTOR_ARGS adds more
# (e.g. DOCTOR_ARGS="--stack AgentJobs" after a deploy). SKIP_DOCTOR=1 skips it in deploy.
DOCTOR_ARGS ?=
SKIP_DOCTOR ?=
DOCTOR_FLAGS = $(patsubst modelId=%,--model-id=%,$(filter modelId=%,$(CONTEXT))) \
	$(if $(filter tracing=true,$(CONTEXT)),--tracing) $(DOCTOR_ARGS)
# Python writes each module's bytecode once and every later process (an agent per session, a
# CLI call per test) loads it, even where the environment asks for no bytecode files; they
# stay out of git (.gitignore).
unexport PYTHONDONTWRITEBYTECODE
# jsii prints a large end-of-life banner on Node 20 on every synth.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help venv test test-all lint typecheck unit integration synth doctor bootstrap deploy local-up local-down demo bench chaos security clean

help:
	@echo "make demo        one job end to end on the local stack, then tear it down"
	@echo "make test        lint, type checks and the test suite (what CI runs)"
	@echo "make test-all    as make test, plus the slow tests (long fuzz runs, 300-job chaos)"
	@echo "make synth       synthesize the CDK app (cdk-nag on)"
	@echo "make doctor      check the AWS account and region have what a deploy needs"
	@echo "make bootstrap   CDK-bootstrap the account and region (once, before the first deploy)"
	@echo "make deploy      run the doctor, then deploy the stack (SKIP_DOCTOR=1 skips the doctor)"
	@echo "make local-up    start the local stack (moto, local AgentCore runtime, poller)"
	@echo "make local-down  stop the local stack"
	@echo "make bench       run the benchmarks and print their figures"
	@echo "make chaos       the full fault-injection suite (CHAOS_JOBS=300, CHAOS_MAX_SESSIONS=2 per core)"

# uv installs the same pins as pip would, in seconds rather than minutes (aws-cdk-lib alone is a
# large wheel); pip stays in the venv, as the deploy's bundling runs it. Like pip, it compiles
# the bytecode at install (uv does not unless asked): otherwise every process that starts
# before a module's bytecode is written compiles it again, and the tests start many at once.
$(STAMP): pyproject.toml agent_src/requirements.txt Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==$(UV_VERSION)
	$(UV) pip install --quiet --compile-bytecode --python $(PY) pip==26.3 \
		-e '.[agent,poller,cli,local,cdk,dev]' -r agent_src/requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

# The CDK CLI, pinned in package-lock.json, installed into node_modules on first use.
$(CDK_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $(CDK_STAMP)

synth: $(STAMP) $(CDK_STAMP)
	$(CDK) synth --quiet $(CDK_CONTEXT)

doctor: $(STAMP)
	$(VENV)/bin/agentjobs doctor $(DOCTOR_FLAGS)

# Bootstraps the account and region of your credentials (the stack is environment-agnostic).
bootstrap: $(STAMP) $(CDK_STAMP)
	$(CDK) bootstrap $(CDK_CONTEXT)

deploy: $(STAMP) $(CDK_STAMP)
ifeq ($(SKIP_DOCTOR),)
	$(VENV)/bin/agentjobs doctor $(DOCTOR_FLAGS)
endif
	$(CDK) deploy $(CDK_CONTEXT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy agentjobs emulator agent_src poller_lambda infra app.py

# The three checks run side by side (mypy is the long one), their outputs kept apart. Two
# pytest workers per core: most integration tests wait on real processes (an agent starting,
# a poller's tick), and a second worker per core fills those waits.
TEST_WORKERS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))
test: $(STAMP) $(CDK_STAMP)
	@$(MAKE) --no-print-directory --jobs=3 --output-sync=target lint typecheck security
	$(VENV)/bin/pytest -m "not slow" -n $(TEST_WORKERS) --dist loadfile --durations=15

# Everything make test runs, and the tests marked slow; not in CI's path.
test-all: $(STAMP) $(CDK_STAMP)
	@$(MAKE) --no-print-directory --jobs=3 --output-sync=target lint typecheck security
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --durations=25

local-up: $(STAMP)
	$(PY) -m emulator.stack up

local-down: $(STAMP)
	$(PY) -m emulator.stack down

demo: $(STAMP)
	@$(PY) scripts/demo.py

bench: $(STAMP) $(CDK_STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

# The full fault-injection run (docs/reliability.md); a short form runs in `make test`.
# Live sessions (agent processes) are bounded to the machine: 2 per core by default.
CHAOS_JOBS ?= 300
CHAOS_MAX_SESSIONS ?= $(shell echo $$(( 2 * $$(nproc 2>/dev/null || echo 1) )))
chaos: $(STAMP)
	PYTHONPATH=.:agent_src:poller_lambda $(PY) -m tests.chaos.run --jobs $(CHAOS_JOBS) \
		--max-sessions $(CHAOS_MAX_SESSIONS)

# checkov pins an old boto3: it lives in its own venv, made on first use.
CHECKOV := $(VENV)/tools/checkov/bin/checkov
TEMPLATE := cdk.out/AgentJobs.template.json
$(CHECKOV): $(STAMP)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)/tools/checkov
	$(UV) pip install --quiet --python $(VENV)/tools/checkov/bin/python checkov==3.3.30

$(TEMPLATE): $(STAMP) $(CDK_STAMP) app.py cdk.json $(shell find infra agent_src poller_lambda agentjobs -name '*.py' 2>/dev/null)
	$(CDK) synth --quiet

# bandit: no medium or high finding; checkov: every failed check explained in
# security/checkov-skips.yaml. cdk-nag runs in every synth (tests/infra).
security: $(STAMP) $(CHECKOV) $(TEMPLATE)
	$(VENV)/bin/bandit --quiet --severity-level medium -r agentjobs emulator agent_src poller_lambda infra app.py
	$(PY) security/checkov_gate.py $(CHECKOV) $(TEMPLATE)

clean:
	rm -rf $(VENV) node_modules .build cdk.out .local .pytest_cache .mypy_cache .ruff_cache
