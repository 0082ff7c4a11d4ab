"""How long the trader waits for `trademon bot`'s answers: from the command reaching Telegram
(the stand-in queues the update, the bot's long poll takes it at once) to the answer
arriving (sendMessage / sendPhoto received by the stand-in).

Not a test: it prints figures. Targets (issue 13): text within 1 s, a chart within 3 s.

    python benchmarks/bot_latency.py [--trials 10] [--warmup 60] [--save-chart docs/telegram-pnl.png]

The whole path runs for real (tests/support/e2estack.py): the simulator, Prometheus,
Alertmanager, the alert-sink, the bot as its own process, the Telegram stand-in. The
baseline is /help (no Prometheus or Alertmanager query): the ratio of each command to it
is what the queries and the chart cost. --save-chart keeps the last daily summary's P&L
chart (made after --warmup seconds of the simulated market) for docs/telegram.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.e2estack import E2EStack  # noqa: E402
from tests.support.standins import StandIns  # noqa: E402

GROUP, USER = int(StandIns.CHAT_ID), StandIns.USER_ID
COMMANDS = [("/help", "text"), ("/status", "text"), ("/alerts", "text"), ("/silences", "text"), ("/pnl", "chart"), ("/exposure", "chart")]


def ask(stack: E2EStack, command: str, kind: str, timeout: float = 30) -> float:
    tg = stack.telegram
    start_photos = len(tg.photos)
    t0 = time.time()
    tg.command(command, GROUP, USER)

    def answered():
        if kind == "chart":
            return [p["at"] for p in tg.photos[start_photos:]]
        return [r.at for r in tg.requests if r.at >= t0 and r.path.endswith("/sendMessage") and r.status == 200
                and r.body.get("chat_id") == GROUP and "disable_notification" not in r.body]  # not an alert notification
    at = stack.alerting.wait(answered, timeout, f"the answer to {command}")
    return min(at) - t0


def save_chart(stack: E2EStack, path: Path) -> None:
    from trademon.bot.cli import Bot
    from trademon.bot.config import BotConfig

    with tempfile.TemporaryDirectory() as d:
        env = {**stack.alerting.bot_environment(), "TRADEMON_BOT_STATE_DIR": d}

        async def run():
            bot = Bot(BotConfig.from_env(env))
            try:
                end = time.time()
                return await bot.reports.pnl_chart(end - 15 * 60, end)
            finally:
                await bot.close()
        png, _ = asyncio.run(run())
    path.write_bytes(png)
    print(f"chart saved: {path} ({len(png)} bytes)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--warmup", type=float, default=30, help="seconds of simulated trading before measuring (default 30)")
    ap.add_argument("--save-chart", type=Path, help="write a P&L chart (the daily summary's) here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bot-latency-") as d:
        stack = E2EStack(Path(d), speed=30, scrape="1s", evaluation="1s", am_intervals={"group_wait": "3s", "group_interval": "3s"},
                         for_scale=30)
        try:
            stack.sim.on("loss-breach")  # something to show: a breach, a breaker, alerts
            time.sleep(args.warmup)
            stack.sim.off("loss-breach")
            time.sleep(args.warmup / 2)
            results: dict[str, list[float]] = {}
            for _ in range(args.trials):
                for cmd, kind in COMMANDS:
                    results.setdefault(cmd, []).append(ask(stack, cmd, kind))
            base = statistics.median(results["/help"])
            print(f"\n{args.trials} trials each; baseline /help median {base * 1000:.0f} ms")
            print(f"{'command':<10} {'kind':<6} {'median ms':>10} {'max ms':>8} {'ratio':>6}  target")
            ok = True
            for cmd, kind in COMMANDS:
                med, worst = statistics.median(results[cmd]), max(results[cmd])
                target = 1.0 if kind == "text" else 3.0
                ok &= worst <= target
                print(f"{cmd:<10} {kind:<6} {med * 1000:10.0f} {worst * 1000:8.0f} {med / base:6.1f}  < {target:.0f} s {'ok' if worst <= target else 'OVER'}")
            if args.save_chart:
                save_chart(stack, args.save_chart)
        finally:
            stack.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
