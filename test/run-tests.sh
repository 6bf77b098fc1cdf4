#!/usr/bin/env bash
# `npm test`: installs what the tests need (npm packages; Debian's slurm-wlm, munge, openssh-server and
# gridengine when run as root), starts the test cluster, builds, and runs every test with Node's runner.
set -euo pipefail
cd "$(dirname "$0")/.."

# Install when node_modules is missing or older than the lock file (a pull that added a dependency).
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "run-tests: installing npm packages"
  npm ci --no-audit --no-fund
fi

if [ "$(id -u)" = 0 ]; then
  echo "run-tests: starting the test cluster (Slurm, Grid Engine, sshd on loopback)"
  bash test/cluster/start-slurm.sh
  bash test/cluster/start-gridengine.sh
  bash test/cluster/start-sshd.sh
else
  echo "run-tests: not root: the integration tests that need Slurm, Grid Engine or sshd will fail and say what is missing" >&2
fi
export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine} SGE_CELL=${SGE_CELL:-default}

npm run build

# Unit tests first (fast), then the integration tests one file at a time (they share the test cluster).
node --test --test-concurrency=2 dist/test/unit/
node --test --test-concurrency=1 --test-timeout=240000 dist/test/integration/ dist/test/fuzz/ dist/test/security/ dist/test/chaos/
