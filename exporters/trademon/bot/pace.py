"""Telegram's flood limits, kept by the bot rather than learnt from a 429: about 20 messages a
minute in a group and about one a second in a private chat, edits counted like messages. A
sliding window per chat, on an injected clock (the tests run a minute in a few seconds)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

MINUTE = 60.0
GROUP_PER_MINUTE = 20    # Telegram: about 20 messages a minute in a group (sends and edits alike)
PRIVATE_PER_MINUTE = 60  # Telegram: about one message a second in a private chat


class Window:
    """At most ``limit`` events in any ``per`` seconds."""

    def __init__(self, limit: int, per: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.per, self.clock = limit, per, clock
        self._at: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._at and self._at[0] <= now - self.per:
            self._at.popleft()

    def count(self) -> int:
        """Events within the last ``per`` seconds."""
        self._trim(self.clock())
        return len(self._at)

    def wait(self) -> float:
        """Seconds until one more event is allowed (0: now)."""
        now = self.clock()
        self._trim(now)
        return 0.0 if len(self._at) < self.limit else self._at[len(self._at) - self.limit] + self.per - now

    def take(self) -> None:
        self._at.append(self.clock())


class Pacer:
    """One Window per chat: a group's (a negative chat id) at ``group_limit`` a minute
    (TRADEMON_BOT_GROUP_PER_MINUTE, Telegram's 20 unless set), a private chat's at three times
    that. ``minute`` is 60 s but in tests."""

    def __init__(self, minute: float = MINUTE, clock: Callable[[], float] = time.monotonic, max_chats: int = 100,
                 group_limit: int = GROUP_PER_MINUTE):
        self.minute, self.clock, self.max_chats, self.group_limit = minute, clock, max_chats, group_limit
        self._windows: dict[str, Window] = {}

    def window(self, chat_id) -> Window:
        key = str(chat_id)
        w = self._windows.get(key)
        if w is None:
            if len(self._windows) >= self.max_chats:  # bounded: the idle windows go
                self._windows = {k: v for k, v in self._windows.items() if v.count()}
            limit = self.group_limit if key.startswith("-") else self.group_limit * PRIVATE_PER_MINUTE // GROUP_PER_MINUTE
            w = self._windows[key] = Window(limit, self.minute, self.clock)
        return w
