"""The bot's durable state, in one SQLite file (synchronous=FULL: a commit is on disk).

outbox: notifications accepted from Alertmanager and not yet all delivered to Telegram;
        a restart resumes them from the part it stopped at.
refs:   what each message with buttons is about (the alerts' label sets, the silences made
        from it), so a button press needs only a short reference.
seen:   the notifications taken lately, by a digest of their content, so Alertmanager's retry
        of one it did not see answered (its call timed out) is not a second message.
kv:     small facts (the last daily summary sent).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from trademon.runtime import storage

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, created REAL, next_at REAL, attempts INTEGER, item TEXT);
CREATE TABLE IF NOT EXISTS refs (ref TEXT PRIMARY KEY, chat_id INTEGER, message_id INTEGER, created REAL,
                                 alerts TEXT, text TEXT, silences TEXT);
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT);
CREATE TABLE IF NOT EXISTS seen (digest TEXT PRIMARY KEY, oid TEXT, at REAL);
"""
REF_TTL_S = 7 * 86400  # a button older than this is stale


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.failing: str | None = None  # why the last write failed (disk full ...), until one succeeds

    def _x(self, sql: str, args=()):
        with self._lock:
            return self._write(lambda: self._db.execute(sql, args).fetchall(), not sql.startswith("SELECT"))

    def _write(self, run, writes: bool = True):
        """``run()``, noting whether writes work (the lock held)."""
        try:
            result = run()
        except sqlite3.Error as e:
            if writes:
                self.failing = str(e)
            raise
        if writes:
            self.failing = None
        return result

    def writable(self) -> bool:
        """A write would succeed now: after a failed one, a small real write decides (space may
        be back before the next notification comes)."""
        if self.failing is not None:
            try:
                self.set("write_probe", str(time.time()))
            except sqlite3.Error:
                return False
        return storage.has_room(self.path.parent)

    # outbox
    def put(self, item: dict) -> str:
        oid = secrets.token_hex(8)
        now = time.time()
        self._x("INSERT INTO outbox VALUES (?,?,?,?,?)", (oid, now, now, 0, json.dumps(item)))
        return oid

    def update(self, oid: str, item: dict) -> None:
        self._x("UPDATE outbox SET item=? WHERE id=?", (json.dumps(item), oid))

    def retry_later(self, oid: str, at: float) -> None:
        self._x("UPDATE outbox SET next_at=?, attempts=attempts+1 WHERE id=?", (at, oid))

    def done(self, oid: str) -> None:
        self._x("DELETE FROM outbox WHERE id=?", (oid,))

    def due(self, now: float, limit: int = 20) -> list[tuple[str, dict]]:
        rows = self._x("SELECT id, item FROM outbox WHERE next_at<=? ORDER BY created LIMIT ?", (now, limit))
        return [(oid, json.loads(item)) for oid, item in rows]

    def in_outbox(self, oid: str) -> dict | None:
        rows = self._x("SELECT item FROM outbox WHERE id=?", (oid,))
        return json.loads(rows[0][0]) if rows else None

    # seen: one row per notification taken within the retry window
    def seen(self, digest: str, since: float) -> str | None:
        """The outbox id of the notification with this digest taken after ``since``, if any."""
        rows = self._x("SELECT oid FROM seen WHERE digest=? AND at>=?", (digest, since))
        return rows[0][0] if rows else None

    def remember(self, digest: str, oid: str, now: float, forget_before: float) -> None:
        def both():
            self._db.execute("DELETE FROM seen WHERE at<?", (forget_before,))
            self._db.execute("INSERT OR REPLACE INTO seen VALUES (?,?,?)", (digest, oid, now))

        with self._lock:
            self._write(both)

    def pending(self) -> int:
        return self._x("SELECT COUNT(*) FROM outbox")[0][0]

    def depth(self) -> tuple[int, float | None]:
        """(notifications in the outbox, when the oldest came; None if it is empty)."""
        count, oldest = self._x("SELECT COUNT(*), MIN(created) FROM outbox")[0]
        return count, oldest

    # refs
    def new_ref(self, chat_id: int, alerts: list[dict]) -> str:
        ref = secrets.token_hex(6)
        self._x("INSERT INTO refs VALUES (?,?,?,?,?,?,?)", (ref, chat_id, None, time.time(), json.dumps(alerts), "", "[]"))
        return ref

    def set_message(self, ref: str, message_id: int, text: str) -> None:
        self._x("UPDATE refs SET message_id=?, text=? WHERE ref=?", (message_id, text, ref))

    def set_silences(self, ref: str, silences: list[dict]) -> None:
        self._x("UPDATE refs SET silences=? WHERE ref=?", (json.dumps(silences), ref))

    def ref(self, ref: str, now: float | None = None) -> dict | None:
        rows = self._x("SELECT chat_id, message_id, created, alerts, text, silences FROM refs WHERE ref=?", (ref,))
        if not rows:
            return None
        chat_id, message_id, created, alerts, text, silences = rows[0]
        if (now or time.time()) - created > REF_TTL_S:
            return None
        return {"ref": ref, "chat_id": chat_id, "message_id": message_id, "created": created,
                "alerts": json.loads(alerts), "text": text, "silences": json.loads(silences)}

    def prune(self, now: float) -> None:
        self._x("DELETE FROM refs WHERE created<?", (now - REF_TTL_S,))

    # kv
    def get(self, k: str) -> str | None:
        rows = self._x("SELECT v FROM kv WHERE k=?", (k,))
        return rows[0][0] if rows else None

    def set(self, k: str, v: str) -> None:
        self._x("INSERT INTO kv VALUES (?,?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v))

    def close(self) -> None:
        self._db.close()
