"""Benchmark: one transition fanned out to 1,000 subscribed channels, under rate limits.

The real path: a temp-file SQLite store with 1,000 subscriptions, one stored transition,
``Alerts.enqueue`` filling the outbox, then ``Outbox.run`` (real clock) posting through
``HttpChat`` to the fake chat platform on loopback, which enforces 1 message/s per channel and a
global limit (50/s, Discord's) with 429s. Prints the delivered count (must be all), the 429s,
the wall time, the floor the global limit sets (channels / global rate) and wall/floor
(goal ≤ 1.2×). Not a test.
Run: python tests/bench/bench_fanout.py [--channels 1000] [--global-rate 50] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx2

from bot.alerts import Alerts
from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.outbox import Outbox
from bot.store import PendingPost, Store
from tests.fakes.chat_platform import ChatPlatform, HttpChat

PLATFORM = "discord"
SERVICE = "sora-2-relay"
GOAL = 1.2


class CountingStore(Store):
    """Counts the outbox passes (each starts with one ``pending_posts`` read) and their cost."""

    passes = 0
    read_seconds = 0.0

    def pending_posts(self) -> list[PendingPost]:
        started = time.perf_counter()
        try:
            return super().pending_posts()
        finally:
            self.passes += 1
            self.read_seconds += time.perf_counter() - started


def utcnow() -> datetime:
    return datetime.now(UTC)


def fill(store: Store, channels: int, now: datetime) -> int:
    """Subscribe the channels, record one transition and let ``Alerts`` fan it out."""
    for i in range(channels):
        store.subscribe(PLATFORM, "T1", f"C{i:04d}", services=("*",),
                        min_state=State.DEGRADED, by="bench", now=now)
    at = now - timedelta(seconds=1)
    health = Health(SERVICE, State.SUSPENDED, since=at, reason="HTTP 503 three times",
                    fail_streak=("unavailable",) * 3, last_checked=at,
                    last_outcome=Outcome.UNAVAILABLE, first_bad_at=at - timedelta(minutes=1))
    store.record(ProbeResult(SERVICE, at, Outcome.UNAVAILABLE, latency_ms=120.0,
                             http_status=503, error="service unavailable"),
                 health,
                 Transition(SERVICE, State.OPERATIONAL, State.SUSPENDED, at,
                            "HTTP 503 three times in a row", evidence={"http_status": 503}))
    return Alerts(store=store, names={SERVICE: "Sora 2 (relay)"}).enqueue(now)


async def trial(args: argparse.Namespace, *, paced: bool) -> None:
    """One fan-out; ``paced``: the outbox paces sends to the platform's global rate."""
    with tempfile.TemporaryDirectory() as tmp:
        store = CountingStore(Path(tmp) / "bench.db")
        enqueued = fill(store, args.channels, utcnow())
        assert enqueued == args.channels, enqueued
        async with ChatPlatform(channel_rate=1.0, global_rate=args.global_rate) as platform:
            limits = httpx2.Limits(max_connections=args.concurrency,
                                   max_keepalive_connections=args.concurrency)
            async with httpx2.AsyncClient(limits=limits, timeout=10.0) as client:
                outbox = Outbox(store=store, chats={PLATFORM: HttpChat(client, platform.url,
                                                                       platform=PLATFORM)},
                                clock=utcnow, concurrency=args.concurrency,
                                rates={PLATFORM: args.global_rate} if paced else None)
                stop = asyncio.Event()
                started, cpu = time.perf_counter(), time.process_time()
                worker = asyncio.create_task(outbox.run(stop, idle=5.0))
                async with asyncio.timeout(600):
                    # the store has no change notification: poll (not counted as a pass)
                    while Store.pending_posts(store):  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                stop.set()
                await worker
        posts = store.posts()
        store.close()

    delivered = len({a.key for a in platform.accepted})
    assert delivered == args.channels and len(platform.accepted) == delivered, delivered
    assert all(p["sent_at"] is not None for p in posts)
    floor = args.channels / args.global_rate
    ratio = wall / floor
    tries = [p["attempts"] for p in posts]
    first, last = platform.accepted[0].at, platform.accepted[-1].at
    steady = (len(platform.accepted) - 1) / max((last - first).total_seconds(), 1e-9)
    how = ("paced to the platform's rate (the default for Discord)" if paced
           else "baseline: no pacing, only reacting to 429 / Retry-After")
    print(f"\n{how}")
    print(f"  delivered: {delivered}/{args.channels} (each once)")
    print(f"  429s received: {platform.rate_limited} "
          f"({platform.global_limited} global); requests: {len(platform.attempts)}; "
          f"attempts per post: max {max(tries)}, mean {sum(tries) / len(tries):.1f}")
    print(f"  wall time: {wall:.2f}s (process CPU {cpu:.2f}s); accepted rate "
          f"{steady:.1f} msg/s; outbox passes: {store.passes}")
    verdict = "met" if ratio <= GOAL else "NOT met"
    print(f"  rate-limit floor: {floor:.2f}s; wall/floor: {ratio:.2f}x "
          f"(goal ≤ {GOAL}x — {verdict})")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--global-rate", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    print(f"one transition fanned out to {args.channels} channels (platform: 1 msg/s per "
          f"channel, {args.global_rate:g} msg/s global, 429 on excess; Outbox concurrency "
          f"{args.concurrency})")
    await trial(args, paced=False)
    await trial(args, paced=True)


if __name__ == "__main__":
    asyncio.run(main())
