#!/usr/bin/env bash
# Installs the stack's binaries the tests run for real into .tools/ (project-local):
#   prometheus, promtool (Prometheus 2.53.x), alertmanager, amtool (Alertmanager 0.28.x),
#   docker-compose (v2, to validate the compose file; it needs no engine).
# They come from Debian 13 (trixie) packages: fetched with `apt-get download` through a
# private apt directory whose sources are this machine's own Debian entry with the suite
# renamed, so the system's apt setup is untouched and no mirror is named here. The Go
# binaries are static, so they run on bookworm. Idempotent: does nothing when present.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
tools=$root/.tools
bin=$tools/bin
packages=(prometheus promtool prometheus-alertmanager docker-compose)
want=(prometheus promtool alertmanager amtool docker-compose)

have_all() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }

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
# Keep only the main archive's stanza, with its suites replaced by trixie.
awk 'BEGIN{RS=""; ORS="\n\n"} /URIs:[^\n]*debian\/?(\n|$)/ && !/security/' "$src" \
  | sed -E 's/^Suites:.*/Suites: trixie/' > "$apt_dir/sources.list.d/trixie.sources"
grep -q 'Suites: trixie' "$apt_dir/sources.list.d/trixie.sources" || { echo "install-tools: could not derive a trixie entry from $src" >&2; exit 1; }

apt_opts=(
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir/cache"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
echo "install-tools: fetching ${packages[*]} from Debian trixie" >&2
apt-get "${apt_opts[@]}" -qq update
(cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download "${packages[@]}")

rm -rf "$tools/root" && mkdir -p "$tools/root"
for deb in "$apt_dir"/debs/*.deb; do dpkg -x "$deb" "$tools/root"; done
for b in prometheus promtool amtool; do
  ln -sf "$tools/root/usr/bin/$b" "$bin/$b"
done
ln -sf "$tools/root/usr/bin/prometheus-alertmanager" "$bin/alertmanager"
link_am_templates
# Debian ships compose v2 as a docker CLI plugin; it also runs standalone.
ln -sf "$tools/root/usr/libexec/docker/cli-plugins/docker-compose" "$bin/docker-compose"

for b in "${want[@]}"; do
  "$bin/$b" --version >/dev/null 2>&1 || "$bin/$b" version >/dev/null 2>&1 || { echo "install-tools: $bin/$b does not run" >&2; exit 1; }
done
echo "install-tools: ready in $bin: $("$bin/prometheus" --version 2>&1 | head -1); $("$bin/alertmanager" --version 2>&1 | head -1)" >&2
