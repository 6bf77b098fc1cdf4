#!/usr/bin/env bash
# Stop the test Slurm cluster started by start-slurm.sh: the three slurmd, slurmctld and munged.
# Usage: sudo test/cluster/stop-slurm.sh [--keep-munge]
# Only the processes named by the daemons' own pid files are signalled.
set -uo pipefail

stop_pidfile() { # stop_pidfile PIDFILE NAME
  local pf=$1 name=$2 pid
  [ -s "$pf" ] || return 0
  pid=$(cat "$pf")
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-slurm: stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "stop-slurm: $name did not stop in 10 s, sending SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$pf"
}

for n in n1 n2 n3; do stop_pidfile "/run/slurm/slurmd-$n.pid" "slurmd -N $n"; done
stop_pidfile /run/slurm/slurmctld.pid slurmctld
if [ "${1:-}" != "--keep-munge" ]; then
  stop_pidfile /run/munge/munged.pid munged
fi
echo "stop-slurm: stopped"
