#!/usr/bin/env bash
# Stop the test Grid Engine started by start-gridengine.sh (sge_execd, then sge_qmaster); the configuration
# (queues, hosts, PE) stays in the spool, so the next start is quick.
# Usage: sudo test/cluster/stop-gridengine.sh
set -uo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default

stop_pidfile() { # stop_pidfile PIDFILE NAME
  local pf=$1 name=$2 pid
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-gridengine: stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "stop-gridengine: $name still alive after 10 s, SIGKILL"; kill -9 "$pid" 2>/dev/null; }
  fi
  rm -f "$pf"
}
# sge_execd names its spool folder after its resolved name (`localhost` here), not always the host name.
for pf in /var/spool/gridengine/execd/*/execd.pid; do stop_pidfile "$pf" sge_execd; done
stop_pidfile /var/spool/gridengine/qmaster/qmaster.pid sge_qmaster
echo "stop-gridengine: stopped"
