"""APScheduler wiring: the probe tick, due digests, hourly rollups and retention."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import ServiceConfig
from bot.digest import enqueue_due_digests
from bot.monitor import Monitor
from bot.outbox import Outbox
from bot.store import Store

log = logging.getLogger(__name__)
DIGEST_CHECK_SECONDS = 30


def build_scheduler(*, monitor: Monitor, store: Store, outbox: Outbox,
                    services: Sequence[ServiceConfig], tick_seconds: float, retention_days: int,
                    clock: Callable[[], datetime]) -> AsyncIOScheduler:
    """Every tick runs whatever probes are due; overlapping ticks are skipped, not queued."""

    async def tick() -> None:
        report = await monitor.run_cycle()
        if report.results:
            log.debug("cycle: %d probes in %.2fs, %d transitions", len(report.results),
                      report.wall_seconds, len(report.transitions))

    async def digests() -> None:
        if await enqueue_due_digests(store, services, clock()):
            outbox.wake()

    async def maintain() -> None:
        store.rollup(clock())
        store.prune(clock(), raw_days=retention_days)

    scheduler = AsyncIOScheduler(timezone="UTC")
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(tick, "interval", seconds=tick_seconds, next_run_time=clock(),
                      id="probe-cycle", **common)
    scheduler.add_job(digests, "interval", seconds=DIGEST_CHECK_SECONDS, next_run_time=clock(),
                      id="digests", **common)
    scheduler.add_job(maintain, "interval", hours=1, id="rollup-and-retention", **common)
    return scheduler
