#!/usr/bin/env bash
# Start a throwaway PostgreSQL for the tests on 127.0.0.1:55432 (loopback only), its own data folder, run as
# the `postgres` user, apart from any cluster Debian's postgresql package runs on 5432.
# Idempotent: installs postgresql only when missing, runs initdb only once, starts the server only when it is
# not answering, creates the test role and database only once. Needs root (it runs initdb as postgres).
#
# Usage: sudo test/cluster/start-postgres.sh   (stop with test/cluster/stop-postgres.sh)
# Folder: $FUNCX_TEST_PG_DIR (default /tmp/funcx-test-postgres) holds data/, run/ (the Unix socket), postgres.log
# Prints FUNCX_TEST_DATABASE_URL=postgres://funcx_test:funcx_test@127.0.0.1:55432/funcx_test
# The role funcx_test may create databases: the tests make a fresh one per test and drop it after.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

fail() { echo "start-postgres: ERROR: $*" >&2; exit 1; }
log() { echo "start-postgres: $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (it runs initdb and the server as the postgres user)"

mkdir -p /run/lock
# The server started below runs under without_fds (lib.sh) so it keeps no lock.
exec 9>/run/lock/funcx-start-postgres.lock
flock -w 300 9 || fail "another start-postgres.sh run holds /run/lock/funcx-start-postgres.lock"

DIR=${FUNCX_TEST_PG_DIR:-/tmp/funcx-test-postgres}
PORT=55432
ADDR=127.0.0.1
ROLE=funcx_test
PASSWORD=funcx_test
URL="postgres://$ROLE:$PASSWORD@$ADDR:$PORT/$ROLE"

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }
if [ -z "$(bindir)" ] || [ ! -x "$(bindir)/pg_ctl" ]; then
  log "installing postgresql with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=600 || fail "apt-get update failed"
  apt-get install -y -q -o DPkg::Lock::Timeout=600 postgresql || fail "apt-get install postgresql failed"
fi
BIN=$(bindir)
id postgres >/dev/null 2>&1 || fail "the postgresql package did not create the postgres user"
as_pg() { runuser -u postgres -- "$@"; }

mkdir -p "$DIR"
chown postgres:postgres "$DIR"
chmod 0700 "$DIR"
as_pg mkdir -p "$DIR/run"

if [ ! -s "$DIR/data/PG_VERSION" ]; then
  log "initdb in $DIR/data"
  rm -rf "$DIR/data"
  as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || fail "initdb failed: $(tail -n 5 "$DIR/initdb.log")"
fi

# Settings for a throwaway test server: loopback only, a private socket folder, and no fsync (its data is
# thrown away; the service's durability is PostgreSQL's business, not what these tests measure).
cat >"$DIR/funcx.conf.new" <<CONF
# Written by funcx-endpoint test/cluster/start-postgres.sh
listen_addresses = '$ADDR'
port = $PORT
unix_socket_directories = '$DIR/run'
max_connections = 300
fsync = off
full_page_writes = off
synchronous_commit = off
shared_buffers = 64MB
log_min_messages = warning
# A statement over 250 ms is logged with its plan (postgres.log): PostgreSQL batch runs of the bench now and
# then fall to a tenth of their rate with single statements taking 0.5-1.5 s (issue 14).
shared_preload_libraries = 'auto_explain'
auto_explain.log_min_duration = '250ms'
CONF
config_changed=0
if ! cmp -s "$DIR/funcx.conf.new" "$DIR/data/funcx.conf" 2>/dev/null; then config_changed=1; fi
chown postgres:postgres "$DIR/funcx.conf.new"
mv "$DIR/funcx.conf.new" "$DIR/data/funcx.conf"
grep -q "^include_if_exists = 'funcx.conf'" "$DIR/data/postgresql.conf" \
  || echo "include_if_exists = 'funcx.conf'" >>"$DIR/data/postgresql.conf"

ready() { as_pg "$BIN/pg_isready" -q -h "$DIR/run" -p "$PORT"; }
if as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
  if [ "$config_changed" = 1 ]; then log "restarting PostgreSQL (settings changed)"; without_fds as_pg "$BIN/pg_ctl" -D "$DIR/data" -w -m fast restart -l "$DIR/postgres.log" >/dev/null; fi
else
  log "starting PostgreSQL on $ADDR:$PORT"
  without_fds as_pg "$BIN/pg_ctl" -D "$DIR/data" -w -t 60 -l "$DIR/postgres.log" start >/dev/null \
    || fail "PostgreSQL did not start (is port $PORT taken?): $(tail -n 5 "$DIR/postgres.log")"
fi
deadline=$((SECONDS + 60))
until ready; do
  [ $SECONDS -lt $deadline ] || fail "PostgreSQL does not answer on $DIR/run after 60 s; see $DIR/postgres.log"
  sleep 0.2
done

psql_pg() { as_pg "$BIN/psql" -h "$DIR/run" -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(psql_pg -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]; then
  log "creating role $ROLE"
  psql_pg -c "CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'"
fi
# DROP DATABASE ... WITH (FORCE) ends the other sessions on a test database; autovacuum's worker on it is not
# the role's own, so without pg_signal_backend the drop failed now and then (a bench run died of it).
psql_pg -c "GRANT pg_signal_backend TO $ROLE"
if [ "$(psql_pg -c "SELECT 1 FROM pg_database WHERE datname = '$ROLE'")" != 1 ]; then
  log "creating database $ROLE"
  psql_pg -c "CREATE DATABASE $ROLE OWNER $ROLE"
fi

# A real login over TCP with the password, as the tests make it.
PGPASSWORD=$PASSWORD "$BIN/psql" "$URL" -qAt -c 'SELECT 1' >/dev/null 2>"$DIR/probe.err" \
  || fail "cannot log in as $ROLE at $ADDR:$PORT: $(cat "$DIR/probe.err")"
log "ready: $ADDR:$PORT"
echo "FUNCX_TEST_DATABASE_URL=$URL"
