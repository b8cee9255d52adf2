# The two commands a newcomer needs (README): `make demo` and `make test`. Everything they need is
# installed by these targets; nothing is done by hand.

PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
SANDBOX_DIR ?= $(CURDIR)/.sandbox

# One Airflow home per checkout, SQLite metadata, this repo's DAGs and plugins, file:// staging.
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__BENEFITS_HUB__STAGING_URL ?= file://$(AIRFLOW_HOME)/staging

.PHONY: install system-deps demo test test-fast lint bench screenshots sandbox-start sandbox-stop sandbox-reset airflow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

$(AIRFLOW_HOME)/airflow.db: | $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	# The same one-shot set-up as a cluster's (docker/airflow-init.sh): metadata DB, vendor pools, staging.
	PATH="$(BIN):$$PATH" bash docker/airflow-init.sh > $(AIRFLOW_HOME)/db-migrate.log 2>&1 \
		|| (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)

## demo: set up everything and run every integration end to end on the sandbox, printing Run Summaries
demo: install $(AIRFLOW_HOME)/airflow.db
	$(BIN)/python -m hub_sandbox.demo --dir $(SANDBOX_DIR)

## system-deps: the Debian packages the tests start privately on loopback: the PostgreSQL server
## (HCM and Airflow metadata), Redis (the Celery broker of the distributed test), Chromium (the
## Activity Monitor's browser test), GnuPG (PGP-encrypted vendor files) and OpenSSH's server (the census
## upload against a real sshd). Installs only what is missing.
SYSTEM_DEPS := postgresql:pg_ctl redis-server:redis-server chromium:chromium gnupg:gpg openssh-server:sshd
system-deps:
	@missing=""; for dep in $(SYSTEM_DEPS); do pkg=$${dep%%:*}; cmd=$${dep#*:}; \
		if [ "$$cmd" = pg_ctl ]; then ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && continue; fi; \
		if [ "$$cmd" = sshd ]; then [ -x /usr/sbin/sshd ] && continue; fi; \
		command -v "$$cmd" >/dev/null 2>&1 || missing="$$missing $$pkg"; done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
		echo "make system-deps: missing Debian packages:$$missing; this user cannot install them" \
			"(not root, no sudo): run 'apt-get install$$missing' as root" >&2; exit 1; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make system-deps: missing:$$missing, and this is not a Debian/Ubuntu machine:" \
			"install your distribution's packages for them" >&2; exit 1; fi; \
	echo "make system-deps: installing the Debian packages$$missing"; \
	$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
		&& $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing \
		|| { echo "make system-deps: could not install$$missing (apt-get failed above)" >&2; exit 1; }

# The suite runs on $(TEST_WORKERS) parallel workers (pytest-xdist, whole files per worker so a module's
# Airflow and sandbox stay one), each with an Airflow home of its own; the PII scan then reads every home.
# Three on CI's two cores: the end-to-end modules mostly wait (a scheduler's loop, a browser's page, a
# human-in-the-loop answer), so two workers kept the cores 62% busy (12:59 of pytest); three keep them
# 78% busy (10:05), every module's timeouts unchanged.
TEST_WORKERS ?= 3
TEST_HOMES := $(CURDIR)/.test-homes

## test: the whole test suite (what .ci/run runs)
test: install system-deps
	$(BIN)/ruff check .
	rm -f $(TEST_HOMES)
	HUB_TEST_HOMES_FILE=$(TEST_HOMES) $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--deselect tests/e2e/test_zz_no_pii_in_logs.py
	HUB_TEST_HOMES_FILE=$(TEST_HOMES) $(BIN)/pytest -p no:xdist tests/e2e/test_zz_no_pii_in_logs.py
	@# Each home holds a whole Airflow's database, logs and staging (6 GB of /tmp after a day's runs).
	@# A failed run stops before this line and keeps them to be read; a passed one leaves nothing behind.
	@# Only the homes the suite made itself: one named by HUB_TEST_AIRFLOW_HOME is the developer's.
	grep '/hub-airflow-home-' $(TEST_HOMES) | xargs rm -rf
	rm -f $(TEST_HOMES)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## bench: the benchmark figures (not a test): each integration at 100k and 1M records (participants 200k and
## 2M) beside its floor, the 1,000-change hourly delta, DAG parse times; then benchmarks/results/latest.json,
## the chart benchmarks/results/hub_over_floor.png and the README's table. About an hour and ~10 GB of
## scratch disk on 2 cores; `make bench SIZES=100k` for a quick look (under 10 minutes).
SIZES ?= 100k,1M
bench: install $(AIRFLOW_HOME)/airflow.db
	rm -f benchmarks/results/run.jsonl
	$(BIN)/python -m benchmarks.bench_parse_times
	$(BIN)/python -m benchmarks.bench_demographic_export --sizes $(SIZES)
	$(BIN)/python -m benchmarks.bench_deductions_import --sizes $(SIZES)
	$(BIN)/python -m benchmarks.bench_participant_sync --sizes $(SIZES) --scale 2
	$(BIN)/python -m benchmarks.results

## screenshots: the README's pictures of the clerk's journeys, taken by the browser test that clicks them
## (real Airflow, real Chromium): docs/screenshots/*.png. Commit them with the UI change they show.
screenshots: install system-deps
	HUB_SCREENSHOT_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/e2e/test_clerk_journeys_browser.py \
		tests/e2e/test_plan_admin_browser.py

## sandbox-start / sandbox-stop: the vendor stand-ins, for `make airflow`. A start keeps the data already
## seeded (the demo's 1,000 employees and whatever runs changed); the first one seeds the defaults.
sandbox-start: install
	$(BIN)/hub-sandbox start --dir $(SANDBOX_DIR)

sandbox-stop: install
	$(BIN)/hub-sandbox stop --dir $(SANDBOX_DIR)

## sandbox-reset: the sandbox from scratch: stopped if running, seeded anew at the default sizes, started
sandbox-reset: install
	@$(BIN)/hub-sandbox status --dir $(SANDBOX_DIR) >/dev/null 2>&1 \
		&& $(BIN)/hub-sandbox stop --dir $(SANDBOX_DIR) || true
	$(BIN)/hub-sandbox start --dir $(SANDBOX_DIR) --reseed

## airflow: the Airflow UI (airflow standalone) wired to the sandbox, which it starts when none is running
## (keeping its data); prints the UI's address and the admin login first. Ctrl-C stops Airflow; the sandbox
## keeps running until `make sandbox-stop`. Another port: make airflow AIRFLOW__API__PORT=8081.
## Standalone starts its components by running `airflow` from PATH, hence the venv first on PATH.
airflow: install $(AIRFLOW_HOME)/airflow.db
	PATH="$(BIN):$$PATH" exec $(BIN)/hub-sandbox airflow --dir $(SANDBOX_DIR)

clean:
	-$(BIN)/hub-sandbox stop --dir $(SANDBOX_DIR)
	rm -rf $(AIRFLOW_HOME) $(SANDBOX_DIR)
