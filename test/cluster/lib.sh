# Shared by test/cluster/start-*.sh (sourced).

# Close every descriptor but 0, 1 and 2 of the current (sub)shell.
close_inherited_fds() {
  local path fd
  for path in /proc/$BASHPID/fd/*; do
    fd=${path##*/}
    if [ "$fd" -gt 2 ] && [ -e "/proc/$BASHPID/fd/$fd" ]; then exec {fd}>&-; fi
  done
}

# Run a command (a daemon or what starts one) with no open descriptor but 0, 1 and 2. A lock held by
# whoever called the script (its own `9>` lock, or `flock FILE cmd` around it) must not live on in a
# daemon: MariaDB kept flock(1)'s descriptor and with it every later caller of that lock waiting.
# The subshell becomes the command (exec) unless it is a shell function, so nothing is left behind.
without_fds() {
  (
    close_inherited_fds
    if [ "$(type -t "$1")" = function ]; then "$@"; else exec "$@"; fi
  )
}

# The same in the background (do not add `&`: a backgrounded function call would leave a shell behind
# holding every descriptor). $! is the command's pid.
without_fds_bg() {
  (
    close_inherited_fds
    exec "$@"
  ) &
}
