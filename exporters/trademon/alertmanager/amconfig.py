"""Render the Alertmanager configuration Alertmanager actually runs (``trademon am-config``).

Alertmanager reads no environment variables, so this takes the project's
``alertmanager/alertmanager.yml`` and ``alertmanager/templates/*.tmpl`` plus the
environment (.env) and writes a self-contained directory:

    OUT/alertmanager.yml      the config; secrets only referenced as *_file paths
    OUT/templates/*.tmpl      the templates with GRAFANA_URL / ALERTMANAGER_URL filled in
    OUT/secrets/*             one secret per file, mode 0600 (directory 0700)
    OUT/zoneinfo/...          the time zones the time_intervals name (Alertmanager's image
                              has no tz database; point ZONEINFO at this directory)
    OUT/market_schedule.json  the exchange sessions behind the ``market-open`` intervals and
                              their horizon (trademon.alertmanager.markets; `am-config --watch` exports them)

In compose it runs as ``am-config --watch`` (trademon.alertmanager.amwatch): it renders before
Alertmanager starts, into a volume that Alertmanager mounts at the same path, then daily. An
integration (Telegram, Slack, email) whose settings are missing or invalid is
left out with a JSON log line saying what to set; the file webhook always stays, so
Alertmanager starts and every notification is still recorded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import json
import logging
import os
import re
import shutil
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from datetime import datetime, UTC
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

import yaml

from trademon.runtime import logs
from trademon.settings import webconfig
from trademon.settings import paths, values
from trademon.settings.env import ConfigError, env_str, secret, url

if TYPE_CHECKING:  # only for an annotation: markets needs the calendars extra
    from trademon.alertmanager import markets

log = logging.getLogger("trademon.amconfig")

DEFAULT_OUT = "/alertmanager-config"
MAX_LINK_URL = 200  # the Telegram template's length budget counts on this
_MARKER = re.compile(r'(\{\{-? \$\w+ := )(?:"(?:[^"\\]|\\.)*"|\.ExternalURL)( -?\}\}\{\{/\* trademon:(GRAFANA_URL|ALERTMANAGER_URL) \*/\}\})')


class Skip(Exception):
    """An integration cannot be configured; the message says which variable to set."""

    def __init__(self, message: str, level: int = logging.WARNING):
        super().__init__(message)
        self.level = level


@dataclass
class Settings:
    """The environment, read once; secrets registered so no log line can show them."""

    env: Mapping[str, str]

    def get(self, name: str) -> str | None:
        return env_str(name, env=self.env)

    def secret(self, name: str) -> str | None:
        try:
            value = secret(name, env=self.env)
        except ConfigError as e:
            raise Skip(str(e), logging.ERROR) from None
        logs.register_secret(value)
        return value

    def require(self, *names: str) -> None:
        missing = [n for n in names if self.get(n) is None and self.get(f"{n}_FILE") is None]
        if missing:
            raise Skip(f"{', '.join(missing)} not set (in .env, or NAME_FILE naming a file)")

    # After require(): NAME_FILE satisfies it, but only secrets are read from a file, and a
    # secret's file may be empty. These two say so instead of passing None on.
    def value(self, name: str) -> str:
        """A required plain setting."""
        v = self.get(name)
        if v is None:
            raise Skip(f"{name} not set (in .env; NAME_FILE is read for secrets only)")
        return v

    def required_secret(self, name: str) -> str:
        v = self.secret(name)
        if v is None:
            raise Skip(f"{name} not set (in .env, or {name}_FILE naming a file that is not empty)")
        return v


class SecretFiles:
    """Writes each secret once into OUT/secrets with mode 0600.

    Each file is replaced whole (a running Alertmanager reads them when it sends, and
    `am-config --watch` renders again daily: it never sees a missing or half-written one);
    ``prune()`` then removes the secrets no longer configured."""

    def __init__(self, out: Path):
        self.dir = out / "secrets"
        self.written: set[str] = set()

    def write(self, name: str, value: str) -> str:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        path = self.dir / name
        tmp = self.dir / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # an existing file keeps its mode otherwise
            os.write(fd, value.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self.written.add(name)
        return str(path)

    def prune(self) -> None:
        """A secret no longer configured must not linger in the volume."""
        if self.dir.is_dir():
            for old in self.dir.iterdir():
                if old.is_file() and old.name not in self.written:
                    old.unlink()


def _telegram(cfg: dict, s: Settings, files: SecretFiles) -> None:
    s.require("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID")
    token = s.secret("TELEGRAM_BOT_TOKEN")
    chat = s.value("TELEGRAM_CHAT_ID")
    try:
        chat_id = values.telegram_chat_id(chat)
    except ValueError:
        raise Skip(str(ConfigError("TELEGRAM_CHAT_ID", chat, "not a Telegram chat id", values.CHAT_ID_ALLOWED)), logging.ERROR) from None
    if not token or not values.is_bot_token(token):
        raise Skip(f"TELEGRAM_BOT_TOKEN: not a bot token (expected {values.BOT_TOKEN_ALLOWED})", logging.ERROR)
    cfg.pop("bot_token", None)
    cfg["bot_token_file"] = files.write("telegram_bot_token", token)
    cfg["chat_id"] = chat_id
    api = s.get("TELEGRAM_API_URL")  # a self-hosted Bot API server (and the tests' stand-in)
    if api:
        cfg["api_url"] = _checked_url("TELEGRAM_API_URL", api)


def _slack(cfg: dict, s: Settings, files: SecretFiles) -> None:
    s.require("SLACK_WEBHOOK_URL")
    url = s.required_secret("SLACK_WEBHOOK_URL")
    _checked_url("SLACK_WEBHOOK_URL", url, show=False)
    cfg.pop("api_url", None)
    cfg["api_url_file"] = files.write("slack_webhook_url", url)


def _email(cfg: dict, s: Settings, files: SecretFiles) -> None:
    s.require("SMTP_SMARTHOST", "SMTP_FROM", "SMTP_TO")
    smarthost = s.value("SMTP_SMARTHOST")
    if not re.fullmatch(r"[^\s:]+:\d{1,5}", smarthost):
        raise Skip(str(ConfigError("SMTP_SMARTHOST", smarthost, "not host:port", "e.g. smtp.gmail.com:587")), logging.ERROR)
    cfg.update(smarthost=smarthost, **{"from": s.value("SMTP_FROM")}, to=s.value("SMTP_TO"))
    user = s.get("SMTP_USERNAME")
    password = s.secret("SMTP_PASSWORD")
    cfg.pop("auth_password", None)
    if user and password:
        cfg["auth_username"] = user
        cfg["auth_password_file"] = files.write("smtp_password", password)
    elif user or password:
        raise Skip("SMTP_USERNAME and SMTP_PASSWORD: set both (or neither, for a relay without login)")
    else:
        cfg.pop("auth_username", None)
        cfg.pop("auth_password_file", None)
    tls = s.get("SMTP_REQUIRE_TLS")
    if tls is not None:
        if tls.lower() not in ("true", "false"):
            raise Skip(str(ConfigError("SMTP_REQUIRE_TLS", tls, "not true/false", "true (default) or false")), logging.ERROR)
        cfg["require_tls"] = tls.lower() == "true"


def _checked_url(name: str, value: str, show: bool = True, example: str = "https://hooks.slack.com/services/...") -> str:
    try:
        return url(name, value)
    except ConfigError as e:
        msg = str(e) if show else f"{name}: not an http(s) URL; allowed: {example}"
        raise Skip(msg, logging.ERROR) from None


# The file of TRADEMON_API_TOKEN that Prometheus sends to every trademon scrape target
# (prometheus/prometheus.yml's `authorization: credentials_file`). Always written, empty without
# a token: Prometheus refuses a config whose credentials_file is missing, and with an empty one
# it sends a bare "Bearer", which a service without a token ignores.
PROMETHEUS_TOKEN = "api_token"


def token_file(out: Path) -> Path:
    """Where render() writes the token file for Prometheus (``out``: am-config's output folder)."""
    return out / "secrets" / PROMETHEUS_TOKEN


def _alert_sink_token(receiver: dict, s: Settings, files: SecretFiles, alert_sink_url: str | None) -> None:
    """With TRADEMON_API_TOKEN set, the alert-sink asks for it: Alertmanager sends it from a file."""
    token = s.secret(webconfig.TOKEN_VARIABLE)
    if not token:
        return
    for w in receiver.get("webhook_configs", []):
        if urlsplit(w["url"]).hostname == "alert-sink" or (alert_sink_url and w["url"] == alert_sink_url):
            w.setdefault("http_config", {})["authorization"] = {
                "type": "Bearer", "credentials_file": files.write("alert_sink_token", token)}


INTEGRATIONS = {"telegram_configs": _telegram, "slack_configs": _slack, "email_configs": _email}
BOT_HOST = "trademon-bot"  # the compose service; its webhook_configs entry is Telegram's delivery
HEARTBEAT_RECEIVER = "heartbeat"  # the dead man's switch (alertmanager.yml)


def _heartbeat(cfg: dict, s: Settings, files: SecretFiles) -> None:
    """The external heartbeat's ping URL (a Healthchecks.io check, Dead Man's Snitch...): its
    path is the check's secret, so it goes into a 0600 file like the other secrets."""
    s.require("HEARTBEAT_URL")
    url = s.required_secret("HEARTBEAT_URL")
    _checked_url("HEARTBEAT_URL", url, show=False, example="https://hc-ping.com/<uuid>")
    cfg.pop("url", None)
    cfg["url_file"] = files.write("heartbeat_url", url)


def _fill_heartbeat(receiver: dict, s: Settings, files: SecretFiles) -> None:
    try:
        for c in receiver.get("webhook_configs", []):
            _heartbeat(c, s, files)
    except Skip as e:
        receiver.pop("webhook_configs", None)  # a receiver with no integration sends nothing
        # A message of its own: not a notification channel, and the log's repeat limiter
        # counts lines per message.
        log.log(e.level, "dead man's switch left out", extra={"receiver": receiver["name"], "reason": str(e)})


def _bot_webhook(cfg: dict, s: Settings, files: SecretFiles, bot_url: str | None) -> None:
    """Telegram goes through `trademon bot`: Alertmanager holds only the webhook's bearer
    token (derived from the bot token unless TRADEMON_BOT_WEBHOOK_TOKEN is set), never the
    bot token itself, whose value Alertmanager's logs print on failed deliveries."""
    from trademon.bot.config import bot_token, chat_id, webhook_token

    s.require("TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID")
    try:
        logs.register_secret(bot_token(s.env))
        chat_id("TELEGRAM_CHAT_ID", s.get("TELEGRAM_CHAT_ID") or "")
        token = webhook_token(s.env)
        assert token is not None  # bot_token() above raised without a bot token to derive it from
    except ConfigError as e:
        raise Skip(f"{e.variable}: {e.problem}; allowed: {e.allowed}" if e.variable == "TELEGRAM_BOT_TOKEN" else str(e), logging.ERROR) from None
    api = s.get("TELEGRAM_API_URL")  # the bot's setting, checked here too: a bot that cannot start gets no webhook
    if api:
        _checked_url("TELEGRAM_API_URL", api)
    logs.register_secret(token)
    cfg["http_config"] = {"authorization": {"type": "Bearer", "credentials_file": files.write("bot_webhook_token", token)}}
    if bot_url:
        cfg["url"] = bot_url


def _bot_webhooks(receiver: dict, s: Settings, files: SecretFiles, bot_url: str | None, left_out: list[dict]) -> None:
    hooks = receiver.get("webhook_configs", [])
    for w in [w for w in hooks if urlsplit(w["url"]).hostname == BOT_HOST]:
        try:
            _bot_webhook(w, s, files, bot_url)
        except Skip as e:
            hooks.remove(w)
            left_out.append({"receiver": receiver["name"], "integration": "telegram", "reason": str(e), "level": e.level})


def render_config(source: dict, out: Path, env: Mapping[str, str], alert_sink_url: str | None = None,
                  bot_url: str | None = None) -> tuple[dict, list[dict]]:
    """The final config and what was left out (one dict per integration, also logged)."""
    cfg = json.loads(json.dumps(source))  # a deep copy
    s = Settings(env)
    files = SecretFiles(out)
    left_out: list[dict] = []
    for receiver in cfg.get("receivers", []):
        if receiver["name"] == HEARTBEAT_RECEIVER:
            _fill_heartbeat(receiver, s, files)
            continue
        for key, fill in INTEGRATIONS.items():
            if key not in receiver:
                continue
            try:
                for c in receiver[key]:
                    fill(c, s, files)
            except Skip as e:
                del receiver[key]
                left_out.append({"receiver": receiver["name"], "integration": key.removesuffix("_configs"), "reason": str(e), "level": e.level})
        _bot_webhooks(receiver, s, files, bot_url, left_out)
        if alert_sink_url:
            for w in receiver.get("webhook_configs", []):
                if urlsplit(w["url"]).hostname == "alert-sink":
                    w["url"] = alert_sink_url
        _alert_sink_token(receiver, s, files, alert_sink_url)
    files.write(PROMETHEUS_TOKEN, s.secret(webconfig.TOKEN_VARIABLE) or "")
    files.prune()
    # One line per integration and reason, naming its receivers: one per receiver would pass the
    # log's repeat limit (5 alike) with the stack's receivers and lose some.
    grouped: dict[tuple, list[str]] = {}
    for item in left_out:
        grouped.setdefault((item["integration"], item["reason"], item["level"]), []).append(item["receiver"])
    for (integration, reason, level), names in grouped.items():
        log.log(level, "receiver integration left out", extra={"integration": integration, "receivers": names, "reason": reason})
    cfg["templates"] = [str(out / "templates" / "*.tmpl")]
    return cfg, left_out


def render_templates(src_dir: Path, out_dir: Path, env: Mapping[str, str]) -> None:
    """Copy the templates, filling in the link base URLs."""
    urls = {}
    for name in ("GRAFANA_URL", "ALERTMANAGER_URL"):
        value = env_str(name, env=env)
        if value is not None:
            try:
                urls[name] = url(name, value, max_len=MAX_LINK_URL)
            except ConfigError as e:  # a bad link must not stop alerting: keep the default
                log.error("link URL ignored", extra={"reason": str(e)})
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.tmpl"):
        old.unlink()
    for path in sorted(src_dir.glob("*.tmpl")):
        text = path.read_text(encoding="utf-8")

        def fill(m: re.Match) -> str:
            value = urls.get(m.group(3))
            return m.group(0) if value is None else f"{m.group(1)}{json.dumps(value)}{m.group(2)}"

        (out_dir / path.name).write_text(_MARKER.sub(fill, text), encoding="utf-8")


def copy_zoneinfo(cfg: dict, out_dir: Path) -> None:
    """Copy the tz database files the time_intervals name (Go reads ZONEINFO=<this dir>)."""
    for interval in cfg.get("time_intervals", []):
        for spec in interval.get("time_intervals", []):
            name = spec.get("location")
            if not name or name in ("UTC", "Local"):
                continue
            src = _zone_file(name)
            dst = out_dir / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)


