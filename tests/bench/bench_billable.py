"""Benchmark: billable calls made by a day of default probing (goal: 0).

Every built-in service configured (keys set) and pointed at loopback simulators that count
generation requests; a fake clock walks 24 h in 5-second scheduler ticks. Not a test.
Run: python tests/bench/bench_billable.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import make_http_client
from bot.monitor import Monitor
from bot.redact import Redactor
from bot.store import Store
from tests.fakes.chat import FakeChat, FakeClock, wire
from tests.fakes.world import default_world


async def main() -> None:
    clock = FakeClock()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        async with default_world(Path(tmp)) as world:
            store = Store(world.settings.db_path)
            probes: Counter[str] = Counter()
            async with make_http_client(world.settings) as client:
                monitor = Monitor(settings=world.settings, store=store, client=client,
                                  outbox=wire(store, FakeChat(), "c", clock), clock=clock,
                                  redactor=Redactor(world.settings.secrets()))
                tick = world.settings.tick_seconds
                for _ in range(int(24 * 3600 / tick)):
                    for r in (await monitor.run_cycle()).results:
                        probes[r.service] += 1
                    clock.advance(tick)
            store.close()
            calls = Counter(f"{m} {p.split('/')[1] if p.count('/') > 1 else p}"
                            for relay in world.relays for m, p in relay.requests)
            print("a simulated day of default probing (24 h of 5 s ticks, fake clock)")
            print(f"  services probed: {len(probes)}; probes: {sum(probes.values())} "
                  f"({', '.join(f'{k}={v}' for k, v in sorted(probes.items()))})")
            print(f"  HTTP requests to relays and status pages: {world.requests}")
            print(f"  requests by method/root: {dict(calls)}")
            verdict = "met" if not world.billable_calls else "NOT met"
            print(f"  billable calls (POST /v1/videos, POST /v1/images/generations): "
                  f"{world.billable_calls}  (goal: 0 — {verdict})")
            print(f"  wall time: {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    asyncio.run(main())
