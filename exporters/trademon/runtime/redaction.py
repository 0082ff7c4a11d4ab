"""Secrets recognised by their shape, masked in log lines: one list for trademon's own logs
(trademon.runtime.logs) and for the log shippers' replace stages (promtail/promtail.yml,
alloy/config.alloy), which mask what other processes write (Alertmanager naming a Telegram
bot URL in a failed delivery, say) before it reaches Loki. tests/test_logging_configs.py
keeps the shippers' copies equal to this list.

Each expression is RE2 (Go) syntax and also valid Python; its one capture group is the secret
and only that is replaced (the replace stages of Promtail and Alloy replace capture groups).
"""

from __future__ import annotations

import re

MASK = "***"

# name -> expression; the capture group is what gets masked.
PATTERNS: dict[str, str] = {
    # Telegram bot tokens, as BotFather gives them and as they appear in Bot API URLs (/bot<token>/).
    "telegram_bot_token": r"(?:bot)?([0-9]{3,}:[A-Za-z0-9_-]{30,})",
    # Slack (and Slack-style) incoming webhook paths: /services/T.../B.../secret.
    "slack_webhook_path": r"/(?:services|workflows|triggers)/([A-Za-z0-9_-]+/[A-Za-z0-9_-]+/[A-Za-z0-9_-]+)",
    # Basic-auth credentials in URLs: scheme://user:PASSWORD@host.
    "url_password": r"""://[^/\s:@"']*:([^/\s@"']+)@""",
    # Authorization header values.
    "authorization": r"(?i)\b(?:bearer|basic)\s+([A-Za-z0-9._~+/=-]{8,})",
    # password=..., "smtp_password": "...", token: ... (SMTP passwords, API keys).
    "key_value": r"""(?i)(?:password|passwd|secret|token|api_?key)"?\s*[:=]\s*"?([^\s"',;&]{4,})""",
}

_COMPILED = [re.compile(p, re.ASCII) for p in PATTERNS.values()]


def replace_groups(pattern: re.Pattern, text: str, replacement: str = MASK) -> str:
    """What Promtail's/Alloy's replace stage does: every capture group of every match replaced."""
    out, last = [], 0
    for m in pattern.finditer(text):
        for g in range(1, (pattern.groups or 0) + 1):
            if m.start(g) < 0:
                continue
            out.append(text[last:m.start(g)])
            out.append(replacement)
            last = m.end(g)
    out.append(text[last:])
    return "".join(out)


def redact_shapes(text: str) -> str:
    for p in _COMPILED:
        text = replace_groups(p, text)
    return text


_USERINFO = re.compile(r"://[^/@]*@")  # spaces too: a password with a space is still a password


def redact_url(url: str) -> str:
    """A URL fit for an error message: the whole user-info part (a user name can be a token) and
    anything shaped like a secret masked."""
    return redact_shapes(_USERINFO.sub(f"://{MASK}@", url))
