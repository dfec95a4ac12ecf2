"""APScheduler wiring: the probe tick, hourly rollups and daily retention."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.monitor import Monitor
from bot.store import Store

log = logging.getLogger(__name__)


def build_scheduler(*, monitor: Monitor, store: Store, tick_seconds: float, retention_days: int,
                    clock: Callable[[], datetime]) -> AsyncIOScheduler:
    """Every tick runs whatever probes are due; overlapping ticks are skipped, not queued."""

    async def tick() -> None:
        report = await monitor.run_cycle()
        if report.results:
            log.debug("cycle: %d probes in %.2fs, %d transitions", len(report.results),
                      report.wall_seconds, len(report.transitions))

    async def maintain() -> None:
        store.rollup(clock())
        store.prune(clock(), raw_days=retention_days)

    scheduler = AsyncIOScheduler(timezone="UTC")
    common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 30}
    scheduler.add_job(tick, "interval", seconds=tick_seconds, next_run_time=clock(),
                      id="probe-cycle", **common)
    scheduler.add_job(maintain, "interval", hours=1, id="rollup-and-retention", **common)
    return scheduler
