"""Default probing never creates a paid generation."""

from __future__ import annotations

import math
from pathlib import Path

from bot.app import make_http_client
from bot.monitor import Monitor
from bot.redact import Redactor
from bot.store import Store
from tests.fakes.chat import FakeChat, FakeClock, wire
from tests.fakes.world import default_world


async def test_an_hour_of_default_probing_makes_no_billable_call(tmp_path: Path) -> None:
    clock = FakeClock()
    async with default_world(tmp_path) as world:
        store = Store(world.settings.db_path)
        async with make_http_client(world.settings) as client:
            monitor = Monitor(settings=world.settings, store=store, client=client,
                              outbox=wire(store, FakeChat(), "c", clock), clock=clock,
                              redactor=Redactor(world.settings.secrets()))
            probed = 0
            for _ in range(60):
                probed += len((await monitor.run_cycle()).results)
                clock.advance(60)
        store.close()
        assert all(s.missing is None for s in world.settings.services)  # everything was live
        expected = sum(math.ceil(3600 / s.interval) for s in world.settings.services)
        assert probed == expected and world.requests >= expected  # every due probe ran
        assert world.billable_calls == 0
