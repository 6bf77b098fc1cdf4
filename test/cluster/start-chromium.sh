#!/usr/bin/env bash
# Make sure Debian's headless Chromium is there for the browser tests (test/helpers/browser.ts drives
# /usr/bin/chromium with playwright-core; no browser is ever downloaded). Nothing to start: it checks that
# the browser runs. Idempotent: installs chromium only when missing. Needs root to install.
#
# Usage: sudo test/cluster/start-chromium.sh
set -euo pipefail

fail() { echo "start-chromium: ERROR: $*" >&2; exit 1; }
log() { echo "start-chromium: $*"; }

mkdir -p /run/lock
exec 9>/run/lock/funcx-start-chromium.lock
flock -w 600 9 || fail "another start-chromium.sh run holds /run/lock/funcx-start-chromium.lock"

if [ ! -x /usr/bin/chromium ]; then
  [ "$(id -u)" = 0 ] || fail "/usr/bin/chromium is missing and installing it needs root (apt-get install chromium)"
  log "installing chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=600 || fail "apt-get update failed"
  apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium || fail "apt-get install chromium failed"
fi

# The Debian wrapper script prints a harmless shell warning on some systems; only the version line matters.
version=$(/usr/bin/chromium --version 2>/dev/null | grep -m1 -i chromium || true)
[ -n "$version" ] || fail "/usr/bin/chromium --version printed nothing: the browser does not run"
log "ready: $version"