def _zone_file(name: str) -> Path:
    for base in zoneinfo.TZPATH:
        p = Path(base) / name
        if p.is_file():
            return p
    try:  # the tzdata package, where the system has no tz database
        import importlib.resources

        parts = name.split("/")
        ref = importlib.resources.files("tzdata.zoneinfo").joinpath(*parts)
        if ref.is_file():
            return Path(str(ref))
    except ModuleNotFoundError:
        pass
    raise ConfigError("time_intervals location", name, "no tz database file found", "install tzdata (apt-get install tzdata, or pip install tzdata)")


SCHEDULE_FILE = "market_schedule.json"
# A test's market calendar: (exchanges, now, horizon_days) -> Schedule; it gets exchanges None.
MakeSchedule = Callable[[list[str] | None, datetime, int], "markets.Schedule"]


def apply_market_calendar(cfg: dict, out: Path, env: Mapping[str, str], now: datetime,
                          make_schedule: MakeSchedule | None = None) -> markets.Schedule | None:
    """Replace the source's fallback ``market-open`` interval (weekdays, no holidays) with the
    exchange calendar's sessions up to the horizon, and write OUT/market_schedule.json.
    Without exchange-calendars the fallback stays, with a warning saying what to install."""
    from trademon.alertmanager import markets

    names = [t["name"] for t in cfg.get("time_intervals", [])]
    if markets.INTERVAL_NAME not in names:
        return None
    try:
        if make_schedule is None:
            sched = markets.schedule(markets.exchanges_from_env(env), now, markets.horizon_days_from_env(env))
        else:  # a test's calendar: it picks its own exchanges
            sched = make_schedule(None, now, markets.horizon_days_from_env(env))
    except markets.CalendarUnavailable as e:
        log.warning("market calendar unavailable: weekday market hours without holidays", extra={"reason": str(e)})
        (out / SCHEDULE_FILE).unlink(missing_ok=True)
        return None
    generated = {t["name"]: t for t in sched.intervals()}
    cfg["time_intervals"] = [t for t in cfg["time_intervals"] if t["name"] not in generated] + list(generated.values())
    tmp = out / (SCHEDULE_FILE + ".tmp")
    tmp.write_text(json.dumps(sched.as_json()), encoding="utf-8")
    os.replace(tmp, out / SCHEDULE_FILE)
    log.info("market calendar rendered", extra={"exchanges": list(sched.exchanges), "horizon_end": sched.end.isoformat(),
                                                "periods": len(sched.periods)})
    return sched


