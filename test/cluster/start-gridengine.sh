#!/usr/bin/env bash
# Start a real one-host Grid Engine cluster (Debian 12, gridengine 8.1.9): sge_qmaster and sge_execd on this
# machine, queue all.q (slots = nproc, shell /bin/bash) with a parallel environment `smp`, root may submit.
# Idempotent: installs only what is missing, changes only what differs, starts only what is not running.
#
# Usage: sudo test/cluster/start-gridengine.sh        (stop with test/cluster/stop-gridengine.sh)
# Environment for the client commands: SGE_ROOT=/var/lib/gridengine SGE_CELL=default. On Debian the
# qsub/qstat/qdel/qconf wrappers in /usr/bin fall back to exactly these values, so tests and providers work
# without them; export them anyway when calling /usr/lib/gridengine/* directly.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

fail() { echo "start-gridengine: ERROR: $*" >&2; exit 1; }
log() { echo "start-gridengine: $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts sge_qmaster/sge_execd)"

# One run at a time: test files run in parallel and each may call this script.
mkdir -p /run/lock
# Daemons started below run under without_fds (lib.sh) so they keep no lock.
exec 9>/run/lock/funcx-start-gridengine.lock
flock -w 300 9 || fail "another start-gridengine.sh run holds /run/lock/funcx-start-gridengine.lock"

export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common

# 1. Packages, only when a program is missing.
missing=0
for prog in /usr/sbin/sge_qmaster /usr/sbin/sge_execd /usr/bin/qsub /usr/bin/qconf /usr/bin/qstat; do
  [ -x "$prog" ] || missing=1
done
if [ "$missing" = 1 ]; then
  log "installing gridengine-master gridengine-exec gridengine-client with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || fail "apt-get update failed"
  apt-get install -y -q gridengine-master gridengine-exec gridengine-client || fail "apt-get install gridengine-* failed"
fi
[ -d "$COMMON" ] || fail "$COMMON does not exist: the gridengine-master package did not initialize the cell"

HOST=$(hostname -s)
NPROC=$(nproc)
WORK=$(mktemp -d /tmp/funcx-sge-setup.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
started=0

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
# qconf reports success on stderr ("root@vm added ..."): keep quiet unless it fails.
q() { local out; out=$("$@" 2>&1) || fail "'$*' failed: $out"; }

# 2. The master host and the alias: 127.0.0.1 resolves to `localhost` first, and Grid Engine refuses a client
# whose resolved name differs from the host it knows ("access denied (client IP resolved to host name ...)").
write_if_changed() { # write_if_changed FILE CONTENT
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    printf '%s\n' "$2" >"$1"; chown sgeadmin:sgeadmin "$1"; log "wrote $1"
  fi
}
write_if_changed "$COMMON/act_qmaster" "$HOST"
write_if_changed "$COMMON/host_aliases" "$HOST localhost"

# 3. sge_qmaster (it switches to sgeadmin itself), then wait until it answers.
QMASTER_PID=/var/spool/gridengine/qmaster/qmaster.pid
if ! pid_alive "$QMASTER_PID"; then
  log "starting sge_qmaster"
  without_fds /usr/sbin/sge_qmaster || fail "sge_qmaster did not start (see /var/spool/gridengine/qmaster/messages)"
  started=1
fi
for _ in $(seq 1 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done
qconf -sh >/dev/null 2>&1 || fail "sge_qmaster does not answer 'qconf -sh' after 20 s (see /var/spool/gridengine/qmaster/messages)"

# 4. Global configuration: root may submit (min_uid/min_gid 0). The file's name is the configuration's name.
qconf -sconf global | grep -v '^#' >"$WORK/global"
if ! grep -qE '^min_uid +0$' "$WORK/global" || ! grep -qE '^min_gid +0$' "$WORK/global"; then
  sed -i -E 's/^min_uid .*/min_uid                      0/; s/^min_gid .*/min_gid                      0/' "$WORK/global"
  q qconf -Mconf "$WORK/global"
  log "set min_uid 0 and min_gid 0"
fi
# Accounting written every second (flush_time, 15 s by default): qacct knows a finished job at once, and
# the tests that read it (gridengine-sites, GridEngineProvider) do not wait out the flush.
if ! grep -qE 'flush_time=00:00:01' "$WORK/global"; then
  sed -i -E 's/flush_time=[0-9:]+/flush_time=00:00:01/' "$WORK/global"
  grep -qE 'flush_time=00:00:01' "$WORK/global" || fail "no flush_time in reporting_params of 'qconf -sconf global'"
  q qconf -Mconf "$WORK/global"
  log "set reporting_params flush_time 00:00:01"
fi

# 5. Scheduler: run every second, so a job goes from qw to r in about a second.
qconf -ssconf >"$WORK/sconf"
if ! grep -qE '^schedule_interval +0:0:1$' "$WORK/sconf"; then
  sed -i -E 's/^schedule_interval .*/schedule_interval                 0:0:1/' "$WORK/sconf"
  q qconf -Msconf "$WORK/sconf"
  log "set schedule_interval 0:0:1"
fi

# 6. This host as execution host and submit host.
if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
  cat >"$WORK/exechost" <<EXEC
hostname              $HOST
load_scaling          NONE
complex_values        NONE
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EXEC
  q qconf -Ae "$WORK/exechost"
  log "added execution host $HOST"
fi
if ! qconf -ss 2>/dev/null | grep -qx "$HOST"; then
  q qconf -as "$HOST"
  log "added submit host $HOST"
fi

# 7. Parallel environment `smp` (a fresh install has none, and users write `#$ -pe smp N`).
if ! qconf -spl 2>/dev/null | grep -qx smp; then
  cat >"$WORK/smp" <<'PE'
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    /bin/true
stop_proc_args     /bin/true
allocation_rule    $pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
PE
  q qconf -Ap "$WORK/smp"
  log "added parallel environment smp"
fi

# 8. Queue all.q from the template. The template's pe_list names PEs that may not exist ("Parallel
# environment smp does not exist"), so it is set explicitly. load_thresholds NONE: a busy 2-core test machine
# would otherwise put the queue in alarm state (np_load_avg > 1.75) and stop scheduling.
if ! qconf -sql 2>/dev/null | grep -qx all.q; then
  qconf -sq | sed -E \
    -e "s/^qname .*/qname                 all.q/" \
    -e "s/^hostlist .*/hostlist              $HOST/" \
    -e "s/^slots .*/slots                 $NPROC/" \
    -e "s#^shell .*#shell                 /bin/bash#" \
    -e "s/^pe_list .*/pe_list               smp/" \
    -e "s/^load_thresholds .*/load_thresholds       NONE/" >"$WORK/all.q"
  q qconf -Aq "$WORK/all.q"
  log "added queue all.q (slots $NPROC, pe_list smp)"
elif ! qconf -sq all.q | grep -E '^pe_list' | grep -qw smp; then
  q qconf -aattr queue pe_list smp all.q
  log "added smp to all.q's pe_list"
fi

# 9. sge_execd (its spool must belong to sgeadmin). It names its spool folder after the name its address
# resolves to (here `localhost`, not the host name), so look for its pid file in any folder.
mkdir -p /var/spool/gridengine/execd
chown sgeadmin:sgeadmin /var/spool/gridengine/execd
execd_alive=0
for pf in /var/spool/gridengine/execd/*/execd.pid; do pid_alive "$pf" && execd_alive=1; done
if [ "$execd_alive" = 0 ]; then
  log "starting sge_execd"
  without_fds /usr/sbin/sge_execd || fail "sge_execd did not start (see /var/spool/gridengine/execd/*/messages)"
  started=1
fi

# 10. Wait until all.q@HOST is listed without the `u` (unknown: execd not heard from) state.
deadline=$((SECONDS + 60))
line=""
while [ $SECONDS -lt $deadline ]; do
  line=$(qstat -f -q "all.q@$HOST" 2>/dev/null | awk -v q="all.q@$HOST" '$1 == q' || true)
  # Columns: queuename qtype resv/used/tot load arch [states]; a sixth column holds state letters.
  if [ -n "$line" ] && ! printf '%s' "$line" | awk '{ exit !($6 ~ /[uEdD]/) }'; then break; fi
  line="${line:-not listed}"; sleep 0.5
done
[ $SECONDS -lt $deadline ] || fail "all.q@$HOST not ready after 60 s (qstat -f: $line); see /var/spool/gridengine/qmaster/messages"

# 11. After a (re)start, prove a job really runs: its output file must appear with the expected line.
if [ "$started" = 1 ]; then
  jid=$(qsub -terse -b y -j y -o "$WORK/probe.out" -N funcx-probe /bin/echo funcx-probe-ok 2>&1) \
    || fail "qsub of a probe job failed: $jid"
  deadline=$((SECONDS + 60))
  until grep -q funcx-probe-ok "$WORK/probe.out" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "probe job $jid did not run in 60 s (qstat: $(qstat | tr '\n' ' '))"
    sleep 0.3
  done
  log "probe job $jid ran"
fi
log "ready: queue all.q@$HOST, $NPROC slots, parallel environment smp (SGE_ROOT=$SGE_ROOT SGE_CELL=$SGE_CELL)"
