"""The escalation channels: where a critical page nobody acknowledged goes next (the ladder is
trademon.bot.escalation's). Each sends one short message and raises ChannelError saying why
not, in words fit for a log: never a URL (Telegram's hold the token) nor a credential.

    pushover  Pushover's emergency priority (priority=2: it repeats every ``retry`` until
              someone acknowledges it in the Pushover app, or ``expire`` passes); its
              receipt says whether someone did
    sms       an SMS to each number, through a Twilio-compatible API (Messages.json)
    call      a voice call to each number, the message read out (Calls.json with Twiml)
    chat      another Telegram chat, through the bot's own token
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

import httpx

from trademon.bot.telegram import TelegramClient, TelegramError
from trademon.runtime import http

# Pushover's bounds for the emergency priority (https://pushover.net/api#priority).
PUSHOVER_MIN_RETRY_S = 30
PUSHOVER_MAX_EXPIRE_S = 10800
SMS_MAX = 320
RECEIPT = re.compile(r"[A-Za-z0-9]{1,64}")  # two SMS segments at most: the alert's name and where to acknowledge it


class ChannelError(Exception):
    pass


@dataclass(frozen=True)
class Message:
    """One escalation, in each channel's form."""

    title: str   # one line (Pushover's title)
    text: str    # plain text: SMS, Pushover, and what the call reads out
    html: str    # Telegram HTML (another chat)


def _provider_error(provider: str, r: httpx.Response) -> ChannelError:
    """The provider's own words for a refusal (Pushover: ``errors``; Twilio: ``message``), bounded."""
    try:
        doc = r.json()
    except ValueError:
        doc = {}
    said = (doc.get("errors") or doc.get("message") or "") if isinstance(doc, dict) else ""
    if isinstance(said, list):
        said = "; ".join(str(x) for x in said)
    return ChannelError(f"{provider} answered HTTP {r.status_code}: {str(said)[:200] or 'no reason given'}")


async def _post(client: httpx.AsyncClient, provider: str, url: str, data: dict, **kw) -> dict:
    try:
        r = await client.post(url, data=data, **kw)
    except httpx.HTTPError as e:  # some httpx messages name the URL: keep only the kind
        raise ChannelError(f"{provider} unreachable ({type(e).__name__})") from None
    if r.status_code >= 300:
        raise _provider_error(provider, r)
    try:
        doc = r.json()
    except ValueError:
        raise ChannelError(f"{provider} answered HTTP {r.status_code} with no JSON") from None
    return doc if isinstance(doc, dict) else {}


class Pushover:
    name = "pushover"

    def __init__(self, api_url: str, token: str, user: str, retry_s: float, expire_s: float, timeout: float = 10.0):
        self.base = api_url.rstrip("/")
        self.url = f"{self.base}/1/messages.json"
        self.token, self.user, self.retry_s, self.expire_s = token, user, retry_s, expire_s
        self._http = http.async_client(timeout)

    async def send(self, msg: Message) -> str:
        """The receipt: what :meth:`acknowledged` asks about."""
        doc = await _post(self._http, "Pushover", self.url, {
            "token": self.token, "user": self.user, "title": msg.title[:250], "message": msg.text[:1024],
            "priority": "2", "retry": str(int(self.retry_s)), "expire": str(int(self.expire_s))})
        if doc.get("status") != 1:
            raise ChannelError(f"Pushover answered status {doc.get('status')!r}: {'; '.join(map(str, doc.get('errors') or []))[:200]}")
        return str(doc.get("receipt", ""))[:64]

    async def acknowledged(self, receipt: str) -> str | None:
        """Who acknowledged the emergency message in the Pushover app (GET /1/receipts/{receipt}.json),
        or None while nobody has."""
        if not RECEIPT.fullmatch(receipt):  # it came from outside and goes into a URL
            return None
        try:
            r = await self._http.get(f"{self.base}/1/receipts/{receipt}.json", params={"token": self.token})
        except httpx.HTTPError as e:  # the URL holds the token: never in a message
            raise ChannelError(f"Pushover unreachable ({type(e).__name__})") from None
        if r.status_code >= 300:
            raise _provider_error("Pushover", r)
        try:
            doc = r.json()
        except ValueError:
            raise ChannelError(f"Pushover answered HTTP {r.status_code} with no JSON") from None
        if not isinstance(doc, dict) or doc.get("acknowledged") != 1:
            return None
        return str(doc.get("acknowledged_by_device") or "someone")[:40]

    async def close(self) -> None:
        await self._http.aclose()


class Twilio:
    """Twilio's REST API (2010-04-01), or a compatible provider's: form-encoded POSTs under
    /Accounts/{AccountSid}/, HTTP basic auth AccountSid:AuthToken, 201 with the resource's sid."""

    provider = "Twilio"

    def __init__(self, api_url: str, account_sid: str, auth_token: str, from_number: str, to: tuple[str, ...], timeout: float = 10.0):
        self.base = f"{api_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}"
        self.from_number, self.to = from_number, to
        self._auth = httpx.BasicAuth(account_sid, auth_token)
        self._http = http.async_client(timeout)

    async def _each(self, resource: str, fields: dict) -> str:
        """One POST per number; every number is tried, and any that failed make the error."""
        sids, failed = [], []
        for n, to in enumerate(self.to, 1):
            try:
                doc = await _post(self._http, self.provider, f"{self.base}/{resource}.json",
                                  {"To": to, "From": self.from_number, **fields}, auth=self._auth)
                sids.append(str(doc.get("sid", "?"))[:40])
            except ChannelError as e:
                failed.append(f"number {n}: {e}")
        if failed:
            raise ChannelError("; ".join(failed)[:400])
        return " ".join(sids)

    async def close(self) -> None:
        await self._http.aclose()


class Sms(Twilio):
    name = "sms"

    async def send(self, msg: Message) -> str:
        return await self._each("Messages", {"Body": msg.text[:SMS_MAX]})


class Call(Twilio):
    name = "call"

    async def send(self, msg: Message) -> str:
        # Said twice: a phone picked up half asleep misses the first.
        said = xml_escape(msg.text[:SMS_MAX])
        twiml = f'<Response><Say>{said}</Say><Pause length="1"/><Say>{said}</Say></Response>'
        return await self._each("Calls", {"Twiml": twiml})


class Chat:
    """Another Telegram chat (the next person on call, a team group), with the bot's token."""

    name = "chat"

    def __init__(self, tg: TelegramClient, chat_id: int):
        self.tg, self.chat_id = tg, chat_id

    async def send(self, msg: Message) -> str:
        try:
            result = await self.tg.call_within(time.monotonic() + 20, "sendMessage", {
                "chat_id": self.chat_id, "text": msg.html, "parse_mode": "HTML", "link_preview_options": {"is_disabled": True}})
        except TelegramError as e:
            raise ChannelError(str(e)[:300]) from None
        return f"message {int((result or {}).get('message_id', 0))}"

    async def close(self) -> None:
        pass  # the bot's client: closed with the bot

