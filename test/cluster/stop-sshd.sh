#!/usr/bin/env bash
# Stop the test sshd started by start-sshd.sh (keys and authorized_keys entry stay for the next start).
# Usage: sudo test/cluster/stop-sshd.sh
set -uo pipefail
DIR=${FUNCX_TEST_SSH_DIR:-/tmp/funcx-test-ssh}
if [ -s "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; then
  pid=$(cat "$DIR/sshd.pid")
  echo "stop-sshd: stopping sshd (pid $pid)"
  kill "$pid"
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
fi
rm -f "$DIR/sshd.pid"
echo "stop-sshd: stopped"
