#!/usr/bin/env bash
# Makes a Docker engine answer for the container layer (tests/test_containers.py) when this
# machine allows it: as root, installs Debian's docker.io (engine and CLI) and debootstrap (the
# layer's local base image) when missing, the compose v2 CLI plugin when `docker compose` is
# missing (the quick start's `docker compose --profile demo up -d` fails with "unknown flag:
# --profile" without it), and starts /usr/sbin/dockerd in the background. With
# TRADEMON_DOCKERD_PIDFILE set, a dockerd it starts has its pid written there, so that
# scripts/with-docker.sh stops it when the suite ends; an engine already running is left alone.
# Not root: says what is missing and leaves it there; the layer's tests then FAIL (they never
# skip), unless deselected with -m "not containers".
set -euo pipefail
root_dir=$(cd "$(dirname "$0")/.." && pwd)
dockerd=${TRADEMON_DOCKERD:-/usr/sbin/dockerd}   # overridable for tests/test_start_docker.py
wait_s=${TRADEMON_DOCKERD_WAIT:-60}
# Where the compose plugin goes when Debian's own package is compose v1 (bookworm's 1.29 is):
# a directory the docker CLI searches, and the pinned v2 that scripts/install-tools.sh unpacked.
plugin_dir=${TRADEMON_COMPOSE_PLUGIN_DIR:-/usr/local/lib/docker/cli-plugins}
pinned_plugin=${TRADEMON_COMPOSE_PLUGIN:-$root_dir/.tools/root/usr/libexec/docker/cli-plugins/docker-compose}
engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
compose_up() { docker compose version >/dev/null 2>&1; }
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

# The compose v2 plugin: Debian 13+'s docker-compose package is it
# (/usr/libexec/docker/cli-plugins/docker-compose); where the package is still v1, the pinned one.
if ! compose_up; then
  if ! root; then
    echo "start-docker: \`docker compose\` (the v2 plugin) is missing; as root: apt-get install docker-compose (Debian 13+)," \
         "or put a docker-compose v2 binary at ~/.docker/cli-plugins/docker-compose (docs/docker.md)" >&2
  elif apt-cache policy docker-compose 2>/dev/null | grep -Eq '^ +Candidate: +(1:)?[2-9]\.'; then
    echo "start-docker: installing Debian's docker-compose (the compose v2 plugin)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y docker-compose >/dev/null
  elif [ -x "$pinned_plugin" ]; then
    echo "start-docker: Debian's docker-compose here is v1; installing the pinned v2 plugin into $plugin_dir" >&2
    mkdir -p "$plugin_dir" && install -m 0755 "$pinned_plugin" "$plugin_dir/docker-compose"
  else
    echo "start-docker: no compose v2 plugin to install (run scripts/install-tools.sh first)" >&2
  fi
fi

engine_up && exit 0
if ! root; then
  echo "start-docker: no Docker engine answers and not root: start dockerd (the container layer fails without it)" >&2
  exit 0
fi
# In the checkout (git-ignored): the suite leaves nothing of its own outside it.
log=${TRADEMON_DOCKERD_LOG:-$root_dir/.cache/dockerd.log}
mkdir -p "$(dirname "$log")"
echo "start-docker: starting $dockerd (log: $log)" >&2
# setsid: the engine outlives this script (the test command execs pytest next).
setsid "$dockerd" >"$log" 2>&1 < /dev/null &
# Not a group leader (a background job of a script), so setsid execs in place: $! is dockerd.
[ -z "${TRADEMON_DOCKERD_PIDFILE:-}" ] || echo $! >"$TRADEMON_DOCKERD_PIDFILE"
# Polled every 0.2 s: an engine that answers is used at once (a 1 s poll cost each start a second).
for _ in $(seq 1 $((wait_s * 5))); do engine_up && exit 0; sleep 0.2; done
echo "start-docker: dockerd did not answer within $wait_s s; its log ($log) ends:" >&2
tail -n 20 "$log" >&2
exit 1
