"""The bot's durable state, in one SQLite file (synchronous=FULL: a commit is on disk).

outbox: notifications accepted from Alertmanager and not yet all delivered to Telegram;
        a restart resumes them from the part it stopped at.
refs:   what each page is about (the alerts' label sets, its Alertmanager group, the silences
        made from it, the notes added to it, whether it resolved), keyed by the bot's own
        reference, made before the page is sent: a button works before Telegram's answer and on
        every copy of a page sent twice (message_ids lists them all).
seen:   the notifications taken lately, by a digest of their content, so Alertmanager's retry
        of one it did not see answered (its call timed out) is not a second message.
history: what fired and resolved (the alerts' own startsAt and endsAt, each once however often
        Alertmanager repeats it) and who acknowledged, silenced or unsilenced what, for /history
        (HISTORY_KEEP_S).
kv:     small facts (the last daily summary sent).
ladders: the escalation of critical pages nobody acknowledged (trademon.bot.escalation), one
        row per set of alerts: which tiers went out, so a restart resumes mid-ladder.
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
CREATE TABLE IF NOT EXISTS history (at REAL, kind TEXT, alert TEXT, labels TEXT, who TEXT, until REAL,
                                    UNIQUE (kind, labels, at));
CREATE INDEX IF NOT EXISTS history_at ON history (at);
CREATE TABLE IF NOT EXISTS ladders (key TEXT PRIMARY KEY, ref TEXT, started REAL, running INTEGER, state TEXT);
"""
HISTORY_KEEP_S = 30 * 86400  # what /history can look back on
HISTORY_KINDS = ("fired", "resolved", "ack", "ack_extended", "ack_resolved", "silence", "unsilence", "escalated")
REF_TTL_S = 7 * 86400  # a button older than this is stale
# Columns added to refs since the first release: an older state file gets them at open.
REF_COLUMNS = {"group_key": "TEXT DEFAULT ''", "message_ids": "TEXT DEFAULT '[]'", "state": "TEXT DEFAULT '{}'"}


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        have = {row[1] for row in self._db.execute("PRAGMA table_info(refs)")}
        for col, decl in REF_COLUMNS.items():
            if col not in have:
                self._db.execute(f"ALTER TABLE refs ADD COLUMN {col} {decl}")
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
    def new_ref(self, chat_id: int, alerts: list[dict], text: str = "", group_key: str = "", state: dict | None = None) -> str:
        ref = secrets.token_hex(6)
        self._x("INSERT INTO refs (ref, chat_id, message_id, created, alerts, text, silences, group_key, message_ids, state) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (ref, chat_id, None, time.time(), json.dumps(alerts), text, "[]", group_key, "[]", json.dumps(state or {})))
        return ref

    def set_message(self, ref: str, message_id: int, text: str | None = None) -> None:
        """One more copy of the page in the chat (a page sent twice has two)."""
        def add():
            row = self._db.execute("SELECT message_ids FROM refs WHERE ref=?", (ref,)).fetchone()
            ids = json.loads(row[0] or "[]") if row else []
            if message_id not in ids:
                ids = (ids + [message_id])[-5:]
            self._db.execute("UPDATE refs SET message_id=?, message_ids=?, text=COALESCE(?, text) WHERE ref=?",
                             (message_id, json.dumps(ids), text, ref))

        with self._lock:
            self._write(add)

    def set_silences(self, ref: str, silences: list[dict]) -> None:
        self._x("UPDATE refs SET silences=? WHERE ref=?", (json.dumps(silences), ref))

    def set_state(self, ref: str, state: dict) -> None:
        self._x("UPDATE refs SET state=? WHERE ref=?", (json.dumps(state), ref))

    _REF_COLS = "ref, chat_id, message_id, created, alerts, text, silences, group_key, message_ids, state"

    @staticmethod
    def _ref_row(row) -> dict:
        ref, chat_id, message_id, created, alerts, text, silences, group_key, message_ids, state = row
        return {"ref": ref, "chat_id": chat_id, "message_id": message_id, "created": created, "alerts": json.loads(alerts),
                "text": text, "silences": json.loads(silences), "group_key": group_key or "",
                "message_ids": json.loads(message_ids or "[]"), "state": json.loads(state or "{}")}

    def ref(self, ref: str, now: float | None = None) -> dict | None:
        rows = self._x(f"SELECT {self._REF_COLS} FROM refs WHERE ref=?", (ref,))
        if not rows:
            return None
        out = self._ref_row(rows[0])
        if (now or time.time()) - out["created"] > REF_TTL_S:
            return None
        return out

    def acknowledged(self, limit: int) -> list[dict]:
        """The pages acknowledged and not resolved, oldest first (bounded)."""
        rows = self._x(f"SELECT {self._REF_COLS} FROM refs WHERE state LIKE ? AND created>=? ORDER BY created LIMIT ?",
                       ('%"ack": {%', time.time() - REF_TTL_S, limit))
        return [r for r in map(self._ref_row, rows) if r["state"].get("ack") and not r["state"].get("resolved") and r["silences"]]

    def open_pages(self, chat_id: int, group_key: str, limit: int = 10) -> list[dict]:
        """The pages of this Alertmanager group not yet resolved, newest first (bounded)."""
        rows = self._x(f"SELECT {self._REF_COLS} FROM refs WHERE chat_id=? AND group_key=? AND created>=? "
                       "ORDER BY created DESC LIMIT ?", (chat_id, group_key, time.time() - REF_TTL_S, limit * 3))
        return [r for r in map(self._ref_row, rows) if not r["state"].get("resolved")][:limit]

    def prune(self, now: float) -> None:
        self._x("DELETE FROM refs WHERE created<?", (now - REF_TTL_S,))
        self._x("DELETE FROM history WHERE at<?", (now - HISTORY_KEEP_S,))
        self._x("DELETE FROM ladders WHERE started<?", (now - REF_TTL_S,))

    # history
    def record(self, rows: list[tuple[float, str, dict, str | None, float | None]]) -> None:
        """(at, kind, labels, who, until) each; the same (kind, alert, at) again is no new row
        (Alertmanager repeats a firing alert with its startsAt every group_interval)."""
        def insert():
            self._db.executemany("INSERT OR IGNORE INTO history VALUES (?,?,?,?,?,?)",
                                 [(at, kind, str(labels.get("alertname", ""))[:100], json.dumps(labels, sort_keys=True), who, until)
                                  for at, kind, labels, who, until in rows])

        with self._lock:
            self._write(insert)

    def history(self, since: float, alert: str | None = None, limit: int = 5000) -> list[dict]:
        """The rows from ``since`` on, oldest first (bounded: the newest ``limit``)."""
        where, args = ("at>=? AND alert=? COLLATE NOCASE", (since, alert)) if alert else ("at>=?", (since,))
        rows = self._x(f"SELECT at, kind, alert, labels, who, until FROM history WHERE {where} ORDER BY at DESC LIMIT ?", (*args, limit))
        return [{"at": at, "kind": kind, "alert": name, "labels": json.loads(labels), "who": who, "until": until}
                for at, kind, name, labels, who, until in reversed(rows)]

    def alert_names(self, since: float) -> list[str]:
        return [r[0] for r in self._x("SELECT DISTINCT alert FROM history WHERE at>=? LIMIT 1000", (since,))]

    def refs_since(self, since: float, limit: int) -> list[dict]:
        """The pages made after ``since``, newest first (bounded)."""
        rows = self._x(f"SELECT {self._REF_COLS} FROM refs WHERE created>=? ORDER BY created DESC LIMIT ?", (since, limit))
        return [self._ref_row(r) for r in rows]

    # ladders (escalation)
    def ladder(self, key: str) -> dict | None:
        rows = self._x("SELECT key, ref, started, running, state FROM ladders WHERE key=?", (key,))
        return self._ladder_row(rows[0]) if rows else None

    def running_ladders(self, limit: int) -> list[dict]:
        rows = self._x("SELECT key, ref, started, running, state FROM ladders WHERE running=1 ORDER BY started LIMIT ?", (limit,))
        return [self._ladder_row(r) for r in rows]

    def put_ladder(self, ladder: dict) -> None:
        self._x("INSERT OR REPLACE INTO ladders VALUES (?,?,?,?,?)",
                (ladder["key"], ladder["ref"], ladder["started"], 1 if ladder["running"] else 0, json.dumps(ladder["state"])))

    @staticmethod
    def _ladder_row(row) -> dict:
        key, ref, started, running, state = row
        return {"key": key, "ref": ref, "started": started, "running": bool(running), "state": json.loads(state or "{}")}

    # kv
    def get(self, k: str) -> str | None:
        rows = self._x("SELECT v FROM kv WHERE k=?", (k,))
        return rows[0][0] if rows else None

    def set(self, k: str, v: str) -> None:
        self._x("INSERT INTO kv VALUES (?,?) ON CONFLICT(k) DO UPDATE SET v=excluded.v", (k, v))

    def close(self) -> None:
        self._db.close()
