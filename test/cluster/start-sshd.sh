#!/usr/bin/env bash
# Start an SSH server for the tests on 127.0.0.1:2222 with a throwaway host key and client key.
# Idempotent: installs openssh-server only when missing, creates keys only once, starts sshd only when its
# pid file does not name a live process. Needs root (it logs in as root with the client key).
#
# Usage: sudo test/cluster/start-sshd.sh   (stop with test/cluster/stop-sshd.sh)
# Folder: $FUNCX_TEST_SSH_DIR (default /tmp/funcx-test-ssh) holds
#   client_ed25519      the client's private key  -> FUNCX_TEST_SSH_KEY
#   known_hosts         "[127.0.0.1]:2222 ssh-ed25519 AAAA..." -> FUNCX_TEST_SSH_KNOWN_HOSTS
#   host_ed25519, sshd_config, sshd.pid, sshd.log
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

fail() { echo "start-sshd: ERROR: $*" >&2; exit 1; }
log() { echo "start-sshd: $*"; }

[ "$(id -u)" = 0 ] || fail "must run as root (it starts sshd and edits /root/.ssh/authorized_keys)"

# One run at a time: test files run in parallel and each may call this script.
mkdir -p /run/lock
# Daemons started below run under without_fds (lib.sh) so they keep no lock.
exec 9>/run/lock/funcx-start-sshd.lock
flock -w 300 9 || fail "another start-sshd.sh run holds /run/lock/funcx-start-sshd.lock"

DIR=${FUNCX_TEST_SSH_DIR:-/tmp/funcx-test-ssh}
PORT=2222
ADDR=127.0.0.1

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh-keygen >/dev/null; then
  log "installing openssh-server with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || fail "apt-get update failed"
  apt-get install -y -q openssh-server openssh-client || fail "apt-get install openssh-server failed"
fi

mkdir -p "$DIR" /run/sshd
chmod 0700 "$DIR"
chmod 0755 /run/sshd   # sshd's privilege-separation folder: must exist, root-owned, not group/world-writable

# Keys: created once, kept across runs so that known_hosts and authorized_keys stay valid.
[ -s "$DIR/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C funcx-test-host -f "$DIR/host_ed25519"
[ -s "$DIR/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C funcx-test-client -f "$DIR/client_ed25519"
chmod 0600 "$DIR/host_ed25519" "$DIR/client_ed25519"

cat >"$DIR/sshd_config.new" <<CONF
# Written by funcx-endpoint test/cluster/start-sshd.sh: a throwaway sshd for the tests, loopback only.
Port $PORT
ListenAddress $ADDR
HostKey $DIR/host_ed25519
PidFile $DIR/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
Subsystem sftp internal-sftp
CONF
config_changed=0
if ! cmp -s "$DIR/sshd_config.new" "$DIR/sshd_config"; then config_changed=1; fi
mv "$DIR/sshd_config.new" "$DIR/sshd_config"

# The client's public key in root's authorized_keys, once.
mkdir -p /root/.ssh
chmod 0700 /root/.ssh
touch /root/.ssh/authorized_keys
chmod 0600 /root/.ssh/authorized_keys
pub=$(cut -d' ' -f1,2 "$DIR/client_ed25519.pub")
if ! grep -qF "$pub" /root/.ssh/authorized_keys; then
  # A file without a final newline would glue our key onto its last line.
  [ -s /root/.ssh/authorized_keys ] && [ -n "$(tail -c1 /root/.ssh/authorized_keys)" ] && echo >>/root/.ssh/authorized_keys
  cat "$DIR/client_ed25519.pub" >>/root/.ssh/authorized_keys
  log "added the test client key to /root/.ssh/authorized_keys"
fi

# known_hosts in OpenSSH's form for a non-default port.
echo "[$ADDR]:$PORT $(cut -d' ' -f1,2 "$DIR/host_ed25519.pub")" >"$DIR/known_hosts"

/usr/sbin/sshd -t -f "$DIR/sshd_config" || fail "sshd -t rejected $DIR/sshd_config"

if [ -s "$DIR/sshd.pid" ] && kill -0 "$(cat "$DIR/sshd.pid")" 2>/dev/null; then
  # Reload only when sshd_config changed (SIGHUP re-executes sshd with the same pid; sessions stay).
  if [ "$config_changed" = 1 ]; then log "reloading sshd"; kill -HUP "$(cat "$DIR/sshd.pid")"; fi
else
  log "starting sshd on $ADDR:$PORT"
  without_fds /usr/sbin/sshd -f "$DIR/sshd_config" -E "$DIR/sshd.log" \
    || fail "sshd did not start (is port $PORT taken? see $DIR/sshd.log)"
fi

# Wait until a real login with the client key works (host key checked against our known_hosts).
deadline=$((SECONDS + 30))
until ssh -p "$PORT" -i "$DIR/client_ed25519" -o BatchMode=yes -o IdentitiesOnly=yes \
    -o UserKnownHostsFile="$DIR/known_hosts" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
    -o ConnectTimeout=3 root@"$ADDR" true 2>"$DIR/ssh-probe.err"; do
  [ $SECONDS -lt $deadline ] || fail "cannot log in to root@$ADDR:$PORT after 30 s: $(cat "$DIR/ssh-probe.err"); see $DIR/sshd.log"
  sleep 0.3
done
log "ready: root@$ADDR:$PORT"
echo "FUNCX_TEST_SSH_KEY=$DIR/client_ed25519"
echo "FUNCX_TEST_SSH_KNOWN_HOSTS=$DIR/known_hosts"
