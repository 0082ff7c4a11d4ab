"""Loopback stand-ins for what the tests cannot reach: the Telegram Bot API, a Slack incoming
webhook, an SMTP server and a Healthchecks.io-style heartbeat (dead man's switch) ping URL.
Each speaks the real protocol and records what it receives.

The Telegram stand-in answers like the real Bot API (``{"ok": true, "result": Message}``),
is as strict about the text as Telegram (HTML must parse with Telegram's tags, at most 4096
characters after entity parsing), and can be told to fail: HTTP 500, then 429 with
``parameters.retry_after``, for a while.
"""

from __future__ import annotations

import email
import email.policy
import html.parser
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

# The tags Telegram's HTML parse mode knows (https://core.telegram.org/bots/api#html-style).
TELEGRAM_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "span", "tg-spoiler", "tg-emoji", "blockquote"}
TELEGRAM_MAX_CHARS = 4096


class TelegramHTMLError(ValueError):
    pass


class _TelegramHTML(html.parser.HTMLParser):
    """Checks markup as Telegram does and counts the visible characters."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.chars = 0

    def handle_starttag(self, tag, attrs):
        if tag not in TELEGRAM_TAGS:
            raise TelegramHTMLError(f"Unsupported start tag \"{tag}\"")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            raise TelegramHTMLError(f"Unexpected end tag \"{tag}\"")
        self.stack.pop()

    def handle_data(self, data):
        if "<" in data:
            raise TelegramHTMLError("Unexpected character <")
        self.chars += len(data.encode("utf-16-le")) // 2  # Telegram counts UTF-16 code units

    def handle_entityref(self, name):
        if name not in ("lt", "gt", "amp", "quot"):
            raise TelegramHTMLError(f"Unsupported HTML entity &{name};")
        self.chars += 1

    def handle_charref(self, name):
        self.chars += 1


def telegram_visible_length(text: str) -> int:
    """Characters after entity parsing; raises TelegramHTMLError where Telegram would refuse."""
    if re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text):
        raise TelegramHTMLError("Can't find end of the entity starting at a bare &")
    p = _TelegramHTML()
    p.feed(text)
    p.close()
    if p.stack:
        raise TelegramHTMLError(f"Can't find end tag corresponding to start tag \"{p.stack[-1]}\"")
    return p.chars


def visible_text(text: str) -> str:
    """The message as the phone shows it: tags dropped, entities decoded."""
    import html as _html

    return _html.unescape(re.sub(r"<[^>]+>", "", text))


@dataclass
class Request:
    at: float
    path: str
    body: dict
    status: int


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1:<free port> with a handler function."""

    def __init__(self, handle):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = handle(self.path, self.headers.get("Content-Type", ""), raw)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args):  # quiet: the records are the log
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.lock = threading.Lock()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _decode(content_type: str, raw: bytes) -> dict:
    if "json" in content_type:
        return json.loads(raw or b"{}")
    return {k: v[0] for k, v in parse_qs(raw.decode()).items()}


def _truthy(v) -> bool:
    return v is True or str(v).lower() == "true"


class TelegramStandIn:
    """``POST /bot<token>/sendMessage`` like the Bot API. ``sent()`` lists delivered messages."""

    def __init__(self, token: str):
        self.token = token
        self.requests: list[Request] = []
        self._fail_until = 0.0
        self._fail_500 = 0
        self._retry_after = 1
        self._next_id = 1
        self._server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self._server.port}"

    def fail_for(self, seconds: float, first_500: int = 1, retry_after: int = 1) -> None:
        """For ``seconds``: the first ``first_500`` requests get HTTP 500, then 429 with retry_after."""
        with self._server.lock:
            self._fail_until = time.monotonic() + seconds
            self._fail_500 = first_500
            self._retry_after = retry_after

    def _handle(self, path: str, ctype: str, raw: bytes):
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
        body = _decode(ctype, raw) if m else {}
        with self._server.lock:
            status, answer = self._answer(m, body)
            self.requests.append(Request(time.time(), path.replace(self.token, "<token>"), body, status))
            return status, answer

    def _answer(self, m, body):
        if not m or m.group(1) != self.token:
            return 401 if m else 404, {"ok": False, "error_code": 401 if m else 404, "description": "Unauthorized" if m else "Not Found"}
        if m.group(2) != "sendMessage":
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: method {m.group(2)} not supported by the stand-in"}
        if time.monotonic() < self._fail_until:
            if self._fail_500 > 0:
                self._fail_500 -= 1
                return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
            ra = self._retry_after
            return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {ra}", "parameters": {"retry_after": ra}}
        text = body.get("text") or ""
        if not text.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if body.get("parse_mode") == "HTML":
            try:
                n = telegram_visible_length(text)
            except TelegramHTMLError as e:
                return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: can't parse entities: {e}"}
        else:
            n = len(text)
        if n > TELEGRAM_MAX_CHARS:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        mid, self._next_id = self._next_id, self._next_id + 1
        chat = int(body.get("chat_id", 0))
        return 200, {"ok": True, "result": {
            "message_id": mid, "date": int(time.time()), "text": text,
            "from": {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "trademon", "username": "trademon_bot"},
            "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup", "title": "trading"},
        }}

    def sent(self) -> list[dict]:
        """Delivered messages: text, chat_id, parse_mode, silent (disable_notification), at."""
        with self._server.lock:
            return [{"text": r.body.get("text", ""), "chat_id": r.body.get("chat_id"), "parse_mode": r.body.get("parse_mode"),
                     "silent": _truthy(r.body.get("disable_notification")), "at": r.at}
                    for r in self.requests if r.status == 200]

    def statuses(self) -> list[int]:
        with self._server.lock:
            return [r.status for r in self.requests]

    def close(self):
        self._server.close()