def render(source_dir: Path, out: Path, env: Mapping[str, str] | None = None, alert_sink_url: str | None = None,
           now: datetime | None = None, make_schedule: MakeSchedule | None = None, bot_url: str | None = None) -> Path:
    """Write OUT/alertmanager.yml (and templates, secrets, zoneinfo, market schedule); return
    its path. ``now`` and ``make_schedule`` (exchanges, now, horizon_days) -> Schedule are for tests."""
    env = os.environ if env is None else env
    src = source_dir / "alertmanager.yml"
    if not src.is_file():
        raise ConfigError("--source", str(source_dir), "no alertmanager.yml in it", "the project's alertmanager/ directory")
    source = yaml.safe_load(src.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    render_templates(source_dir / "templates", out / "templates", env)
    cfg, _ = render_config(source, out, env, alert_sink_url, bot_url)
    apply_market_calendar(cfg, out, env, now or datetime.now(UTC), make_schedule)
    copy_zoneinfo(cfg, out / "zoneinfo")
    target = out / "alertmanager.yml"
    tmp = target.with_suffix(".yml.tmp")
    tmp.write_text("# Rendered by `trademon am-config` from alertmanager/alertmanager.yml; do not edit.\n"
                   + yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    os.replace(tmp, target)  # Alertmanager never sees a half-written file
    return target


def render_for_native(root: Path, out: Path, env: Mapping[str, str] | None = None, alert_sink_url: str | None = None,
                      bot_url: str | None = None) -> Path:
    """The rendered config for `trademon native` and the end-to-end tests."""
    return render(root / "alertmanager", out, env, alert_sink_url, bot_url=bot_url)


def default_source() -> str:
    return str(paths.config_root() / "alertmanager")
