#!/usr/bin/env bash
# Start a real Slurm cluster on this one machine: munge, MariaDB and slurmdbd (accounting, for sacct),
# slurmctld and three emulated nodes (n1, n2, n3: three `slurmd -N` on loopback). Idempotent: installs only what is missing, rewrites the configuration only
# when it changed, starts only the daemons that are not running. Needs root and Debian 12 (slurm-wlm 22.05).
#
# Usage: sudo test/cluster/start-slurm.sh        (stop with test/cluster/stop-slurm.sh)
# After it: sinfo shows partition `debug` with 3 idle nodes (and `tiny`, the same nodes but at most 1 per job:
# a job asking for more pends with reason PartitionNodeLimit); `sbatch`, `squeue`, `scancel`, `sacct` work as root.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

fail() { echo "start-slurm: ERROR: $*" >&2; exit 1; }
log() { echo "start-slurm: $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs packages and starts munged/slurmctld/slurmd)"

# One run at a time: test files run in parallel and each may call this script.
mkdir -p /run/lock
# Daemons started below run under without_fds (lib.sh) so they keep no lock.
exec 9>/run/lock/funcx-start-slurm.lock
flock -w 300 9 || fail "another start-slurm.sh run holds /run/lock/funcx-start-slurm.lock"

# 1. Packages, only when a program is missing (apt-get update only then: CI machines start with empty lists).
missing=0
for prog in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sinfo /usr/bin/sbatch /usr/sbin/slurmdbd /usr/sbin/mariadbd; do
  [ -x "$prog" ] || missing=1
done
if [ "$missing" = 1 ]; then
  log "installing slurm-wlm, munge, slurmdbd and mariadb-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || fail "apt-get update failed"
  apt-get install -y -q -o DPkg::Lock::Timeout=600 slurm-wlm munge slurmdbd mariadb-server || fail "apt-get install slurm-wlm munge slurmdbd mariadb-server failed"
fi

HOST=$(hostname -s)
CONF=/etc/slurm/slurm.conf

# 2. munge: a 1 KiB random key (kept when it exists), /run/munge, munged as the munge user.
mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
  log "writing a new munge key"
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge /etc/munge/munge.key /run/munge /var/lib/munge /var/log/munge
chmod 0700 /etc/munge
chmod 0400 /etc/munge/munge.key
chmod 0755 /run/munge

pid_alive() { # pid_alive PIDFILE: true when the file names a live process
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

if ! pid_alive /run/munge/munged.pid; then
  log "starting munged"
  # Stale socket/pid files from a killed munged make the new one refuse to start.
  rm -f /run/munge/munged.pid /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock
  without_fds runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
fi
for _ in $(seq 1 50); do
  munge -n </dev/null | unmunge >/dev/null 2>&1 && break
  sleep 0.1
done
munge -n </dev/null | unmunge >/dev/null 2>&1 || fail "munge does not answer (see /var/log/munge/munged.log)"

# 2b. MariaDB for slurmdbd (no systemd: mysqld_safe in the background), a database and a user for slurm.
DB_PASS=funcx-test-accounting
mkdir -p /run/mysqld /var/log/mysql
chown mysql:mysql /run/mysqld /var/log/mysql
if ! mysqladmin --protocol=socket ping >/dev/null 2>&1; then
  if [ ! -d /var/lib/mysql/mysql ]; then
    log "initialising the MariaDB data folder"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null || fail "mariadb-install-db failed"
  fi
  log "starting MariaDB"
  without_fds_bg setsid nohup /usr/bin/mysqld_safe --bind-address=127.0.0.1 >/var/log/mysql/funcx-mysqld_safe.log 2>&1 </dev/null
  for _ in $(seq 1 120); do
    mysqladmin --protocol=socket ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  mysqladmin --protocol=socket ping >/dev/null 2>&1 || fail "MariaDB did not answer within 60 s (see /var/log/mysql/funcx-mysqld_safe.log)"
fi
mysql --protocol=socket -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '${DB_PASS}'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;" \
  || fail "could not create the slurm accounting database in MariaDB"

# 2c. slurmdbd on that database; the cluster registered in it before slurmctld starts.
DBD_CONF=/etc/slurm/slurmdbd.conf
NEW_DBD_CONF=$(cat <<CONF
# Written by funcx-endpoint test/cluster/start-slurm.sh: accounting for the test cluster.
AuthType=auth/munge
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=${DB_PASS}
StorageLoc=slurm_acct_db
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
CONF
)
mkdir -p /etc/slurm /run/slurm /var/log/slurm
chown slurm:slurm /run/slurm /var/log/slurm
if [ ! -f "$DBD_CONF" ] || [ "$(cat "$DBD_CONF")" != "$NEW_DBD_CONF" ]; then
  log "writing $DBD_CONF"
  if pid_alive /run/slurm/slurmdbd.pid; then
    pid=$(cat /run/slurm/slurmdbd.pid); kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  printf '%s\n' "$NEW_DBD_CONF" >"$DBD_CONF"
fi
chown slurm:slurm "$DBD_CONF"
chmod 0600 "$DBD_CONF"
if ! pid_alive /run/slurm/slurmdbd.pid; then
  log "starting slurmdbd"
  without_fds /usr/sbin/slurmdbd || fail "slurmdbd did not start (see /var/log/slurm/slurmdbd.log)"
fi
# 3. slurm.conf for three emulated nodes on loopback. CPUs come from the machine (slurmd -C).
CPUS=$(/usr/sbin/slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n1)
[ -n "$CPUS" ] || fail "could not read CPUs from 'slurmd -C'"
NEW_CONF=$(cat <<CONF
# Written by funcx-endpoint test/cluster/start-slurm.sh: a 3-node test cluster on loopback.
ClusterName=funcx-test
SlurmctldHost=${HOST}
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
SchedulerParameters=sched_interval=1
MinJobAge=300
NodeName=n[1-3] NodeHostname=${HOST} NodeAddr=127.0.0.1 Port=[17001-17003] CPUs=${CPUS} RealMemory=4000
PartitionName=debug Nodes=n[1-3] Default=YES MaxTime=INFINITE State=UP
PartitionName=tiny Nodes=n[1-3] MaxNodes=1 MaxTime=INFINITE State=UP
CONF
)

mkdir -p /etc/slurm /run/slurm /var/log/slurm /var/spool/slurmctld /var/spool/slurmd/n1 /var/spool/slurmd/n2 /var/spool/slurmd/n3
chown slurm:slurm /run/slurm /var/log/slurm /var/spool/slurmctld

DAEMON_PIDS=(/run/slurm/slurmctld.pid /run/slurm/slurmd-n1.pid /run/slurm/slurmd-n2.pid /run/slurm/slurmd-n3.pid)
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$NEW_CONF" ]; then
  log "writing $CONF"
  # Daemons read slurm.conf only at start: restart the ones running with the old file.
  for pf in "${DAEMON_PIDS[@]}"; do
    if pid_alive "$pf"; then
      pid=$(cat "$pf"); log "restarting: stopping pid $pid ($pf)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
  printf '%s\n' "$NEW_CONF" >"$CONF"
  chmod 0644 "$CONF"
fi

# The cluster registered in the accounting (sacctmgr reads slurm.conf, so after it) before slurmctld starts.
for _ in $(seq 1 120); do
  sacctmgr -n -P list cluster format=cluster >/dev/null 2>&1 && break
  sleep 0.5
done
clusters=$(sacctmgr -n -P list cluster format=cluster 2>/dev/null) || fail "slurmdbd does not answer sacctmgr (see /var/log/slurm/slurmdbd.log)"
if ! printf '%s\n' "$clusters" | grep -qx 'funcx-test'; then
  log "registering cluster funcx-test in the accounting"
  sacctmgr -i add cluster funcx-test >/dev/null || fail "sacctmgr add cluster funcx-test failed"
fi

# 4. slurmctld, then the three slurmd (each forks into the background and writes its pid file).
if ! pid_alive /run/slurm/slurmctld.pid; then
  log "starting slurmctld"
  without_fds /usr/sbin/slurmctld || fail "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
fi
for n in n1 n2 n3; do
  if ! pid_alive "/run/slurm/slurmd-$n.pid"; then
    log "starting slurmd -N $n"
    without_fds /usr/sbin/slurmd -N "$n" || fail "slurmd -N $n did not start (see /var/log/slurm/slurmd-$n.log)"
  fi
done

# 5. Wait until the three nodes answer. On a fresh start that is `idle 3`; when the cluster was already up and
# jobs run on it, busy nodes (alloc, mix, comp) count as ready too, so a second run does not wait for them.
# Nodes left drained/down by an earlier run (e.g. killed daemons) are resumed once.
deadline=$((SECONDS + 60))
resumed=0
state=""
while [ $SECONDS -lt $deadline ]; do
  state=$(sinfo -h -o '%t %D' 2>/dev/null | tr '\n' ';' || true)
  ready=$(printf '%s' "$state" | tr ';' '\n' | awk '$1 ~ /^(idle|mix|alloc|comp)$/ { n += $2 } END { print n + 0 }')
  if [ "$ready" = 3 ]; then
    log "ready: partition debug, nodes n[1-3] up (sinfo: ${state%;})"
    exit 0
  fi
  if [ $resumed = 0 ] && printf '%s' "$state" | grep -qE '(^|;)(drain|drng|down)[*~#]? '; then
    log "resuming nodes left in state: ${state%;}"
    scontrol update nodename='n[1-3]' state=resume 2>/dev/null || true
    resumed=1
  fi
  sleep 0.5
done
fail "nodes not ready after 60 s (sinfo -h -o '%t %D' says: '${state:-nothing}'); see /var/log/slurm/slurmctld.log and /var/log/slurm/slurmd-n*.log"
