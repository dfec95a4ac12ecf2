"""Wiring: build the runtime (store, HTTP client, monitor, chat) from ``Settings``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx2

from bot.chat import ChatPort
from bot.commands import Commands
from bot.config import ServiceConfig, Settings
from bot.digest import build_digest
from bot.generate import Generator
from bot.metrics import Metrics
from bot.models import State
from bot.monitor import Monitor
from bot.outbox import Outbox
from bot.providers import VideoProvider
from bot.redact import Redactor
from bot.router import Router
from bot.scheduler import build_scheduler
from bot.server import Route, build_app, serve
from bot.store import Store
from bot.subscriptions import ALL

log = logging.getLogger(__name__)
USER_AGENT = "sora-status-bot/0.1 (+status probe; never generates)"
# Posts per second a platform allows a whole bot; sends are paced to it (Discord's global limit).
PLATFORM_RATES = {"discord": 50.0}
LOCAL_WORKSPACE = "local"  # the workspace of channels that belong to this process (console)


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
    chats: dict[str, ChatPort]
    outbox: Outbox
    monitor: Monitor
    metrics: Metrics
    redactor: Redactor
    clock: Callable[[], datetime]
    commands: Commands
    generator: Generator


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, chats: Sequence[ChatPort],
                       local_channel: str | None = None,
                       clock: Callable[[], datetime] = utcnow,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
                       ) -> AsyncIterator[Runtime]:
    """Open the store, HTTP pools, outbox, monitor and generator. ``local_channel``: subscribe
    that channel of the first chat to every service unless it has a subscription already (the
    console). ``sleep``: how generation jobs wait between polls."""
    redactor = Redactor(settings.secrets())
    store = Store(settings.db_path)
    metrics = Metrics()
    client = make_http_client(settings)
    # Generations get their own pool: no probe User-Agent, no redirects on a paid POST.
    gen_client = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=50))
    try:
        by_platform = {c.platform: c for c in chats}
        if local_channel is not None and chats:
            _subscribe_local(store, chats[0].platform, local_channel, clock())
        outbox = Outbox(store=store, chats=by_platform, clock=clock,
                        concurrency=settings.delivery_concurrency,
                        max_age=timedelta(hours=settings.give_up_after_hours), metrics=metrics,
                        rates=PLATFORM_RATES)
        remind = settings.remind_every_minutes
        monitor = Monitor(settings=settings, store=store, client=client, outbox=outbox,
                          clock=clock, redactor=redactor, metrics=metrics,
                          remind_every=timedelta(minutes=remind) if remind else None)
        providers = Providers(settings, gen_client, redactor)
        generator = Generator(
            gen=settings.generate, services=settings.services, store=store, chats=by_platform,
            providers=providers,
            router=Router(gen=settings.generate, clock=clock, feed=monitor.record_passive),
            health=monitor.health, clock=clock, deliver=monitor.deliver, sleep=sleep,
            metrics=metrics)
        commands = Commands(
            store=store, services=settings.services, clock=clock, admins=settings.admins,
            digest=lambda sub, now: build_digest(store, settings.services, sub, now),
            on_change=monitor.deliver, metrics=metrics, generator=generator)
        try:
            yield Runtime(settings, store, client, by_platform, outbox, monitor, metrics,
                          redactor, clock, commands, generator)
        finally:
            await generator.close()
            await providers.aclose()
    finally:
        await gen_client.aclose()
        await client.aclose()
        store.close()


class Providers:
    """One provider per video service, made on first use and kept (they hold SDK clients)."""

    def __init__(self, settings: Settings, client: httpx2.AsyncClient, redactor: Redactor
                 ) -> None:
        self._client = client
        self._redactor = redactor
        self._timeout = settings.generate.submit_timeout
        self._made: dict[str, VideoProvider] = {}

    def __call__(self, svc: ServiceConfig) -> VideoProvider:
        if svc.id not in self._made:
            if svc.kind == "gemini":
                from bot.providers.veo import VeoProvider
                self._made[svc.id] = VeoProvider(service=svc, http_client=self._client,
                                                 timeout=self._timeout, redactor=self._redactor)
            else:
                from bot.providers.openai_videos import OpenAIVideos
                self._made[svc.id] = OpenAIVideos(service=svc, http_client=self._client,
                                                  timeout=self._timeout, redactor=self._redactor)
        return self._made[svc.id]

    async def aclose(self) -> None:
        for provider in self._made.values():
            await provider.aclose()


def _subscribe_local(store: Store, platform: str, channel: str, now: datetime) -> None:
    if store.subscription(platform, LOCAL_WORKSPACE, channel) is None:
        store.subscribe(platform, LOCAL_WORKSPACE, channel, services=(ALL,),
                        min_state=State.DEGRADED, by="sora-bot", now=now)


async def run_forever(rt: Runtime, *, stop: asyncio.Event, routes: Sequence[Route] = ()) -> None:
    """``sora-bot run``: scheduler + HTTP server (with the adapters' ``routes``) until ``stop``."""
    s = rt.settings
    shortest = min((svc.interval for svc in s.services if svc.enabled), default=60.0)
    app = build_app(metrics=rt.metrics, last_cycle=lambda: rt.monitor.last_cycle_at,
                    clock=rt.clock, started_at=rt.clock(),
                    stale_after=max(3 * s.tick_seconds, shortest) + 120, routes=routes)
    runner, port = await serve(app, host=s.host, port=s.port)
    paths = ", ".join(["/healthz", "/metrics", *(r.path for r in routes)])
    log.info("serving %s on %s:%d", paths, s.host, port)
    await rt.monitor.deliver()  # alerts a previous run stored but could not post
    scheduler = build_scheduler(monitor=rt.monitor, store=rt.store, outbox=rt.outbox,
                                services=s.services, tick_seconds=s.tick_seconds,
                                retention_days=s.retention_days, clock=rt.clock)
    scheduler.start()
    resumed = rt.generator.resume()
    if resumed:
        log.info("resumed %d unfinished generation job(s)", resumed)
    delivery = asyncio.create_task(rt.outbox.run(stop), name="outbox")
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await delivery
        await runner.cleanup()
