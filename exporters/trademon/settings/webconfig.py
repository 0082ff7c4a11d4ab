"""Who may talk to a trademon service listening beyond loopback, read from the environment.

- ``TRADEMON_WEB_CONFIG_FILE``: a YAML file in the format of Prometheus's ``--web.config.file``
  (exporter-toolkit): ``tls_server_config: {cert_file, key_file}`` serves HTTPS;
  ``basic_auth_users: {name: bcrypt hash}`` asks for basic auth on every path but /healthz and /readyz.
  Relative paths are relative to the file. Make a hash with
  ``python3 -c 'import bcrypt, getpass; print(bcrypt.hashpw(getpass.getpass().encode(), bcrypt.gensalt()).decode())'``
  (or ``htpasswd -nBC 10 "" | tr -d ':\\n'``).
- ``TRADEMON_API_TOKEN`` (or ``TRADEMON_API_TOKEN_FILE``): a shared bearer token that every
  path but /healthz and /readyz then asks for as ``Authorization: Bearer <token>``; the
  control and webhook endpoints (the simulator's scenario switch and test hooks, the
  alert-sink's POST /alerts) take only the token, the other paths the token or basic auth.

Neither is set by default: the services listen on 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping

import yaml

from trademon.runtime import logs
from trademon.settings.env import ConfigError, env_str, secret

WEB_CONFIG_VARIABLE = "TRADEMON_WEB_CONFIG_FILE"
TOKEN_VARIABLE = "TRADEMON_API_TOKEN"
MIN_TOKEN_CHARS = 16
_KNOWN = {"tls_server_config", "basic_auth_users", "http_server_config"}


MAX_PASSWORD_CHECKS = 2  # bcrypt checks at once, each in a thread (never in the event loop)
MAX_WAITING_CHECKS = 32  # more waiting than this: refused at once (a flood of wrong passwords queues nothing)


class _Checks:
    """What every copy of a WebConfig shares: the successes seen and the checks in progress."""

    def __init__(self):
        self.salt = secrets.token_bytes(32)  # the cache keeps keyed digests, never a password's plain hash
        self.ok: set[bytes] = set()
        self.waiting = 0
        self.running: asyncio.Semaphore | None = None  # made in the event loop that uses it


@dataclass
class WebConfig:
    cert_file: str | None = None
    key_file: str | None = None
    users: dict[str, bytes] = field(default_factory=dict)  # name -> bcrypt hash
    token: str | None = None
    _checks: _Checks = field(default_factory=_Checks, repr=False)

    @property
    def tls(self) -> bool:
        return self.cert_file is not None

    async def basic_ok(self, user: str, password: str) -> bool:
        """bcrypt is slow by design (~50 ms at cost 10, ~250 ms at 12): it runs in a thread, at
        most MAX_PASSWORD_CHECKS at once, and successes are cached, as Prometheus does, so a
        scrape with the right password never waits behind a flood of wrong ones."""
        hashed = self.users.get(user)
        if hashed is None:
            return False
        c = self._checks
        secret_bytes = password.encode("utf-8", "surrogateescape")
        key = hmac.new(c.salt, user.encode("utf-8", "surrogateescape") + b"\0" + secret_bytes, hashlib.sha256).digest()
        if key in c.ok:
            return True
        if c.waiting >= MAX_WAITING_CHECKS:
            return False
        c.waiting += 1
        try:
            if c.running is None:
                c.running = asyncio.Semaphore(MAX_PASSWORD_CHECKS)
            async with c.running:
                ok = await asyncio.to_thread(_checkpw, secret_bytes, hashed)
        finally:
            c.waiting -= 1
        if ok:
            if len(c.ok) >= 64:  # bounded: a stolen password tried many ways cannot grow it
                c.ok.clear()
            c.ok.add(key)
        return ok


def _checkpw(password: bytes, hashed: bytes) -> bool:
    import bcrypt

    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False


def load(env: Mapping[str, str] | None = None) -> WebConfig:
    token = secret(TOKEN_VARIABLE, env)
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(TOKEN_VARIABLE, "***", f"shorter than {MIN_TOKEN_CHARS} characters",
                          "a random token, e.g. `openssl rand -hex 32`")
    logs.register_secret(token)
    wc = WebConfig(token=token)
    path = env_str(WEB_CONFIG_VARIABLE, env=env)
    if path is None:
        return wc
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(WEB_CONFIG_VARIABLE, path, f"cannot read it as YAML ({e})", "a Prometheus-style web config file") from None
    if not isinstance(doc, dict) or set(doc) - _KNOWN:
        raise ConfigError(WEB_CONFIG_VARIABLE, path, f"unknown keys {sorted(set(doc) - _KNOWN) if isinstance(doc, dict) else doc!r}",
                          ", ".join(sorted(_KNOWN)))
    base = Path(path).parent
    tls = doc.get("tls_server_config") or {}
    if tls:
        for key in ("cert_file", "key_file"):
            if not tls.get(key):
                raise ConfigError(WEB_CONFIG_VARIABLE, path, f"tls_server_config has no {key}", "both cert_file and key_file")
            p = base / tls[key]
            if not p.is_file():
                raise ConfigError(WEB_CONFIG_VARIABLE, path, f"tls_server_config.{key} {str(p)!r} is not a file", "a PEM file")
            setattr(wc, key, str(p))
    for user, hashed in (doc.get("basic_auth_users") or {}).items():
        if not isinstance(hashed, str) or not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(WEB_CONFIG_VARIABLE, path, f"basic_auth_users.{user} is not a bcrypt hash", "a hash starting $2a$, $2b$ or $2y$")
        wc.users[str(user)] = hashed.encode()
    return wc


@dataclass(frozen=True)
class Caller:
    """How a command calls a protected path of a trademon service on this host that runs with
    the same environment: ``scheme``, ``headers`` and ``verify`` for trademon.runtime.http."""
    scheme: str
    headers: dict[str, str]
    verify: ssl.SSLContext | bool


def caller(web: WebConfig) -> Caller:
    """HTTPS when the web config serves TLS, trusting exactly its certificate (the command dials
    127.0.0.1, which the certificate need not name, so the name is not checked: the pinned
    certificate is); the bearer token when one is set, as every path but the health checks takes it.
    No basic-auth password: the web config holds only its hash."""
    verify: ssl.SSLContext | bool = True
    if web.tls:
        verify = ssl.create_default_context(cafile=web.cert_file)
        verify.check_hostname = False
        verify.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a CA-issued certificate is pinned as it is
    return Caller("https" if web.tls else "http", bearer(web.token), verify)


def bearer(token: str | None) -> dict[str, str]:
    """The header every path but the health checks takes when TRADEMON_API_TOKEN is set (none without)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