class SlackStandIn:
    """A Slack incoming webhook: POST JSON to the hook path, answer ``ok``."""

    def __init__(self, path: str = "/services/T0000/B0000/sLaCkFakeHookSecretForTests42"):
        self.path = path
        self.requests: list[Request] = []
        self._server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self._server.port}{path}"

    def _handle(self, path, ctype, raw):
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            body = {}
        status = 200 if path == self.path and body else (404 if path != self.path else 400)
        with self._server.lock:
            self.requests.append(Request(time.time(), path, body, status))
        return status, b"ok" if status == 200 else b"invalid_payload"

    def sent(self) -> list[dict]:
        with self._server.lock:
            return [r.body for r in self.requests if r.status == 200]

    def close(self):
        self._server.close()


class HeartbeatStandIn:
    """A Healthchecks.io-style ping URL (``https://hc-ping.com/<uuid>``): GET or POST to the
    check's path answers ``OK``; any other path 404 ``not found``. Records every ping."""

    def __init__(self, uuid: str = "5f1e1b6a-fake-4c1e-9a1e-heartbeat0042"):
        self.path = f"/{uuid}"
        self.requests: list[Request] = []
        self._server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self._server.port}{self.path}"

    def _handle(self, path, ctype, raw):
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        status = 200 if path == self.path else 404
        with self._server.lock:
            self.requests.append(Request(time.time(), path, body, status))
        return status, b"OK" if status == 200 else b"not found"

    def pings(self) -> list[Request]:
        with self._server.lock:
            return [r for r in self.requests if r.status == 200]

    def close(self):
        self._server.close()


@dataclass
class _Mail:
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    body: str
    login: str | None


@dataclass
class _SMTPHandler:
    messages: list[_Mail] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = [p.get_content() for p in msg.walk() if p.get_content_type() in ("text/plain", "text/html")]
        login = getattr(session.auth_data, "login", None)
        login = login.decode() if isinstance(login, bytes) else login
        self.messages.append(_Mail(envelope.mail_from, list(envelope.rcpt_tos), str(msg["Subject"]), "\n".join(parts), login))
        return "250 Message accepted for delivery"


class _SMTP(SMTP):
    # The challenges mail servers commonly send for AUTH LOGIN (aiosmtpd's own differ, and
    # Alertmanager's client only accepts these).
    AuthLoginUsernameChallenge = "Username:"
    AuthLoginPasswordChallenge = "Password:"


class _Controller(Controller):
    def factory(self):
        return _SMTP(self.handler, **self.SMTP_kwargs)


class SMTPStandIn:
    """An SMTP server (aiosmtpd) on loopback; accepts AUTH PLAIN/LOGIN with one user."""

    def __init__(self, username: str, password: str):
        from .procs import free_port

        self.username, self.password = username, password
        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's own deprecation chatter
        self.handler = _SMTPHandler()
        self.port = free_port()
        self.controller = _Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     authenticator=self._auth, auth_require_tls=False, auth_required=False)
        self.controller.start()
        self.smarthost = f"127.0.0.1:{self.port}"

    def _auth(self, server, session, envelope, mechanism, auth_data):
        ok = getattr(auth_data, "login", None) == self.username.encode() and getattr(auth_data, "password", None) == self.password.encode()
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    @property
    def messages(self) -> list[_Mail]:
        return list(self.handler.messages)

    def close(self):
        self.controller.stop()


class StandIns:
    """All three, with fake secrets, and the environment that points am-config at them."""

    TOKEN = "987654321:AAFakeTokenForTestsOnly_x9Yz"
    CHAT_ID = "-1001234567890"
    SMTP_USER = "alerts@trademon.test"
    SMTP_PASSWORD = "smtp-Fake-Passw0rd-For-Tests"

    def __init__(self):
        self.telegram = TelegramStandIn(self.TOKEN)
        self.slack = SlackStandIn()
        self.smtp = SMTPStandIn(self.SMTP_USER, self.SMTP_PASSWORD)
        self.heartbeat = HeartbeatStandIn()

    def env(self) -> dict[str, str]:
        return {
            "TELEGRAM_BOT_TOKEN": self.TOKEN, "TELEGRAM_CHAT_ID": self.CHAT_ID, "TELEGRAM_API_URL": self.telegram.url,
            "SLACK_WEBHOOK_URL": self.slack.url,
            "SMTP_SMARTHOST": self.smtp.smarthost, "SMTP_FROM": "trademon@trademon.test", "SMTP_TO": "trader@trademon.test",
            "SMTP_USERNAME": self.SMTP_USER, "SMTP_PASSWORD": self.SMTP_PASSWORD, "SMTP_REQUIRE_TLS": "false",
            "HEARTBEAT_URL": self.heartbeat.url,
        }

    def secrets(self) -> list[str]:
        """Values that must never appear in a log."""
        return [self.TOKEN, self.TOKEN.split(":")[1], self.slack.path.rsplit("/", 1)[1], self.SMTP_PASSWORD,
                self.heartbeat.path.lstrip("/")]

    def close(self):
        for s in (self.telegram, self.slack, self.smtp, self.heartbeat):
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
