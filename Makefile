# fairtix developer entry points. `make run` and `make test` work on a fresh clone with
# Python 3.11+, Node 20 and npm; both install what they need and are quiet when nothing changed.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Python packages come from uv.lock (`make lock` refreshes it), installed by uv, pinned here and
# installed into the venv itself, so a fresh clone needs nothing beyond Python and pip.
UV_VERSION := 0.13.10
UV := $(BIN)/uv
UV_STAMP := $(VENV)/.uv-$(UV_VERSION)
PY_RUNTIME_STAMP := $(VENV)/.installed-runtime
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# --locked: refuse a uv.lock that no longer matches pyproject.toml instead of re-resolving it.
# --inexact: leave what is not in this selection alone (uv and pip themselves; the dev extra
# when `make run` follows `make test`), rather than removing it.
UV_SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) UV_PYTHON_DOWNLOADS=never $(UV) sync --locked --inexact \
  --no-progress --quiet

.PHONY: help install install-runtime run demo devnet test test-sqlite test-postgres lint typecheck \
  compile clean system-deps lock lock-upgrade

help:
	@echo "make run     install, start the anvil devnet, deploy, serve the API on 127.0.0.1:8000"
	@echo "make demo    drive a scripted buyer through the whole sale (needs 'make run' running)"
	@echo "make test    install and run lint, types and the whole test suite"
	@echo "make devnet  just the anvil devnet on 127.0.0.1:8545"
	@echo "make compile recompile contracts/*.sol into contracts/build/"
	@echo "make lock    bring uv.lock in line with pyproject.toml, keeping every other pin"
	@echo "make lock-upgrade  re-resolve uv.lock to the newest versions pyproject.toml allows"
	@echo "make bench-gas  gas of fairtix's contracts beside OZ ERC721, ERC721A, PublicLock V14"
	@echo "make bench-queue  waiting-room join/status throughput and a 100,000-user simulation"
	@echo "make bench-onsale  2,000 buyers end to end on anvil: tickets/s, payment-to-token time"
	@echo "make bench-door  20,000 fans through 10 gates: scans/s, p50/p99, wrong admissions, gas"
	@echo "make bench-resale  1,000 listings, 1,000 buyers (card and ether) racing: listings/s, p50/p99"
	@echo "make bench-paired BASE=rev  server CPU per request, revision BASE against this tree, side by side"

