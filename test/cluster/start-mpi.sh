#!/usr/bin/env bash
# Open MPI for the MPI tests: installs openmpi-bin and libopenmpi-dev when missing and compiles a small MPI
# program (test/fixtures/mpi/hello.c) with mpicc into /opt/funcx-test/mpi-hello, which prints one line per rank:
# `rank R size S node N start T` (N is SLURMD_NODENAME, or the host name outside Slurm), then sleeps the seconds given
# as its first argument (default 0) and, when its second argument is a rank number, that rank exits 3 (a
# rank that dies). Idempotent: recompiles only when the source changed. Needs root and Debian 12.
#
# Usage: sudo test/cluster/start-mpi.sh
set -euo pipefail

fail() { echo "start-mpi: ERROR: $*" >&2; exit 1; }
log() { echo "start-mpi: $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs packages)"
mkdir -p /run/lock
exec 9>/run/lock/funcx-start-mpi.lock
flock -w 300 9 || fail "another start-mpi.sh run holds /run/lock/funcx-start-mpi.lock"

if ! command -v mpicc >/dev/null || ! command -v mpirun >/dev/null; then
  log "installing openmpi-bin and libopenmpi-dev with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q -o DPkg::Lock::Timeout=600 openmpi-bin libopenmpi-dev \
    || { apt-get update -q && apt-get install -y -q -o DPkg::Lock::Timeout=600 openmpi-bin libopenmpi-dev; } \
    || fail "apt-get install openmpi-bin libopenmpi-dev failed"
fi

HERE=$(cd "$(dirname "$0")" && pwd)
SRC="$HERE/../fixtures/mpi/hello.c"
[ -f "$SRC" ] || fail "missing $SRC"
OUT=/opt/funcx-test/mpi-hello
mkdir -p /opt/funcx-test
if [ ! -x "$OUT" ] || ! cmp -s "$SRC" "$OUT.c"; then
  log "compiling $SRC into $OUT"
  mpicc -O2 -o "$OUT.tmp" "$SRC" || fail "mpicc failed on $SRC"
  mv "$OUT.tmp" "$OUT"
  cp "$SRC" "$OUT.c"
fi
log "ready: $OUT ($(mpirun --version 2>/dev/null | head -1))"
