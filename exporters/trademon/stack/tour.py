"""``trademon demo``: the guided tour of the scenarios against a running demo stack.

For each scenario in turn: switch it on, say which alerts to expect and within how long,
watch Alertmanager and the notification record (the alert-sink's file), print what arrived
and when, switch it off, wait for the resolve, move on. Exits 1 when an expected alert does
not come in time (or comes but is silenced), so it doubles as a smoke test of the whole
alert path. The deadlines are the catalogue's worst cases (trademon.sim.catalogue) with a
margin; the simulator reports its speed, so the same tour serves speed 1 and the
compressed demo (``trademon native --mode demo --speed 30``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import quote

from trademon import contract
from trademon.runtime import http
from trademon.settings.env import env_port, job_port
from trademon.settings.webconfig import Caller
from trademon.sim.catalogue import EXPECTED, Pipeline, human
from trademon.sim.scenarios import SCENARIOS
from trademon.synthetic.config import WATCHDOG_ALERT as WATCHDOG  # always firing: in Alertmanager once Prometheus sends

MARGIN_FACTOR, MARGIN_S = 1.5, 15.0  # deadline = worst case * factor + seconds (a loaded machine)
POLL_S = 0.5
WAIT_S = 120.0  # `trademon native` takes seconds to come up (a loaded machine: a minute): the tour waits


def configure(parser) -> None:
    parser.add_argument("--alertmanager", default=None, help="Alertmanager URL (default http://127.0.0.1:<TRADEMON_ALERTMANAGER_PORT or 9093>)")
    parser.add_argument("--control", default=None, help="the simulator's scenario switch (default http://127.0.0.1:<TRADEMON_SIM_CONTROL_PORT or 9119>)")
    parser.add_argument("--record", default="var/native/alerts.jsonl",
                        help="the alert-sink's file (default var/native/alerts.jsonl, where trademon native keeps it; "
                             "with docker compose: a copy of /var/lib/trademon/alerts.jsonl is not live, use --record '')")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list, in order (default: all)")
    parser.add_argument("--env-file", default=None,
                        help="the stack's variables, as trademon native reads them (default: .env in the repository, if there): "
                             "its ports and TRADEMON_API_TOKEN, which the scenario switch asks for")
    parser.add_argument("--wait", type=float, default=WAIT_S,
                        help=f"seconds to wait for the stack to answer, e.g. one started just before (default {WAIT_S:g})")


class Watch:
    """What Alertmanager shows and what the record holds, since a point in time."""

    def __init__(self, am: str, record: Path | None):
        self.am, self.record = am.rstrip("/"), record
        self.offset = self.record.stat().st_size if self.record and self.record.exists() else 0

    def alerts(self) -> dict[str, dict]:
        """alertname -> one of its alerts, as its route's group shows it. (Alertmanager 0.33's
        /api/v2/alerts lists an alert held by a time interval as active with an empty mutedBy;
        only the groups endpoint says it is suppressed and by which interval.)"""
        r = http.request("GET", f"{self.am}/api/v2/alerts/groups", timeout=5)
        r.raise_for_status()
        out: dict[str, dict] = {}
        for g in r.json():
            for a in g["alerts"]:
                if a["labels"].get("breaker", "").startswith("synthetic"):
                    continue  # the synthetic self-test's breaker, not a scenario's
                out.setdefault(a["labels"].get("alertname", "?"), a)
        return out

    def notifications(self) -> list[tuple[str, str, list[str]]]:
        """New record lines: (receiver, status, alert names firing/resolved in it)."""
        if not self.record or not self.record.exists():
            return []
        with open(self.record, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        out = []
        for line in data[:end].splitlines():
            try:
                doc = json.loads(line)
            except json.JSONDecodeError:
                continue
            for status in ("firing", "resolved"):
                names = sorted({a["labels"].get("alertname", "?") for a in doc.get("alerts", []) if a.get("status") == status})
                if names:
                    out.append((doc.get("receiver", "?"), status, names))
        return out


def held(alert: dict) -> str | None:
    """Why Alertmanager holds the alert back, in words, or None when it is delivered."""
    st = alert.get("status", {})
    if st.get("mutedBy"):
        return f"muted by time interval {', '.join(st['mutedBy'])} (not delivered now, by design)"
    if st.get("silencedBy"):
        return f"silenced ({', '.join(st['silencedBy'])})"
    if st.get("inhibitedBy"):
        return "inhibited by another alert"
    return None


def late(alert: str, after_s: float, p: Pipeline, speed: float) -> str | None:
    """Said of a page that came later than the catalogue's worst case for it (within the
    tour's margin it is no failure, but the catalogue's figure did not hold)."""
    e = next((e for expects in EXPECTED.values() for e in expects if e.alert == alert), None)
    if e is None or after_s <= p.page_s(e, speed):
        return None
    return f"{alert} paged after {after_s:.1f} s, later than the catalogue's {human(p.page_s(e, speed))}"


def run_scenario(name: str, control: str, watch: Watch, p: Pipeline, speed: float, say,
                 lateness: list[str] | None = None, sim: Caller | None = None) -> list[str]:
    """One scenario on and off; returns the problems (empty: as expected). Pages later than
    the catalogue says go to ``lateness``."""
    expects = EXPECTED[name]
    page_deadline = max(p.page_s(e, speed) for e in expects) * MARGIN_FACTOR + MARGIN_S
    before = set(watch.alerts())
    watch.notifications()  # skip what came before
    say(f"\n== {name}: {SCENARIOS[name]}")
    for e in expects:
        say(f"   expect {e.alert} ({p.severity(e.alert)}) within {human(p.page_s(e, speed))}")
    http.request("POST", f"{control}/scenarios/{name}", timeout=5, **_to(sim)).raise_for_status()
    t0 = time.monotonic()
    problems: list[str] = []
    seen: dict[str, str | None] = {}  # alert -> why held (None: delivered path)
    notified: set[str] = set()
    others: set[str] = set()
    while time.monotonic() - t0 < page_deadline:
        now = watch.alerts()
        for e in expects:
            if e.alert not in now:
                continue
            why = held(now[e.alert])  # muting shows once the route's group is flushed: look every time
            if e.alert not in seen or seen[e.alert] != why:
                seen[e.alert] = why
                say(f"   +{time.monotonic() - t0:5.1f} s  {e.alert} in Alertmanager" + (f": {why}" if why else ""))
        for extra in set(now) - before - {e.alert for e in expects} - others:
            others.add(extra)
            say(f"   +{time.monotonic() - t0:5.1f} s  also: {extra}")
        for receiver, status, names in watch.notifications():
            after = time.monotonic() - t0
            say(f"   +{after:5.1f} s  notification to {receiver}: {status} {', '.join(names)}")
            if status == "firing":
                for a in sorted({e.alert for e in expects} & set(names) - notified):
                    slow = late(a, after, p, speed)
                    if slow:
                        say(f"   LATE  {slow}")
                        if lateness is not None:
                            lateness.append(f"{name}: {slow}")
                notified.update(names)
        if all(e.alert in seen and (e.alert in notified or seen[e.alert] or watch.record is None) for e in expects):
            break
        time.sleep(POLL_S)
    for e in expects:
        why = seen.get(e.alert)
        if e.alert not in seen:
            problems.append(f"{name}: {e.alert} did not fire within {page_deadline:.0f} s")
        elif why and not why.startswith("muted"):
            problems.append(f"{name}: {e.alert} fired but was {why}")
        elif not why and watch.record is not None and e.alert not in notified:
            problems.append(f"{name}: {e.alert} fired but no notification reached the record within {page_deadline:.0f} s")
    http.request("DELETE", f"{control}/scenarios/{name}", timeout=5, **_to(sim)).raise_for_status()
    t1 = time.monotonic()
    resolve_deadline = max(p.resolve_s(e, speed) for e in expects) * MARGIN_FACTOR + MARGIN_S
    say(f"   switched off; expect the resolve within {human(max(p.resolve_s(e, speed) for e in expects))}")
    waiting = {e.alert for e in expects if e.alert in seen}
    while waiting and time.monotonic() - t1 < resolve_deadline:
        for receiver, status, names in watch.notifications():
            say(f"   +{time.monotonic() - t1:5.1f} s  notification to {receiver}: {status} {', '.join(names)}")
        gone = waiting - set(watch.alerts())
        for a in sorted(gone):
            say(f"   +{time.monotonic() - t1:5.1f} s  {a} resolved (gone from Alertmanager)")
        waiting -= gone
        if waiting:
            time.sleep(POLL_S)
    problems += [f"{name}: {a} still active {resolve_deadline:.0f} s after switch-off" for a in sorted(waiting)]
    return problems


def wait_for_stack(control: str, am: str, wait_s: float, sim: Caller | None = None) -> dict | None:
    """The simulator's state once the simulator answers and Alertmanager has Prometheus'
    Watchdog (so the rules are evaluated and alerts arrive), waiting at most ``wait_s`` and
    saying for what; None, said why, if they do not."""
    deadline = time.monotonic() + max(wait_s, 0.0)
    told = False
    while True:
        missing = []
        state = None
        try:
            state = http.request("GET", f"{control}/state", timeout=5, **_to(sim)).json()
        except (http.Error, ValueError) as e:
            missing.append(f"the simulator at {control} ({type(e).__name__})")
        try:
            r = http.request("GET", f"{am}/api/v2/alerts?filter=" + quote(f'alertname="{WATCHDOG}"'), timeout=5)
            r.raise_for_status()
            if not r.json():
                missing.append(f"Prometheus' {WATCHDOG} alert in Alertmanager {am} (Prometheus not evaluating yet)")
        except (http.Error, ValueError) as e:
            missing.append(f"Alertmanager at {am} ({type(e).__name__})")
        if not missing:
            return state
        if time.monotonic() >= deadline:
            print(f"trademon demo: no demo stack answers after {wait_s:g} s: waited for {'; '.join(missing)}\n"
                  "start one first: trademon native --mode demo --speed 30 (or docker compose --profile demo up -d)", file=sys.stderr)
            return None
        if not told:
            print(f"trademon demo: waiting up to {wait_s:g} s for the demo stack: {'; '.join(missing)}",
                  file=sys.stderr, flush=True)
            told = True
        time.sleep(1.0)


def _to(sim: Caller | None) -> dict:
    """The simulator's credentials and TLS trust for trademon.runtime.http (none: plain, open)."""
    return {"headers": sim.headers, "verify": sim.verify} if sim else {}


