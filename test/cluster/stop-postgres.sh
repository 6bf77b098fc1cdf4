#!/usr/bin/env bash
# Stop the test PostgreSQL started by start-postgres.sh (its data folder stays; --purge removes it).
set -euo pipefail
DIR=${FUNCX_TEST_PG_DIR:-/tmp/funcx-test-postgres}
[ "$(id -u)" = 0 ] || { echo "stop-postgres: ERROR: must run as root" >&2; exit 1; }
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
if [ -n "$BIN" ] && [ -s "$DIR/data/PG_VERSION" ] && runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  runuser -u postgres -- "$BIN/pg_ctl" -D "$DIR/data" -w -m fast stop >/dev/null
  echo "stop-postgres: stopped"
fi
if [ "${1:-}" = --purge ]; then rm -rf "$DIR"; echo "stop-postgres: removed $DIR"; fi
