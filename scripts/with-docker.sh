#!/usr/bin/env bash
# Runs a command (the test suite) with a Docker engine: scripts/start-docker.sh starts one when
# none answers, and the engine this started is stopped when the command ends, however it ends
# (exit, failure, Ctrl-C); an engine that was already running is left alone. The command's exit
# status is this script's.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dockerd=${TRADEMON_DOCKERD:-/usr/sbin/dockerd}   # overridable for tests/test_start_docker.py
pidfile=$(mktemp "${TMPDIR:-/tmp}/trademon-dockerd.XXXXXX")

# Gone, or exited and not yet reaped: an engine started by start-docker.sh is init's child, and a
# zombie still answers kill -0 until init gets to it (seconds on some machines).
stopped() {
  [ ! -e "/proc/$1" ] || [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" = Z ]
}

stop_engine() {
  local pid
  pid=$(cat "$pidfile" 2>/dev/null || true)
  rm -f "$pidfile"
  [ -n "$pid" ] || return 0   # none started here
  # Still the process start-docker.sh started (not a reused pid)?
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$dockerd" || return 0
  echo "with-docker: stopping the dockerd this command started (pid $pid)" >&2
  kill -TERM "$pid" 2>/dev/null || return 0
  local wait_s=${TRADEMON_DOCKERD_STOP_WAIT:-30}
  for _ in $(seq 1 $((wait_s * 10))); do stopped "$pid" && return 0; sleep 0.1; done
  echo "with-docker: dockerd (pid $pid) still runs ${wait_s} s after SIGTERM; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
}
trap stop_engine EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TRADEMON_DOCKERD_PIDFILE=$pidfile "$here/start-docker.sh"
"$@"
