"""Wiring: build the runtime (store, HTTP client, monitor, chat) from ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx2

from bot.chat import ChatPort
from bot.config import Settings
from bot.metrics import Metrics
from bot.monitor import Monitor
from bot.redact import Redactor
from bot.scheduler import build_scheduler
from bot.server import build_app, serve
from bot.store import Store

log = logging.getLogger(__name__)
USER_AGENT = "sora-status-bot/0.1 (+status probe; never generates)"


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_http_client(settings: Settings) -> httpx2.AsyncClient:
    """One pool for every probe; per-request timeouts come from each service."""
    limits = httpx2.Limits(max_connections=settings.concurrency,
                           max_keepalive_connections=settings.concurrency)
    return httpx2.AsyncClient(limits=limits, timeout=httpx2.Timeout(10.0),
                              headers={"User-Agent": USER_AGENT}, follow_redirects=True)


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: Store
    client: httpx2.AsyncClient
    chat: ChatPort
    monitor: Monitor
    metrics: Metrics
    redactor: Redactor
    clock: Callable[[], datetime]


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, chat: ChatPort, channel: str = "alerts",
                       clock: Callable[[], datetime] = utcnow) -> AsyncIterator[Runtime]:
    redactor = Redactor(settings.secrets())
    store = Store(settings.db_path)
    metrics = Metrics()
    client = make_http_client(settings)
    try:
        monitor = Monitor(settings=settings, store=store, client=client, chat=chat,
                          channel=channel, clock=clock, redactor=redactor, metrics=metrics)
        yield Runtime(settings, store, client, chat, monitor, metrics, redactor, clock)
    finally:
        await client.aclose()
        store.close()


async def run_forever(rt: Runtime, *, stop: asyncio.Event) -> None:
    """``sora-bot run``: scheduler + HTTP server until ``stop`` is set."""
    s = rt.settings
    shortest = min((svc.interval for svc in s.services if svc.enabled), default=60.0)
    app = build_app(metrics=rt.metrics, last_cycle=lambda: rt.monitor.last_cycle_at,
                    clock=rt.clock, started_at=rt.clock(),
                    stale_after=max(3 * s.tick_seconds, shortest) + 120)
    runner, port = await serve(app, host=s.host, port=s.port)
    log.info("serving /healthz and /metrics on %s:%d", s.host, port)
    await rt.monitor.deliver()  # alerts a previous run stored but could not post
    scheduler = build_scheduler(monitor=rt.monitor, store=rt.store, tick_seconds=s.tick_seconds,
                                retention_days=s.retention_days, clock=rt.clock)
    scheduler.start()
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await runner.cleanup()
