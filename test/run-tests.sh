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
  # Every Debian package the suite needs, in one apt-get run (one `apt-get update`, not one per script).
  mapfile -t pkgs < <(grep -v '^\s*#' test/cluster/packages.txt | grep -v '^\s*$')
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "run-tests: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q -o DPkg::Lock::Timeout=600
    apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}"
  fi
  echo "run-tests: starting the test cluster and services (test/cluster/start-*.sh)"
  for script in test/cluster/start-*.sh; do bash "$script"; done
else
  echo "run-tests: not root: the integration tests that need Slurm, Grid Engine or sshd will fail and say what is missing" >&2
fi
export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine} SGE_CELL=${SGE_CELL:-default}

npm run build

# Unit tests first (fast), then the integration tests one file at a time (they share the test cluster).
node --test --test-concurrency=2 dist/test/unit/
node --test --test-concurrency=1 --test-timeout=240000 dist/test/integration/ dist/test/fuzz/ dist/test/security/ dist/test/chaos/
