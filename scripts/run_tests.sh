#!/usr/bin/env bash
# `make test`'s two suites, at the same time: the whole suite on SQLite, and the database tests
# again on PostgreSQL when FAIRTIX_TEST_DATABASE_URL names one (.ci/run sets it). Each pass is
# mostly one busy Python process, so side by side they take about as long as the longer one,
# not the sum; they share nothing but Redis (every test there uses its own key prefix).
#
# The PostgreSQL pass writes to a log that is printed when it ends, so the two never interleave.
# Either suite alone: `make test-sqlite`, `make test-postgres`.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

pg_pid=""
pg_log=""
if [ -n "${FAIRTIX_TEST_DATABASE_URL:-}" ]; then
  pg_log="$(mktemp -t fairtix-postgres-tests.XXXXXX)"
  echo "database tests on PostgreSQL ($FAIRTIX_TEST_DATABASE_URL) run beside the SQLite suite;" \
    "their output follows it"
  "$BIN/pytest" -q -p no:cacheprovider -m db >"$pg_log" 2>&1 &
  pg_pid=$!
  # Ctrl-C or a killed make must not leave the PostgreSQL pass running on its own.
  trap 'kill "$pg_pid" 2>/dev/null; rm -f "$pg_log"; exit 130' INT TERM
elif [ "${CI:-}" = true ]; then
  echo "CI needs FAIRTIX_TEST_DATABASE_URL (PostgreSQL)" >&2
  exit 1
else
  echo "note: FAIRTIX_TEST_DATABASE_URL not set; database tests run on SQLite only"
fi

echo "whole suite on SQLite ..."
env -u FAIRTIX_TEST_DATABASE_URL "$BIN/pytest" -q -p no:cacheprovider
sqlite_status=$?

pg_status=0
if [ -n "$pg_pid" ]; then
  wait "$pg_pid"
  pg_status=$?
  echo "database tests on PostgreSQL:"
  cat "$pg_log"
  rm -f "$pg_log"
fi
[ "$sqlite_status" -eq 0 ] && [ "$pg_status" -eq 0 ]
