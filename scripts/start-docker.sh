#!/usr/bin/env bash
# Makes a Docker engine answer for the container layer (tests/test_containers.py) when this
# machine allows it: as root, installs Debian's docker.io (engine and CLI) and debootstrap (the
# layer's local base image) when missing, and starts /usr/sbin/dockerd in the background.
# Not root: says what is missing and leaves it there; the layer's tests then FAIL (they never
# skip), unless deselected with -m "not containers".
set -euo pipefail
dockerd=${TRADEMON_DOCKERD:-/usr/sbin/dockerd}   # overridable for tests/test_start_docker.py
wait_s=${TRADEMON_DOCKERD_WAIT:-60}
engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
root() { [ "$(id -u)" = 0 ]; }

need=()
{ command -v docker >/dev/null 2>&1 && [ -x "$dockerd" ]; } || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  if ! root; then
    echo "start-docker: ${need[*]} missing; as root: apt-get install ${need[*]} (the container layer fails without them)" >&2
    exit 0
  fi
  echo "start-docker: installing ${need[*]} from Debian" >&2
  apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y "${need[@]}" >/dev/null
fi

engine_up && exit 0
if ! root; then
  echo "start-docker: no Docker engine answers and not root: start dockerd (the container layer fails without it)" >&2
  exit 0
fi
log=${TMPDIR:-/tmp}/trademon-dockerd.log
echo "start-docker: starting $dockerd (log: $log)" >&2
# setsid: the engine outlives this script (the test command execs pytest next).
setsid "$dockerd" >"$log" 2>&1 < /dev/null &
for _ in $(seq 1 "$wait_s"); do engine_up && exit 0; sleep 1; done
echo "start-docker: dockerd did not answer within $wait_s s; its log ($log) ends:" >&2
tail -n 20 "$log" >&2
exit 1