def main(args) -> int:
    from trademon.settings import webconfig
    from trademon.stack import native

    env, _ = native.load_env(args, native.repo_root())
    sim = webconfig.caller(webconfig.load(env))  # the switch asks for the token once the stack has one; TLS likewise
    am = args.alertmanager or f"http://127.0.0.1:{job_port('alertmanager', env)}"
    control = (args.control or f"{sim.scheme}://127.0.0.1:{env_port('TRADEMON_SIM_CONTROL_PORT', contract.SIM_CONTROL_PORT, env)}").rstrip("/")
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"trademon demo: --scenarios: unknown {', '.join(unknown)}; valid: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    state = wait_for_stack(control, am, args.wait, sim)
    if state is None:
        return 2
    if state.get("scenarios"):
        print(f"trademon demo: scenarios already on: {', '.join(state['scenarios'])}; switch them off first "
              f"(curl -X DELETE {control}/scenarios/<name>)", file=sys.stderr)
        return 2
    speed = float(state.get("speed", 1.0))
    from trademon.stack.native import repo_root

    p = Pipeline.load(repo_root())
    record = Path(args.record) if args.record else None
    watch = Watch(am, record)

    def say(line: str) -> None:
        print(line, flush=True)

    worst = sum(max(p.page_s(e, speed) for e in EXPECTED[n]) + max(p.resolve_s(e, speed) for e in EXPECTED[n]) for n in names)
    say(f"trademon demo: {len(names)} scenarios at speed {speed:g}, worst case {human(worst)}; "
        f"Alertmanager {am}, record {record or '(not watched)'}")
    problems: list[str] = []
    lateness: list[str] = []
    t0 = time.monotonic()
    for n in names:
        try:
            problems += run_scenario(n, control, watch, p, speed, say, lateness, sim)
        except KeyboardInterrupt:
            http.request("DELETE", f"{control}/scenarios/{n}", timeout=5, **_to(sim))
            raise
    say(f"\ntrademon demo: {len(names)} scenarios in {human(time.monotonic() - t0)}")
    for pr in problems:
        say(f"  MISSING {pr}")
    for pr in lateness:
        say(f"  LATE {pr}")
    return 1 if problems else 0
