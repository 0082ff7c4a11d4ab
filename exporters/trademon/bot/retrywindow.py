"""Is the bot's retry window (BotConfig.retry_window_s) right for the Alertmanager routes that
send to it? Longer than each route's group_interval (Alertmanager retries a notification it
saw fail at its next flush) and shorter than each repeat_interval (a reminder is the same
content on purpose, and must be sent)."""

from __future__ import annotations

from collections.abc import Iterator

from trademon import contract
from trademon.settings.values import seconds

# Alertmanager's own defaults, for a route tree that leaves them out.
DEFAULTS = {"group_interval": "5m", "repeat_interval": "4h"}


def _to_bot(receiver: dict) -> bool:
    return any("trademon-bot" in str(w.get("url", "")) or f":{contract.BOT_PORT}/" in str(w.get("url", ""))
               for w in receiver.get("webhook_configs") or [])


def bot_routes(am: dict) -> list[dict]:
    """Every route whose receiver sends to the bot, with the intervals it inherits."""
    to_bot = {r["name"] for r in am.get("receivers") or [] if _to_bot(r)}

    def walk(route: dict, inherited: dict) -> Iterator[dict]:
        merged = {**inherited, **{k: route[k] for k in ("receiver", "group_interval", "repeat_interval") if k in route}}
        yield merged
        for child in route.get("routes") or []:
            yield from walk(child, merged)

    return [r for r in walk(am.get("route") or {}, dict(DEFAULTS)) if r.get("receiver") in to_bot]


def problem(am: dict, window_s: float) -> str | None:
    """What is wrong with ``window_s`` for these routes, with the fix; None when it fits."""
    routes = bot_routes(am)
    if not routes:
        return None
    longest_group = max(seconds(r["group_interval"]) for r in routes)
    shortest_repeat = min(seconds(r["repeat_interval"]) for r in routes)
    if window_s >= shortest_repeat:
        return (f"TRADEMON_BOT_RETRY_WINDOW ({window_s:g}s) is not shorter than the shortest repeat_interval of the routes to the "
                f"bot ({shortest_repeat:g}s): reminders would be taken for retries and not sent; set it below {shortest_repeat:g}s")
    if window_s <= longest_group:
        return (f"TRADEMON_BOT_RETRY_WINDOW ({window_s:g}s) is not longer than the longest group_interval of the routes to the "
                f"bot ({longest_group:g}s): an Alertmanager retry could arrive after it and page twice; set it above {longest_group:g}s")
    return None
