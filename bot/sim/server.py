"""Loopback HTTP plumbing shared by the simulators: bind 127.0.0.1:0, record, stop cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from types import TracebackType
from typing import Self

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.server import serve


class LoopbackServer:
    """Start/stop/``async with`` for a simulator; subclasses build the app and name the URL suffix.

    Every request is recorded as ``(method, path)`` in ``requests``.
    """

    url_suffix = ""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.base_url = ""  # http://127.0.0.1:PORT once started
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()

    @property
    def url(self) -> str:
        """The URL clients are configured with (``start()`` returns it)."""
        if not self.base_url:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self.base_url + self.url_suffix

    def build_app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> str:
        if self._runner is not None:
            return self.url
        self._stopping.clear()
        self._runner, port = await serve(self.build_app(), host="127.0.0.1", port=0)
        self.base_url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        """Release hanging handlers, then close the listener and every connection."""
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def recorder(self) -> Middleware:
        """Middleware that appends ``(method, path)`` to ``requests`` before anything else runs."""

        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.requests.append((request.method, request.path))
            return await handler(request)

        return record

    @staticmethod
    def unknown_routes(answer: Callable[[web.Request], web.StreamResponse]) -> Middleware:
        """Middleware that answers unknown routes and methods the way the real API does."""

        @web.middleware
        async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await handler(request)
            except (web.HTTPNotFound, web.HTTPMethodNotAllowed):
                return answer(request)

        return envelope

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the server is being stopped."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), seconds)

    async def hang(self, request: web.Request) -> web.StreamResponse:
        """Never answer: wait until ``stop()``, then drop the connection without a response."""
        await self._stopping.wait()
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError
