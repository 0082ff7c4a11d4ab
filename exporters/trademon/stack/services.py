"""The stack, described once: every service with its command, port, environment, health
check, restart policy and what it waits for.

``trademon native`` (single host and ``--ha``) starts from this description, and so do the
test stacks (tests/support), which may shorten intervals and nothing else.
docker-compose.yml, docker-compose.ha.yml and the Kubernetes base are written for their
engines and checked against it (tests/test_stack_description.py): a service, port,
variable or relabelling present in one and not the others fails that test.

The environment of a service has three kinds of variables:
- ``wiring``: addresses of other services, set by the stack. A value is a template: ``{name}``
  is the base URL of the service ``name`` (``http://alertmanager:9093`` in compose,
  ``http://127.0.0.1:9093`` natively). Those in ``overridable`` a user may point elsewhere
  in .env (compose: ``${VAR:-wiring}``); the rest are fixed.
- ``paths``: files and directories, which differ between a container and a checkout.
- ``settings``: what the user sets in .env, passed through as they are.
Besides those, a trademon service is told to listen on the stack's address (``listen``)
and, natively, on its port (``port_variable``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from collections.abc import Mapping

from trademon import contract
from trademon.settings.env import env_port, job_port, port_variable
from trademon.stack.scaleout import ALERTMANAGER_CLUSTER_PORT, VICTORIAMETRICS_PORT

# Variables every trademon service reads.
COMMON = ("TRADEMON_API_TOKEN", "TRADEMON_LOG_LEVEL")
# The channels Alertmanager's rendered config and the bot read.
TELEGRAM = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID")
# The bot's escalation ladder and its channels (trademon.bot.escalation).
ESCALATION = ("TRADEMON_BOT_ESCALATE", "TRADEMON_BOT_ESCALATE_SMS_TO", "TRADEMON_BOT_ESCALATE_CALL_TO", "TRADEMON_BOT_ESCALATE_CHAT_ID",
              "PUSHOVER_APP_TOKEN", "PUSHOVER_USER_KEY", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM")

# Second nodes of the HA layout natively: the first node's port + 100, so the pair reads as one (9090/9190).
SECOND = 100


@dataclass(frozen=True)
class Part:
    """One service of the stack."""

    name: str  # the compose service name; natively, its log file
    port: int  # where it listens (in its container; natively unless ``port_var`` moves it)
    health: str  # the path answering 2xx once it is up
    command: tuple[str, ...] = ()  # trademon's subcommand; empty for an engine
    engine: str | None = None  # prometheus, alertmanager, victoria-metrics
    port_var: str | None = None
    listen: str | None = None  # the variable of its listen address (trademon services)
    wiring: Mapping[str, str] = field(default_factory=dict)
    overridable: frozenset[str] = frozenset()
    paths: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    restart: bool = True  # compose: unless-stopped; natively: started again when it exits
    depends_on: Mapping[str, str] = field(default_factory=dict)  # name -> compose condition
    profile: str | None = None  # demo, live: only in that mode
    ha: bool = False  # only in the HA layout
    ha_wiring: Mapping[str, str] = field(default_factory=dict)  # what the HA layout sets otherwise
    ha_depends_on: Mapping[str, str] = field(default_factory=dict)  # what it waits for besides, in HA
    answers_as: tuple[str, ...] = ()  # jobs it answers for (the simulator, in the demo)
    cluster_port: int | None = None  # Alertmanager's gossip port
    cluster_port_var: str | None = None

    def health_url(self, base: str) -> str:
        return base + self.health


def _trademon(name: str, command: tuple[str, ...], listen: str, health: str = "/healthz", **kw) -> Part:
    port = contract.JOBS[name].port if name in contract.JOBS else kw.pop("port")
    return Part(name, port, health, command, listen=listen, port_var=kw.pop("port_var", port_variable(name)), **kw)


SYNTHETIC_SETTINGS = tuple(f"TRADEMON_SYNTHETIC_{s}" for s in (
    "CHECKS", "HEALTH_TARGETS", "BREAKER", "PIPELINE_STRATEGY", "SYMBOL",
    *(f"{check}_{what}" for check in ("CIRCUIT_BREAKER", "PIPELINE", "HEALTH", "WATCHDOG") for what in ("INTERVAL", "TIMEOUT"))))

PARTS: tuple[Part, ...] = (
    # The file webhook every Alertmanager receiver includes: one JSON line per notification.
    _trademon("alert-sink", ("alert-sink",), "TRADEMON_ALERT_SINK_HOST", paths=("TRADEMON_ALERT_SINK_FILE",), settings=COMMON),
    # Telegram's delivery (idles without TELEGRAM_BOT_TOKEN/TELEGRAM_CHAT_ID).
    _trademon("trademon-bot", ("bot",), "TRADEMON_BOT_HOST",
              wiring={"TRADEMON_BOT_ALERTMANAGER_URL": "{alertmanager}", "TRADEMON_BOT_PROMETHEUS_URL": "{prometheus}",
                      "TRADEMON_BOT_ALERT_SINK_URL": "{alert-sink}/alerts"},
              paths=("TRADEMON_BOT_STATE_DIR", "TRADEMON_BOT_CONFIG_ROOT"),
              settings=(*COMMON, *TELEGRAM, "TELEGRAM_API_URL", "TRADEMON_BOT_WEBHOOK_TOKEN", "TRADEMON_BOT_ALLOWED_CHAT_IDS",
                        "TRADEMON_BOT_ALLOWED_USER_IDS", "TRADEMON_BOT_MAX_SILENCE", "TRADEMON_BOT_SUMMARY_AT",
                        "TRADEMON_BOT_SUMMARY_TZ", "TRADEMON_BOT_SUMMARY_DAYS", "TRADEMON_BOT_TZ", "TRADEMON_BOT_GROUP_PER_MINUTE",
                        "GRAFANA_URL", "ALERTMANAGER_URL", *ESCALATION)),
    # Renders Alertmanager's config (calendar intervals) before Alertmanager starts, then daily; reloads it.
    _trademon("alertmanager-config", ("am-config", "--watch"), "TRADEMON_ALERTMANAGER_CONFIG_HOST", health="/readyz",
              wiring={"TRADEMON_AM_RELOAD_URL": "{alertmanager}/-/reload", "TRADEMON_AM_ALERT_SINK_URL": "{alert-sink}/alerts",
                      "TRADEMON_AM_BOT_URL": "{trademon-bot}/alerts"},
              ha_wiring={"TRADEMON_AM_RELOAD_URL": "{alertmanager}/-/reload,{alertmanager-b}/-/reload"},  # both read the file
              paths=("TRADEMON_AM_SOURCE", "TRADEMON_AM_OUT"),
              settings=(*COMMON, *TELEGRAM, "TRADEMON_BOT_WEBHOOK_TOKEN", "SLACK_WEBHOOK_URL", "SMTP_SMARTHOST", "SMTP_FROM",
                        "SMTP_TO", "SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_REQUIRE_TLS", "HEARTBEAT_URL", "GRAFANA_URL",
                        "ALERTMANAGER_URL", "TRADEMON_EXCHANGES", "TRADEMON_MARKET_HORIZON_DAYS", "TRADEMON_IB_MAINTENANCE",
                        "TRADEMON_IB_GATEWAY_RESTART")),
    Part("alertmanager", contract.JOBS["alertmanager"].port, "/-/ready", engine="alertmanager", paths=("ZONEINFO",),
         port_var=port_variable("alertmanager"), depends_on={"alertmanager-config": "service_healthy"},
         cluster_port=ALERTMANAGER_CLUSTER_PORT, cluster_port_var="TRADEMON_ALERTMANAGER_CLUSTER_PORT"),
    Part("alertmanager-b", contract.JOBS["alertmanager"].port, "/-/ready", engine="alertmanager", ha=True, paths=("ZONEINFO",),
         port_var="TRADEMON_ALERTMANAGER_B_PORT", depends_on={"alertmanager-config": "service_healthy"},
         cluster_port=ALERTMANAGER_CLUSTER_PORT, cluster_port_var="TRADEMON_ALERTMANAGER_B_CLUSTER_PORT"),
    Part("victoriametrics", VICTORIAMETRICS_PORT, "/health", engine="victoria-metrics", ha=True,
         port_var="TRADEMON_VICTORIAMETRICS_PORT"),
    # The demo: the simulator answers as the trader's services and the broker, on their ports.
    _trademon("sim", ("sim",), "TRADEMON_SIM_HOST", port=contract.SIM_CONTROL_PORT, port_var="TRADEMON_SIM_CONTROL_PORT",
              profile="demo", answers_as=(contract.API, contract.MD, contract.PM, contract.IB),
              wiring={"TRADEMON_SIM_PROMETHEUS_URL": "{prometheus}"},  # the loss limit in force (sim/limits.py)
              settings=(*COMMON, "TRADEMON_SIM_SPEED", "TRADEMON_SIM_SEED", "TRADEMON_SIM_SCENARIOS", "TRADEMON_SIM_ACCOUNTS",
                        "TRADEMON_SIM_SYMBOLS", "TRADEMON_SIM_STRATEGIES")),
    # Live: broker truth from IB Gateway / TWS.
    _trademon("ib-exporter", ("ib-exporter",), "TRADEMON_IB_EXPORTER_HOST", profile="live",
              settings=("TRADEMON_IB_HOST", "TRADEMON_IB_PORT", "TRADEMON_IB_CLIENT_ID", "TRADEMON_IB_ACCOUNTS", "TRADEMON_IB_SYMBOLS",
                        "TRADEMON_IB_EXPOSURE_LIMIT", "TRADEMON_IB_MARKET_DATA_TYPE", "TRADEMON_IB_STRATEGY_PATTERN",
                        "TRADEMON_IB_MAX_STRATEGIES", "TRADEMON_IB_CONTROLLER_URL", *COMMON)),
    # monitoring/config.yml's thresholds as series rules, rendered before Prometheus starts and on every
    # change of the file; reloads Prometheus (trademon.thresholds).
    _trademon("thresholds", ("thresholds", "--watch"), "TRADEMON_THRESHOLDS_HOST",
              wiring={"TRADEMON_THRESHOLDS_RELOAD_URL": "{prometheus}/-/reload"},
              ha_wiring={"TRADEMON_THRESHOLDS_RELOAD_URL": "{prometheus}/-/reload,{prometheus-b}/-/reload"},  # both load them
              paths=("TRADEMON_THRESHOLDS_ROOT", "TRADEMON_THRESHOLDS_OUT"), settings=COMMON),
    # Continuous synthetic checks; they watch the first node of each pair (the partner is scraped and alerted on).
    # Started before Prometheus, so every target answers its first scrape (at --speed 30 a
    # `for: 2m` is 4 s: a service still starting paged as ExporterDown); its checks have a
    # start-up grace for Prometheus and Alertmanager not answering yet.
    _trademon("synthetic", ("synthetic",), "TRADEMON_SYNTHETIC_HOST",
              wiring={"TRADEMON_SYNTHETIC_PROMETHEUS_URL": "{prometheus}", "TRADEMON_SYNTHETIC_ALERTMANAGER_URL": "{alertmanager}",
                      "TRADEMON_SYNTHETIC_API_URL": "{automatictrader-api}",
                      "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL": "{position-manager}"},
              overridable=frozenset({"TRADEMON_SYNTHETIC_PROMETHEUS_URL", "TRADEMON_SYNTHETIC_ALERTMANAGER_URL",
                                     "TRADEMON_SYNTHETIC_API_URL", "TRADEMON_SYNTHETIC_POSITION_MANAGER_URL"}),
              settings=(*COMMON, *SYNTHETIC_SETTINGS)),
    Part("prometheus", contract.JOBS["prometheus"].port, "/-/ready", engine="prometheus", port_var=port_variable("prometheus"),
         # alertmanager-config writes secrets/api_token, the scrapes' token (prometheus.yml)
         depends_on={"thresholds": "service_healthy", "alertmanager-config": "service_healthy"},
         ha_depends_on={"victoriametrics": "service_started"}),
    Part("prometheus-b", contract.JOBS["prometheus"].port, "/-/ready", engine="prometheus", ha=True,
         port_var="TRADEMON_PROMETHEUS_B_PORT",
         depends_on={"thresholds": "service_healthy", "victoriametrics": "service_started", "alertmanager-config": "service_healthy"}),
)

# Services that run in Docker only (no binary natively), each with why; the compose check
# knows them by name.
DOCKER_ONLY = {
    "exposure-check": "a start-up step for published ports; natively everything binds the --host given",
    "grafana": "no native Grafana", "loki": "no native Loki", "promtail": "no native Promtail",
    "alloy": "no native Alloy", "cadvisor": "containers only",
}

BY_NAME = {p.name: p for p in PARTS}


def parts(mode: str, ha: bool) -> list[Part]:
    """The services of a layout, in the order they start (each after what it depends on)."""
    return [p for p in PARTS if (p.profile is None or p.profile == mode) and (ha or not p.ha)]


def render(template: str, base: Mapping[str, str]) -> str:
    """``{name}`` -> the base URL of service ``name``."""
    return re.sub(r"\{([a-z-]+)\}", lambda m: base[m.group(1)], template)


def default_port(p: Part) -> int:
    """Natively, the second node of a pair is the first's port + 100 (each its own host port)."""
    return p.port + SECOND if p.ha and p.name.endswith("-b") else p.port


def ports(mode: str, ha: bool, env: Mapping[str, str]) -> dict[str, int]:
    """Where each service of the layout listens natively: its default unless its variable
    moves it. Keys: service names, the jobs the simulator answers as, ``<name>:cluster``."""
    out: dict[str, int] = {}
    for p in parts(mode, ha):
        out[p.name] = env_port(p.port_var, default_port(p), env) if p.port_var else default_port(p)
        for job in p.answers_as:
            out[job] = env_port(port_variable(job), contract.JOBS[job].port, env)
        if ha and p.cluster_port_var and p.cluster_port:
            base = p.cluster_port + (SECOND if p.name.endswith("-b") else 0)
            out[f"{p.name}:cluster"] = env_port(p.cluster_port_var, base, env)
    return out


def planned(mode: str, ha: bool, env: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """(what, the variable that moves it, port) of every port a layout binds, before anything starts."""
    out = []
    for p in parts(mode, ha):
        port = ports(mode, ha, env)
        out.append((p.name, p.port_var or "", port[p.name]))
        out += [(f"{p.name} as {job}", port_variable(job), port[job]) for job in p.answers_as]
        if f"{p.name}:cluster" in port:
            out.append((f"{p.name} gossip", p.cluster_port_var or "", port[f"{p.name}:cluster"]))
    return out


def scrape_targets(mode: str, ha: bool, host: str, port: Mapping[str, int], env: Mapping[str, str]) -> dict[str, list[str]]:
    """prometheus.yml's job -> targets natively: every job whose service runs here (live: the
    trader's services on their ports); in HA both nodes of each pair, so a dead one is seen
    by every replica."""
    jobs: dict[str, list[str]] = {j: [f"{host}:{job_port(j, env)}"] for j in contract.jobs_of_kind("trading")}
    for p in parts(mode, ha):
        job = p.name.removesuffix("-b") if p.ha and p.name.endswith("-b") else p.name
        if job in contract.JOBS:
            jobs.setdefault(job, []).append(f"{host}:{port[p.name]}")
        for j in p.answers_as:
            jobs[j] = [f"{host}:{port[j]}"]
    return jobs


def jobs(mode: str, ha: bool) -> list[str]:
    """The Prometheus jobs a layout scrapes natively."""
    return list(scrape_targets(mode, ha, "h", {n: 0 for n in ports(mode, ha, {})}, {}))


class Layout:
    """One layout of the description on one host: its services, where each listens, and the
    environment the stack sets for each."""

    def __init__(self, mode: str, ha: bool, host: str, env: Mapping[str, str]):
        self.mode, self.ha, self.host, self.env = mode, ha, host, env
        self.parts = parts(mode, ha)
        self.port = ports(mode, ha, env)
        h = f"[{host}]" if ":" in host else host
        self.base = {name: f"http://{h}:{p}" for name, p in self.port.items() if ":" not in name}

    def wiring(self, p: Part) -> dict[str, str]:
        """``p``'s wiring at this layout's addresses; an overridable one the user set is left to them."""
        templates = {**p.wiring, **(p.ha_wiring if self.ha else {})}
        return {var: render(t, self.base) for var, t in templates.items()
                if not (var in p.overridable and (self.env.get(var) or "").strip())}
