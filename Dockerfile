# The trademon services (simulator, IB exporter, synthetic checks, alert sink, am-config)
# in one image; docker-compose.yml picks the subcommand. Build context: the repository root
# (.dockerignore lets in only pyproject.toml, README.md and exporters/).
#
#   docker build -t trademon:0.1.0 .
#   docker run --rm trademon:0.1.0 --help
#
# No `# syntax=` line: it makes BuildKit fetch a frontend image from a registry, which fails
# offline. Air-gapped, build with any builder on a local Debian-based Python image:
#   DOCKER_BUILDKIT=0 docker build --build-arg PYTHON_IMAGE=<local image> -t trademon:0.1.0 .
# (tests/images/README.md: the suite does exactly this.)

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# --- build: install the package and its dependencies into a virtual environment ---------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/trademon
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporters ./exporters
# Every dependency ships wheels, so no compiler is needed even here. pip and setuptools are
# removed afterwards: the final image installs nothing.
# [all] includes [calendars]: exchange-calendars for am-config's market-open intervals. [gen]
# (pure Python, ~5 MB) lets `trademon gen` run in the image against a mounted checkout, so a
# duration or the currency can be changed without Python on the host (docs/thresholds.md).
RUN /opt/trademon/bin/pip install ".[all,gen]" \
 && /opt/trademon/bin/pip uninstall -y pip setuptools \
 && find /opt/trademon -name '__pycache__' -prune -exec rm -rf {} +

# --- final: the runtime only, as an unprivileged user -------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="trademon" \
      org.opencontainers.image.description="trademon services: simulator, IB exporter, synthetic checks, alert sink" \
      org.opencontainers.image.licenses="Apache-2.0"
# /var/lib/trademon: the alert sink's JSON-lines file (a named volume takes this owner).
# /alertmanager-config: what `trademon am-config` renders for Alertmanager, whose image
# runs as nobody (65534); the init step runs as nobody too, so Alertmanager can read the
# 0600 secret files it writes. /thresholds: the threshold rules `trademon thresholds` renders
# for Prometheus, whose image runs as nobody too (a new named volume takes this owner).
RUN groupadd --system --gid 10001 trademon \
 && useradd --system --uid 10001 --gid trademon --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin trademon \
 && install -d -o 10001 -g 10001 -m 0755 /var/lib/trademon \
 && install -d -o 65534 -g 65534 -m 0755 /alertmanager-config /thresholds
COPY --from=build /opt/trademon /opt/trademon
ENV PATH=/opt/trademon/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TRADEMON_HEALTH_URL=http://127.0.0.1:9111/healthz
# am-config needs the tz database for Alertmanager's time_intervals: fail the build, not the
# start, if the base image ever drops it.
RUN python -c "import zoneinfo; zoneinfo.ZoneInfo('America/New_York')" && trademon --help >/dev/null \
 && python -c "from trademon.alertmanager import markets; markets.check_exchange('XNYS')"
USER 10001:10001
WORKDIR /var/lib/trademon
# 8080-8082, 9110 and 9119: the simulator; 9110: ib-exporter; 9111: synthetic; 9112: alert-sink;
# 9113: am-config --watch.
EXPOSE 8080 8081 8082 9110 9111 9112 9113 9119
# Each service sets TRADEMON_HEALTH_URL to its own /healthz (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['TRADEMON_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["trademon"]
CMD ["--help"]