$(UV_STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --disable-pip-version-check -q uv==$(UV_VERSION) \
	  > $(VENV)/install.log 2>&1 \
	  || { cat $(VENV)/install.log; echo "installing uv failed (log: $(VENV)/install.log)" >&2; exit 1; }
	@rm -f $(VENV)/.uv-* && touch $@

# The runtime packages (make run); the dev extra on top of them (make test). Both from uv.lock.
$(PY_RUNTIME_STAMP): pyproject.toml uv.lock $(UV_STAMP)
	@echo "installing Python packages from uv.lock into $(VENV) ..."
	@$(UV_SYNC) || { echo "uv sync failed; if pyproject.toml changed, run 'make lock'" >&2; exit 1; }
	@touch $@

$(PY_STAMP): pyproject.toml uv.lock $(UV_STAMP)
	@echo "installing Python packages and dev tools from uv.lock into $(VENV) ..."
	@$(UV_SYNC) --extra dev \
	  || { echo "uv sync failed; if pyproject.toml changed, run 'make lock'" >&2; exit 1; }
	@touch $@ $(PY_RUNTIME_STAMP)

lock: $(UV_STAMP)
	@$(UV) lock

lock-upgrade: $(UV_STAMP)
	@$(UV) lock --upgrade

$(NODE_STAMP): package.json package-lock.json
	@echo "installing Node packages (solc, OpenZeppelin, anvil) ..."
	@npm ci --silent --no-audit --no-fund
	@touch $@

# The web client's browser libraries, copied from node_modules into the package (no CDN, no
# build step): ethers' one-file ES module and jsQR (the scanner page's QR reader). Not committed.
WEB_VENDOR := backend/web/static/vendor
WEB_STAMP := $(WEB_VENDOR)/.copied
$(WEB_STAMP): $(NODE_STAMP)
	@mkdir -p $(WEB_VENDOR)
	@cp node_modules/ethers/dist/ethers.min.js $(WEB_VENDOR)/ethers.min.js
	@cp node_modules/jsqr/dist/jsQR.js $(WEB_VENDOR)/jsQR.js
	@touch $@

install: $(PY_STAMP) $(NODE_STAMP) $(WEB_STAMP)

install-runtime: $(PY_RUNTIME_STAMP) $(NODE_STAMP) $(WEB_STAMP)

run: install-runtime
	@$(BIN)/fairtix run --devnet

demo: install-runtime
	@$(BIN)/fairtix demo

devnet: install-runtime
	@$(BIN)/fairtix devnet

compile: install-runtime
	@$(BIN)/python scripts/compile.py

# Benchmarks: never part of `make test`. Each writes bench/results/<name>.json and its section of
# bench/RESULTS.md. bench-gas starts its own anvil on a free port. -P keeps bench/ off sys.path,
# where bench/queue.py would shadow the standard library's queue module.
.PHONY: bench-gas
bench-gas: install
	@$(BIN)/python -P bench/gas.py

# The live CID oracle (Debian's ipfs_cid). Installed when we can (root with apt); otherwise its
# test skips locally and fails under CI=true.
system-deps:
	@command -v ipfs_cid >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing ipfs-cid (apt) ..."; \
	    (apt-get install -y -qq ipfs-cid >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && apt-get install -y -qq ipfs-cid >/dev/null)); \
	  else echo "note: ipfs_cid is not installed (apt-get install ipfs-cid)"; fi; }
	@# promtool checks and unit-tests ops/prometheus/alerts.yml; the server scrapes a live API in
	@# tests/observability. Debian's package would start a server as a service: a policy-rc.d (the
	@# one Docker images have, or ours for the install's duration) tells it not to.
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing prometheus (apt: the server and promtool) ..."; \
	    ours=; if [ ! -e /usr/sbin/policy-rc.d ]; then ours=1; \
	      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; fi; \
	    (apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && \
	      apt-get install -y -qq --no-install-recommends prometheus >/dev/null)); \
	    [ -z "$$ours" ] || rm -f /usr/sbin/policy-rc.d; \
	  else echo "note: prometheus is not installed (apt-get install prometheus)"; fi; }
	@# Debian's chromium: the web client's browser tests (tests/web) drive it with Playwright.
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (apt) ..."; \
	    (apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	     (apt-get update -qq >/dev/null && \
	      apt-get install -y -qq --no-install-recommends chromium >/dev/null)); \
	  else echo "note: chromium is not installed (apt-get install chromium)"; fi; }

lint: install
	@$(BIN)/ruff check --quiet backend scripts tests bench
	@$(BIN)/ruff format --check --quiet backend scripts tests bench

typecheck: install
	@$(BIN)/mypy --no-error-summary backend bench scripts

# Whole suite on SQLite and, beside it, the database tests again on PostgreSQL
# (scripts/run_tests.sh). The PostgreSQL run needs FAIRTIX_TEST_DATABASE_URL (.ci/run sets it):
# the tests drop and recreate that database's public schema, so they never pick one on their own.
test: install system-deps lint typecheck
	@bash scripts/run_tests.sh

test-sqlite:
	@env -u FAIRTIX_TEST_DATABASE_URL $(BIN)/pytest -q -p no:cacheprovider

test-postgres:
	@if [ -n "$$FAIRTIX_TEST_DATABASE_URL" ]; then \
	  echo "database tests on PostgreSQL ($$FAIRTIX_TEST_DATABASE_URL) ..."; \
	  $(BIN)/pytest -q -p no:cacheprovider -m db; \
	elif [ "$$CI" = true ]; then echo "CI needs FAIRTIX_TEST_DATABASE_URL (PostgreSQL)" >&2; exit 1; \
	else echo "note: FAIRTIX_TEST_DATABASE_URL not set; database tests ran on SQLite only"; fi

# Waiting-room throughput and latency (2 uvicorn workers, Redis store) and 100,000 simulated
# users on the Redis store; needs Redis on FAIRTIX_REDIS_URL (default 127.0.0.1:6379). Set
# FAIRTIX_BENCH_DATABASE_URL to run the HTTP part on PostgreSQL instead of SQLite.
.PHONY: bench-queue
bench-queue: install
	@$(BIN)/python -m bench.queue

# The whole on-sale on real components (anvil, PostgreSQL, Redis, 2 uvicorn workers, a separate
# worker): N buyers (default 2,000) from sign-in to minted token. `.venv/bin/python -m
# bench.onsale --help` lists the knobs. Drops and recreates the local database fairtix_bench.
.PHONY: bench-onsale
bench-onsale: install
	@$(BIN)/python -m bench.onsale

# The door: 20,000 fans through 10 gates (2 uvicorn workers, PostgreSQL, Redis, anvil), with
# replayed screenshots, previous holders' codes, second presentations and a gate offline for a
# minute; then the worker's check-ins on chain. Drops and recreates the database fairtix_bench_door.
.PHONY: bench-door
bench-door: install
	@$(BIN)/python -m bench.door

# Resale: 1,000 holders list (half paid back by card, half in ether), 1,000 buyers (half by card,
# half with ether) race for the listings (2 uvicorn workers, a separate worker, PostgreSQL,
# Redis, anvil). Writes bench/results/resale.json and its section of bench/RESULTS.md.
.PHONY: bench-resale
bench-resale: install
	@$(BIN)/python -m bench.resale

# Two versions' API at once, requests alternated, so a noisy machine weighs on both alike.
BASE ?= HEAD
.PHONY: bench-paired
bench-paired: install
	@$(BIN)/python -m bench.paired --base $(BASE)

clean:
	rm -rf var deployments/31337.json .pytest_cache .mypy_cache .ruff_cache
