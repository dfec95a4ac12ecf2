"""The bot's HTTP surface: ``GET /healthz`` and ``GET /metrics`` (adapters may add routes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from bot.metrics import CONTENT_TYPE, Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    """An endpoint an adapter serves on the bot's port (Slack's ``POST /slack/events``)."""

    method: str
    path: str
    handler: Handler


def build_app(*, metrics: Metrics, last_cycle: Callable[[], datetime | None],
              clock: Callable[[], datetime], started_at: datetime, stale_after: float,
              routes: Sequence[Route] = ()) -> web.Application:
    """Healthy while probe cycles keep finishing; 503 once the last one is ``stale_after`` old.
    ``routes``: what the chat adapters serve on the same port."""

    async def healthz(request: web.Request) -> web.Response:
        now = clock()
        last = last_cycle()
        age = (now - (last or started_at)).total_seconds()
        ok = age <= stale_after
        body = {"status": "ok" if ok else "stale",
                "last_cycle": last.isoformat() if last else None,
                "seconds_since_last_cycle": round(age, 1)}
        return web.json_response(body, status=200 if ok else 503)

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
    return app


async def serve(app: web.Application, *, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app``; returns the runner (to clean up) and the bound port (``port=0`` allowed).

    The backlog is raised from aiohttp's 128 so hundreds of clients can connect at once.
    """
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=1024).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])
