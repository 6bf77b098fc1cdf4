# Shared by test/cluster/start-*.sh (sourced).

# Run a command (a daemon or what starts one) with no open descriptor but 0, 1 and 2. A lock held by
# whoever called the script (its own `9>` lock, or `flock FILE cmd` around it) must not live on in a
# daemon: MariaDB kept flock(1)'s descriptor and with it every later caller of that lock waiting.
without_fds() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    "$@"
  )
}
