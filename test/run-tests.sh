#!/usr/bin/env bash
# `npm test`: installs what the tests need (npm packages; as root, the Debian packages in
# test/cluster/packages.txt: Slurm with slurmdbd and MariaDB, Grid Engine, sshd, PostgreSQL, Open MPI,
# Chromium), starts the test cluster and services, builds, and runs every test with Node's runner.
#
# Independent steps overlap to keep a fresh machine under 20 minutes: npm packages install while apt-get
# runs, and the build and unit tests run while the cluster starts. Each step's output goes to a log under
# $LOGS, printed when the step ends (whole on failure, its tail otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/funcx-run-tests.XXXXXX")
started=$(date +%s)

# Run "$@" in the background, output to $LOGS/$name.log; sets the variable named $name to its pid.
step() {
  local name=$1
  shift
  ("$@") >"$LOGS/$name.log" 2>&1 &
  printf -v "pid_$name" '%s' "$!"
  echo "run-tests: $name started ($(($(date +%s) - started)) s)"
}

# Wait for a step; print its log (the tail when it passed); fail the run when it failed.
finish() {
  local name=$1 pid_var="pid_$1" rc=0
  wait "${!pid_var}" || rc=$?
  if [ "$rc" = 0 ]; then
    tail -n 8 "$LOGS/$name.log" | sed "s/^/  $name| /"
    echo "run-tests: $name done ($(($(date +%s) - started)) s)"
  else
    sed "s/^/  $name| /" "$LOGS/$name.log"
    echo "run-tests: $name FAILED (exit $rc); whole log: $LOGS/$name.log" >&2
    exit "$rc"
  fi
}

npm_packages() {
  # Install when node_modules is missing or older than the lock file (a pull that added a dependency).
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "installing npm packages"
    npm ci --no-audit --no-fund
  else
    echo "npm packages are up to date"
  fi
}

debian_packages() {
  # Every Debian package the suite needs, in one apt-get run (one `apt-get update`, not one per script).
  local pkgs missing=() p
  mapfile -t pkgs < <(grep -v '^\s*#' test/cluster/packages.txt | grep -v '^\s*$')
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "Debian packages are installed"
    return
  fi
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=600
  apt-get install -y -q -o DPkg::Lock::Timeout=600 "${missing[@]}"
}

start_cluster() {
  local script
  for script in test/cluster/start-*.sh; do bash "$script"; done
}

build_and_unit_tests() {
  npm run build
  node --test --test-concurrency=2 --test-timeout=240000 dist/test/unit/
}

root=0
[ "$(id -u)" = 0 ] && root=1
[ "$root" = 1 ] || echo "run-tests: not root: the integration tests that need Slurm, Grid Engine, sshd, PostgreSQL, MPI or Chromium will fail and say what is missing" >&2

step npm npm_packages
[ "$root" = 1 ] && step apt debian_packages
finish npm
[ "$root" = 1 ] && finish apt

step unit build_and_unit_tests
[ "$root" = 1 ] && step cluster start_cluster
finish unit
[ "$root" = 1 ] && finish cluster

export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine} SGE_CELL=${SGE_CELL:-default}
# The integration tests one file at a time: they share the test cluster.
echo "run-tests: integration tests ($(($(date +%s) - started)) s)"
node --test --test-concurrency=1 --test-timeout=240000 dist/test/integration/ dist/test/fuzz/ dist/test/security/ dist/test/chaos/
echo "run-tests: all passed in $(($(date +%s) - started)) s"
