"""Loopback stand-ins for what the tests cannot reach: the Telegram Bot API, a Slack incoming
webhook, an SMTP server, a Healthchecks.io-style heartbeat (dead man's switch) ping URL, and
the bot's escalation channels: Pushover's message API and a Twilio-compatible REST API (SMS
and voice calls). Each speaks the real protocol and records what it receives.

The Telegram stand-in answers like the real Bot API (``{"ok": true, "result": Message}``),
is as strict about the text as Telegram (HTML must parse with Telegram's tags, at most 4096
characters after entity parsing), and can be told to fail: HTTP 500, then 429 with
``parameters.retry_after``, for a while; or to keep a group's flood limit (``flood_limit``:
20 messages a minute, edits included, 429 with retry_after past it).
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

from tests.support.procs import serve

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

    def __init__(self, handle, with_headers: bool = False):
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                args = (self.path, self.headers.get("Content-Type", ""), raw)
                status, body = handle(*args, self.headers) if with_headers else handle(*args)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if not isinstance(body, bytes) else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (a long poll at shutdown)
                    pass

            do_GET = do_POST

            def log_message(self, *args):  # quiet: the records are the log
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = serve(self.httpd)
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
    """The Bot API surface trademon uses, like Telegram answers it (``{"ok": true, "result": ...}``
    or ``{"ok": false, "error_code", "description", "parameters"}``):

    sendMessage (HTML checked, 4096 limit, inline keyboards), editMessageText,
    editMessageReplyMarkup ("message is not modified" when nothing changes), sendPhoto
    (multipart; the PNG kept), answerCallbackQuery, and getUpdates as a long poll: a new
    getUpdates ends one still waiting with 409 Conflict ("terminated by other getUpdates
    request"), as Telegram does when two processes poll one token. The test plays the
    trader with ``command()`` and ``press()``; ``fail_for()`` makes sendMessage fail. The
    refusals for good, as Telegram words them: ``refuse("token")`` (the token revoked: 401 to
    every method), ``refuse("blocked")`` (403 to sendMessage), ``refuse("chat")`` (400 chat not
    found), ``refuse("migrated")`` (400 with migrate_to_chat_id); ``refuse(None)`` ends it.
    """

    METHODS = {"sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto", "answerCallbackQuery", "getUpdates", "getMe"}

    def __init__(self, token: str):
        self.token = token
        self.requests: list[Request] = []
        self._fail_until = 0.0
        self._refusal: str | None = None
        self._fail_500 = 0
        self._retry_after = 1
        self._fail_chat: int | None = None
        self._flood: tuple[int, float] | None = None  # (messages, per seconds) a group takes; see flood_limit
        self._next_id = 1
        self.messages: dict[int, dict] = {}      # message_id -> the message as it stands (edits applied)
        self.photos: list[dict] = []
        self.callback_answers: dict[str, dict] = {}
        self._updates: list[dict] = []
        self._next_update = 1
        self._poll_gen = 0
        self.conflicts = 0
        self._cond = threading.Condition()
        self._server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self._server.port}"

    def fail_for(self, seconds: float, first_500: int = 1, retry_after: int = 1, chat_id: int | None = None) -> None:
        """For ``seconds``: the first ``first_500`` sendMessage requests get HTTP 500, then 429 with retry_after;
        with ``chat_id``, only the sends to that chat (Telegram's flood limit is per chat)."""
        with self._server.lock:
            self._fail_until = time.monotonic() + seconds
            self._fail_500 = first_500
            self._retry_after = retry_after
            self._fail_chat = chat_id

    FLOOD_METHODS = ("sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto")

    def flood_limit(self, per_minute: int = 20, minute: float = 60.0) -> None:
        """Enforce Telegram's flood limit of a group (a negative chat id): past ``per_minute``
        messages (sends and edits alike) in any ``minute`` seconds, 429 "Too Many Requests:
        retry after N" with ``parameters.retry_after``, as Telegram answers. ``minute`` shorter
        than 60 s compresses time for a test."""
        with self._server.lock:
            self._flood = (per_minute, minute)

    def _flooded(self, method: str, body: dict):
        """The 429 for a send past the group's flood limit, or None (the lock held)."""
        if self._flood is None or method not in self.FLOOD_METHODS or not str(body.get("chat_id", "")).startswith("-"):
            return None
        limit, per = self._flood
        now = time.time()
        taken = [r.at for r in self.requests if r.status == 200 and r.path.rsplit("/", 1)[-1] in self.FLOOD_METHODS
                 and str(r.body.get("chat_id")) == str(body.get("chat_id")) and r.at > now - per]
        if len(taken) < limit:
            return None
        ra = max(1, int(taken[-limit] + per - now + 0.999))
        return self._error(429, f"Too Many Requests: retry after {ra}", retry_after=ra)

    def max_in_window(self, chat_id: int, per: float) -> int:
        """The most messages (sends and edits) Telegram took for ``chat_id`` within any ``per`` seconds."""
        with self._server.lock:
            at = sorted(r.at for r in self.requests if r.status == 200 and r.path.rsplit("/", 1)[-1] in self.FLOOD_METHODS
                        and str(r.body.get("chat_id")) == str(chat_id))
        return max((sum(1 for t in at[i:] if t < start + per) for i, start in enumerate(at)), default=0)

    REFUSALS = {
        "token": (401, "Unauthorized", {}),
        "blocked": (403, "Forbidden: bot was blocked by the user", {}),
        "chat": (400, "Bad Request: chat not found", {}),
        "migrated": (400, "Bad Request: group chat was upgraded to a supergroup chat", {"migrate_to_chat_id": -1001234567890}),
    }

    def refuse(self, what: str | None) -> None:
        with self._server.lock:
            if what is not None and what not in self.REFUSALS:
                raise ValueError(f"refuse({what!r}): one of {sorted(self.REFUSALS)} or None")
            self._refusal = what

    def _refused(self, method: str):
        """The error Telegram answers ``method`` with under the current refusal, or None."""
        if self._refusal is None or (self._refusal != "token" and method not in ("sendMessage", "sendPhoto")):
            return None
        code, description, params = self.REFUSALS[self._refusal]
        return self._error(code, description, **params)

    def _handle(self, path: str, ctype: str, raw: bytes):
        m = re.fullmatch(r"/bot([^/]+)/(\w+)", path)
        files: dict = {}
        if m and ctype.startswith("multipart/form-data"):
            body, files = _multipart(ctype, raw)
        else:
            body = _decode(ctype, raw) if m else {}
        for key in ("reply_markup", "allowed_updates", "link_preview_options"):
            if isinstance(body.get(key), str):  # form-encoded requests send JSON-serialized fields
                body[key] = json.loads(body[key])
        with self._server.lock:
            refused = self._refused(m.group(2)) if m else None
        if refused is not None:
            status, answer = refused
        elif m and m.group(1) == self.token and m.group(2) == "getUpdates":
            status, answer = self._get_updates(body)
        else:
            with self._server.lock:
                status, answer = self._answer(m, body, files)
        with self._server.lock:
            self.requests.append(Request(time.time(), path.replace(self.token, "<token>"), body, status))
        return status, answer

    @staticmethod
    def _error(code: int, description: str, **params):
        doc = {"ok": False, "error_code": code, "description": description}
        if params:
            doc["parameters"] = params
        return code, doc

    def _answer(self, m, body, files):
        if not m or m.group(1) != self.token:
            return self._error(401, "Unauthorized") if m else self._error(404, "Not Found")
        method = m.group(2)
        if method not in self.METHODS:
            return self._error(404, "Not Found")
        if method == "getMe":
            return 200, {"ok": True, "result": self._bot()}
        flooded = self._flooded(method, body)
        if flooded is not None:
            return flooded
        if method == "answerCallbackQuery":
            self.callback_answers[str(body.get("callback_query_id"))] = body
            return 200, {"ok": True, "result": True}
        if method == "sendMessage" and time.monotonic() < self._fail_until and (
                self._fail_chat is None or str(body.get("chat_id")) == str(self._fail_chat)):
            if self._fail_500 > 0:
                self._fail_500 -= 1
                return self._error(500, "Internal Server Error")
            ra = self._retry_after
            return self._error(429, f"Too Many Requests: retry after {ra}", retry_after=ra)
        if method == "sendPhoto":
            photo = files.get("photo")
            if not photo or not photo[:8] == b"\x89PNG\r\n\x1a\n":
                return self._error(400, "Bad Request: wrong file identifier/HTTP URL specified")
            err = self._check_text(body.get("caption") or " ", body.get("parse_mode"), 1024)
            if err:
                return err
            msg = self._store(body, caption=body.get("caption", ""))
            self.photos.append({"chat_id": body.get("chat_id"), "caption": body.get("caption", ""), "png": photo, "at": time.time(),
                                "message_id": msg["message_id"]})
            return 200, {"ok": True, "result": msg}
        if method in ("editMessageText", "editMessageReplyMarkup"):
            old = self.messages.get(int(body.get("message_id", 0)))
            if old is None or str(old["chat"]["id"]) != str(body.get("chat_id")):
                return self._error(400, "Bad Request: message to edit not found")
            text = body.get("text", old["text"]) if method == "editMessageText" else old["text"]
            if method == "editMessageText":
                err = self._check_text(text, body.get("parse_mode"))
                if err:
                    return err
            markup = body.get("reply_markup")
            if text == old["text"] and markup == old.get("reply_markup"):
                return self._error(400, "Bad Request: message is not modified: specified new message content and reply markup "
                                        "are exactly the same as a current content and reply markup of the message")
            old["text"], old["edit_date"] = text, int(time.time())
            if markup is None:
                old.pop("reply_markup", None)
            else:
                old["reply_markup"] = markup
            return 200, {"ok": True, "result": old}
        text = body.get("text") or ""
        err = self._check_text(text, body.get("parse_mode"))
        if err:
            return err
        bad = self._check_markup(body.get("reply_markup"))
        if bad:
            return bad
        return 200, {"ok": True, "result": self._store(body, text=text)}

    def _check_text(self, text, parse_mode, limit=TELEGRAM_MAX_CHARS):
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if parse_mode == "HTML":
            try:
                n = telegram_visible_length(text)
            except TelegramHTMLError as e:
                return self._error(400, f"Bad Request: can't parse entities: {e}")
        else:
            n = len(text)
        if n > limit:
            return self._error(400, "Bad Request: message is too long" if limit == TELEGRAM_MAX_CHARS else "Bad Request: message caption is too long")
        return None

    def _check_markup(self, markup):
        for row in (markup or {}).get("inline_keyboard", []):
            for b in row:
                if len(b.get("callback_data", "").encode()) > 64:
                    return self._error(400, "Bad Request: BUTTON_DATA_INVALID")
        return None

    def _bot(self):
        return {"id": int(self.token.split(":")[0]), "is_bot": True, "first_name": "trademon", "username": "trademon_bot"}

    def _store(self, body, **content):
        mid, self._next_id = self._next_id, self._next_id + 1
        chat = int(body.get("chat_id", 0))
        msg = {"message_id": mid, "date": int(time.time()), **content, "from": self._bot(),
               "chat": {"id": chat, "type": "private" if chat > 0 else "supergroup", "title": "trading"}}
        if body.get("reply_markup"):
            msg["reply_markup"] = body["reply_markup"]
        self.messages[mid] = msg
        return json.loads(json.dumps(msg))

    # getUpdates: a long poll; a newer poll ends an older one with 409
    def _get_updates(self, body):
        timeout = min(float(body.get("timeout", 0) or 0), 50)
        offset = int(body.get("offset", 0) or 0)
        with self._cond:
            self._poll_gen += 1
            gen = self._poll_gen
            self._cond.notify_all()
            if offset:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            deadline = time.monotonic() + timeout
            while True:
                if self._poll_gen != gen:
                    self.conflicts += 1
                    return self._error(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running")
                ready = [u for u in self._updates if u["update_id"] >= offset]
                left = deadline - time.monotonic()
                if ready or left <= 0:
                    return 200, {"ok": True, "result": ready[:100]}
                self._cond.wait(min(left, 0.5))

    def push(self, kind: str, obj: dict) -> int:
        with self._cond:
            uid, self._next_update = self._next_update, self._next_update + 1
            self._updates.append({"update_id": uid, kind: obj})
            self._cond.notify_all()
            return uid

    @staticmethod
    def user(user_id: int, username: str = "trader") -> dict:
        return {"id": user_id, "is_bot": False, "first_name": username.title(), "username": username}

    def command(self, text: str, chat_id: int, user_id: int, username: str = "trader") -> None:
        """The trader types ``text`` in ``chat_id``."""
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        with self._server.lock:
            mid, self._next_id = self._next_id, self._next_id + 1
        word = text.split()[0]
        self.push("message", {"message_id": mid, "date": int(time.time()), "chat": chat, "from": self.user(user_id, username),
                              "text": text, "entities": [{"type": "bot_command", "offset": 0, "length": len(word)}]})

    def press(self, message_id: int, button: str, user_id: int, username: str = "trader", chat_id: int | None = None,
              data: str | None = None) -> str:
        """The trader presses the button labelled ``button`` (or sends ``data`` as if it were one);
        returns the callback query id (``callback_answers`` gets the bot's answer)."""
        with self._server.lock:
            msg = json.loads(json.dumps(self.messages[message_id]))
        if data is None:
            data = next(b["callback_data"] for row in msg["reply_markup"]["inline_keyboard"] for b in row if button in b["text"])
        if chat_id is not None:
            msg["chat"] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        qid = f"cq{message_id}-{time.monotonic_ns()}"
        self.push("callback_query", {"id": qid, "from": self.user(user_id, username), "message": msg, "chat_instance": "1", "data": data})
        return qid

    def snapshot(self) -> list[dict]:
        """Every message the bot sent, as it stands now (edits applied), oldest first."""
        with self._server.lock:
            return [json.loads(json.dumps(m)) for _, m in sorted(self.messages.items())]

    def resolved_shown(self, name: str, since: float = 0) -> list[str]:
        """The visible texts telling that alert ``name`` resolved since ``since``: a message
        listing it under "resolved:", or a page about it edited to say "✅ Resolved" (the bot
        edits the page a resolve ends instead of sending a new message)."""
        out = []
        with self._server.lock:
            for r in self.requests:
                if r.status == 200 and r.path.endswith("/sendMessage") and r.at >= since:
                    shown = visible_text(r.body.get("text", ""))
                    if f"resolved: {name}" in shown:
                        out.append(shown)
            for m in self.messages.values():
                shown = visible_text(m.get("text", ""))
                page, _, rest = shown.partition("✅ Resolved at")
                if rest and name in page and m.get("edit_date", 0) >= int(since):
                    out.append(shown)
        return out

    def buttons(self, message_id: int) -> list[str]:
        with self._server.lock:
            markup = self.messages[message_id].get("reply_markup") or {}
        return [b["text"] for row in markup.get("inline_keyboard", []) for b in row]

    def sent(self) -> list[dict]:
        """Delivered messages: text, chat_id, parse_mode, silent (disable_notification), at, message_id, buttons."""
        with self._server.lock:
            out = []
            for r in self.requests:
                if r.status == 200 and r.path.endswith("/sendMessage"):
                    markup = r.body.get("reply_markup") or {}
                    out.append({"text": r.body.get("text", ""), "chat_id": r.body.get("chat_id"), "parse_mode": r.body.get("parse_mode"),
                                "silent": _truthy(r.body.get("disable_notification")), "at": r.at,
                                "buttons": [b["text"] for row in markup.get("inline_keyboard", []) for b in row]})
            return out

    def statuses(self, method: str = "sendMessage") -> list[int]:
        with self._server.lock:
            return [r.status for r in self.requests if r.path.endswith(f"/{method}")]

    def close(self):
        with self._cond:
            self._poll_gen += 1  # end a waiting long poll
            self._cond.notify_all()
        self._server.close()


def _multipart(ctype: str, raw: bytes) -> tuple[dict, dict]:
    """multipart/form-data -> (fields, files) with the standard library's MIME parser."""
    msg = email.message_from_bytes(f"Content-Type: {ctype}\r\n\r\n".encode() + raw, policy=email.policy.HTTP)
    fields, files = {}, {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = data
        else:
            fields[name] = data.decode("utf-8")
    return fields, files


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


class PushoverStandIn:
    """Pushover's message API (https://pushover.net/api): POST /1/messages.json, form-encoded
    token, user, message (title, priority, retry, expire); answers ``{"status": 1, "request":
    ..., "receipt": ...}`` (a receipt for the emergency priority 2), or HTTP 400 with
    ``{"status": 0, "errors": [...]}`` as Pushover words them: a wrong token or user, priority 2
    without retry >= 30 and expire <= 10800. GET /1/receipts/{receipt}.json?token=... answers
    whether an emergency message was acknowledged in the app (``acknowledge(receipt)`` plays the
    person doing it). ``fail_for(seconds)``: HTTP 500 meanwhile."""

    def __init__(self, token: str, user: str):
        self.token, self.user = token, user
        self.requests: list[Request] = []
        self._fail_until = 0.0
        self._n = 0
        self.receipts: dict[str, int] = {}  # receipt -> acknowledged_at (0: not yet)
        self._server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self._server.port}"

    def fail_for(self, seconds: float) -> None:
        with self._server.lock:
            self._fail_until = time.monotonic() + seconds

    def acknowledge(self, receipt: str) -> None:
        with self._server.lock:
            self.receipts[receipt] = int(time.time())

    def _receipt(self, receipt: str, query: dict, request: str):
        if query.get("token") != self.token:
            return 400, {"token": "invalid", "errors": ["application token is invalid"], "status": 0, "request": request}
        if receipt not in self.receipts:
            return 404, {"receipt": "not found", "errors": ["receipt not found; may be invalid or expired"], "status": 0, "request": request}
        at = self.receipts[receipt]
        return 200, {"status": 1, "acknowledged": 1 if at else 0, "acknowledged_at": at, "acknowledged_by": self.user if at else "",
                     "acknowledged_by_device": "trader-iphone" if at else "", "expired": 0, "request": request}

    def _errors(self, body: dict) -> list[str]:
        errors = []
        if body.get("token") != self.token:
            errors.append("application token is invalid")
        if body.get("user") != self.user:
            errors.append("user identifier is not a valid user, group, or subscribed user key")
        if not body.get("message"):
            errors.append("message cannot be blank")
        if body.get("priority") == "2":
            if not body.get("retry") or int(body["retry"]) < 30:
                errors.append("retry is invalid")
            if not body.get("expire") or int(body["expire"]) > 10800:
                errors.append("expire is invalid")
        return errors

    def _handle(self, path, ctype, raw):
        body = _decode(ctype, raw)
        path, _, query = path.partition("?")
        receipt = re.fullmatch(r"/1/receipts/(\w+)\.json", path)
        with self._server.lock:
            self._n += 1
            request = f"5f1e1b6a-0000-4000-8000-{self._n:012d}"
            if time.monotonic() < self._fail_until:
                status, answer = 500, b"Internal Server Error"
            elif receipt:
                status, answer = self._receipt(receipt.group(1), {k: v[0] for k, v in parse_qs(query).items()}, request)
            elif path != "/1/messages.json":
                status, answer = 404, {"status": 0, "errors": ["not found"], "request": request}
            elif errors := self._errors(body):
                status, answer = 400, {"status": 0, "errors": errors, "request": request}
            else:
                status, answer = 200, {"status": 1, "request": request}
                if body.get("priority") == "2":
                    answer["receipt"] = f"r{self._n:029d}"
                    self.receipts[answer["receipt"]] = 0
            self.requests.append(Request(time.time(), path, body, status))
        return status, answer

    def sent(self) -> list[dict]:
        with self._server.lock:
            return [r.body for r in self.requests if r.status == 200 and r.path == "/1/messages.json"]

    def close(self):
        self._server.close()


class TwilioStandIn:
    """A Twilio-compatible REST API (2010-04-01): POST /2010-04-01/Accounts/{AccountSid}/
    Messages.json (To, From, Body) and Calls.json (To, From, and Twiml or Url), form-encoded,
    HTTP basic auth AccountSid:AuthToken; answers 201 with the resource (``sid`` SM... or
    CA..., ``status`` queued), or Twilio's error document ``{"code", "message", "more_info",
    "status"}``: 401 code 20003 for wrong credentials, 400 for a missing parameter.
    ``fail_for(seconds)``: HTTP 503 meanwhile."""

    def __init__(self, account_sid: str, auth_token: str):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.requests: list[Request] = []
        self._fail_until = 0.0
        self._n = 0
        self._server = _Server(self._handle, with_headers=True)
        self.url = f"http://127.0.0.1:{self._server.port}"

    def fail_for(self, seconds: float) -> None:
        with self._server.lock:
            self._fail_until = time.monotonic() + seconds

    @staticmethod
    def _error(status: int, code: int, message: str):
        return status, {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}

    def _answer(self, path: str, body: dict, auth: str):
        import base64

        m = re.fullmatch(r"/2010-04-01/Accounts/([^/]+)/(Messages|Calls)\.json", path)
        if time.monotonic() < self._fail_until:
            return 503, b"Service Unavailable"
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if auth != expected or (m and m.group(1) != self.account_sid):
            return self._error(401, 20003, "Authenticate")
        if not m:
            return self._error(404, 20404, "The requested resource was not found")
        if not body.get("To"):
            return self._error(400, 21604, "A 'To' phone number is required.")
        if not body.get("From"):
            return self._error(400, 21603, "A 'From' phone number is required.")
        self._n += 1
        if m.group(2) == "Messages":
            if not body.get("Body"):
                return self._error(400, 21602, "Message body is required.")
            return 201, {"sid": f"SM{self._n:032x}", "account_sid": self.account_sid, "to": body["To"], "from": body["From"],
                         "body": body["Body"], "status": "queued"}
        if not body.get("Twiml") and not body.get("Url"):
            return self._error(400, 21205, "Url parameter is required.")
        return 201, {"sid": f"CA{self._n:032x}", "account_sid": self.account_sid, "to": body["To"], "from": body["From"],
                     "status": "queued"}

    def _handle(self, path, ctype, raw, headers):
        body = _decode(ctype, raw)
        with self._server.lock:
            status, answer = self._answer(path, body, headers.get("Authorization", ""))
            self.requests.append(Request(time.time(), path.replace(self.account_sid, "<sid>"), body, status))
        return status, answer

    def sent(self, kind: str) -> list[dict]:
        """What was taken: ``kind`` "Messages" or "Calls"."""
        with self._server.lock:
            return [r.body for r in self.requests if r.status == 201 and r.path.endswith(f"/{kind}.json")]

    def close(self):
        self._server.close()


@dataclass
class _Mail:
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    body: str
    login: str | None
    at: float = 0.0  # time.time() of its receipt


@dataclass
class _SMTPHandler:
    messages: list[_Mail] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        parts = [p.get_content() for p in msg.walk() if p.get_content_type() in ("text/plain", "text/html")]
        login = getattr(session.auth_data, "login", None)
        login = login.decode() if isinstance(login, bytes) else login
        self.messages.append(_Mail(envelope.mail_from, list(envelope.rcpt_tos), str(msg["Subject"]), "\n".join(parts), login,
                                   time.time()))
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
    """Every channel's stand-in, with fake secrets, and the environment that points am-config
    and the bot at them. The bot's escalation ladder is configured (its secrets loaded, so the
    scans of the logs cover them) with its one tier an hour away: no test of a stack waits that
    long, so its pages are never escalated (tests/test_bot_escalation.py walks the ladder)."""

    TOKEN = "987654321:AAFakeTokenForTestsOnly_x9Yz"
    CHAT_ID = "-1001234567890"   # a group: only USER_ID may act in it
    USER_ID = 424242
    SMTP_USER = "alerts@trademon.test"
    SMTP_PASSWORD = "smtp-Fake-Passw0rd-For-Tests"
    PUSHOVER_TOKEN, PUSHOVER_USER = "aFakePushoverAppTokenForTests1", "uFakePushoverUserKeyForTests22"
    TWILIO_SID, TWILIO_AUTH = "ACfake00000000000000000000000042", "fakeTwilioAuthTokenForTests0042"

    def __init__(self):
        self.telegram = TelegramStandIn(self.TOKEN)
        self.slack = SlackStandIn()
        self.smtp = SMTPStandIn(self.SMTP_USER, self.SMTP_PASSWORD)
        self.heartbeat = HeartbeatStandIn()
        self.pushover = PushoverStandIn(self.PUSHOVER_TOKEN, self.PUSHOVER_USER)
        self.twilio = TwilioStandIn(self.TWILIO_SID, self.TWILIO_AUTH)

    def env(self) -> dict[str, str]:
        return {
            "TELEGRAM_BOT_TOKEN": self.TOKEN, "TELEGRAM_CHAT_ID": self.CHAT_ID, "TELEGRAM_API_URL": self.telegram.url,
            "SLACK_WEBHOOK_URL": self.slack.url,
            "SMTP_SMARTHOST": self.smtp.smarthost, "SMTP_FROM": "trademon@trademon.test", "SMTP_TO": "trader@trademon.test",
            "SMTP_USERNAME": self.SMTP_USER, "SMTP_PASSWORD": self.SMTP_PASSWORD, "SMTP_REQUIRE_TLS": "false",
            "HEARTBEAT_URL": self.heartbeat.url,
            "TRADEMON_BOT_ESCALATE": "1h:pushover+sms", "PUSHOVER_APP_TOKEN": self.PUSHOVER_TOKEN, "PUSHOVER_USER_KEY": self.PUSHOVER_USER,
            "PUSHOVER_API_URL": self.pushover.url, "TWILIO_API_URL": self.twilio.url, "TWILIO_ACCOUNT_SID": self.TWILIO_SID,
            "TWILIO_AUTH_TOKEN": self.TWILIO_AUTH, "TWILIO_FROM": "+15005550006", "TRADEMON_BOT_ESCALATE_SMS_TO": "+14155550123",
        }

    def secrets(self) -> list[str]:
        """Values that must never appear in a log."""
        return [self.TOKEN, self.TOKEN.split(":")[1], self.slack.path.rsplit("/", 1)[1], self.SMTP_PASSWORD,
                self.heartbeat.path.lstrip("/"), self.PUSHOVER_TOKEN, self.PUSHOVER_USER, self.TWILIO_AUTH]

    def close(self):
        for s in (self.telegram, self.slack, self.smtp, self.heartbeat, self.pushover, self.twilio):
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
