#!/usr/bin/env bash
# Installs the stack's binaries the tests run for real into .tools/ (project-local):
#   prometheus, promtool, alertmanager, amtool, docker-compose (v2; validates the compose file
#   and runs the container layer) and victoria-metrics (the long-term store), at the versions
#   named in scripts/versions.env, which are also the versions docker-compose.yml ships.
# They come from Debian's testing suite (versions.env's DEBIAN_SUITE): fetched with
# `apt-get download` through a private apt directory whose sources are this machine's own
# Debian entry with the suite renamed, so the system's apt setup is untouched and no mirror is
# named here. The Go binaries are static, so they run on bookworm. Idempotent: does nothing
# when the right versions are present; --force fetches again.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools
bin=$tools/bin
# shellcheck source=versions.env
. "$root/scripts/versions.env"
suite=$DEBIAN_SUITE
packages=(prometheus promtool prometheus-alertmanager docker-compose victoria-metrics)
want=(prometheus promtool alertmanager amtool docker-compose victoria-metrics)

# "prometheus, version X.Y.Z+ds1 (...)" -> X.Y.Z
version_of() { "$bin/$1" --version 2>&1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1; }
have_all() {
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done
  grep -q '^victoria-metrics ' "$tools/packages.txt" 2>/dev/null || return 1
  [ "$(version_of prometheus)" = "$PROMETHEUS_VERSION" ] && [ "$(version_of alertmanager)" = "$ALERTMANAGER_VERSION" ]
}

# Debian's Alertmanager build reads its default notification templates from this fixed path
# (no flag moves it) and exits without them. Link the unpacked ones there unless a system
# package already provides them.
link_am_templates() {
  local sys=/usr/share/prometheus/alertmanager
  [ -e "$sys/default.tmpl" ] && return 0
  mkdir -p "$(dirname "$sys")" && ln -sfn "$tools/root/usr/share/prometheus/alertmanager" "$sys" \
    || { echo "install-tools: cannot link $sys (needs root): Alertmanager will not start without it" >&2; return 1; }
}

if have_all && [ "${1:-}" != "--force" ]; then link_am_templates; exit 0; fi

src=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && grep -qiE '^URIs:.*debian/?$' "$f" && { src=$f; break; }
done
[ -n "$src" ] || { echo "install-tools: no Debian deb822 sources entry under /etc/apt/sources.list.d; this script needs Debian's apt" >&2; exit 1; }

apt_dir=$root/.apt
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs" "$bin"
# Keep only the main archive's stanza, with its suites replaced by the testing suite.
rm -f "$apt_dir"/sources.list.d/*.sources
awk 'BEGIN{RS=""; ORS="\n\n"} /URIs:[^\n]*debian\/?(\n|$)/ && !/security/' "$src" \
  | sed -E "s/^Suites:.*/Suites: $suite/" > "$apt_dir/sources.list.d/$suite.sources"
grep -q "Suites: $suite" "$apt_dir/sources.list.d/$suite.sources" || { echo "install-tools: could not derive a $suite entry from $src" >&2; exit 1; }

apt_opts=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
echo "install-tools: fetching ${packages[*]} from Debian $suite" >&2
apt-get "${apt_opts[@]}" -qq update
rm -f "$apt_dir"/debs/*.deb
(cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download "${packages[@]}")

rm -rf "$tools/root" && mkdir -p "$tools/root"
: > "$tools/packages.txt"
for deb in "$apt_dir"/debs/*.deb; do
  dpkg -x "$deb" "$tools/root"
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >> "$tools/packages.txt"   # e.g. "victoria-metrics 1.145.0+ds1-2"
done
for b in prometheus promtool amtool victoria-metrics; do
  ln -sf "$tools/root/usr/bin/$b" "$bin/$b"
done
ln -sf "$tools/root/usr/bin/prometheus-alertmanager" "$bin/alertmanager"
link_am_templates
# Debian ships compose v2 as a docker CLI plugin; it also runs standalone.
ln -sf "$tools/root/usr/libexec/docker/cli-plugins/docker-compose" "$bin/docker-compose"

for b in "${want[@]}"; do
  "$bin/$b" --version >/dev/null 2>&1 || "$bin/$b" version >/dev/null 2>&1 || { echo "install-tools: $bin/$b does not run" >&2; exit 1; }
done
# Tested versions are shipped versions: a suite that moved on must be noticed, not absorbed.
for pair in "prometheus:$PROMETHEUS_VERSION" "alertmanager:$ALERTMANAGER_VERSION"; do
  b=${pair%%:*}; v=${pair#*:}; got=$(version_of "$b")
  [ "$got" = "$v" ] || { echo "install-tools: Debian $suite has $b $got, scripts/versions.env pins $v: move the pin (and docker-compose.yml's image) after reading $b's release notes" >&2; exit 1; }
done
echo "install-tools: ready in $bin: $("$bin/prometheus" --version 2>&1 | head -1); $("$bin/alertmanager" --version 2>&1 | head -1)" >&2
