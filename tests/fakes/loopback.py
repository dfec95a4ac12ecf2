"""A real HTTP server on 127.0.0.1 (port 0) for end-to-end tests; handlers are set per test.

    async with Loopback() as server:
        server.route("GET", "/v1/models/sora-2", json_handler({"id": "sora-2"}))
        ... httpx2.AsyncClient against server.url ...
        assert server.requests[0].path == "/v1/models/sora-2"

``Loopback.closing`` is set on exit so handlers that simulate slowness (``hang``, ``trickle``)
return promptly. ``raw_server`` serves fixed bytes over plain TCP, for malformed HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names


class Loopback:
    """An aiohttp server on 127.0.0.1 with a per-test routing table and a request log."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[Recorded] = []
        self.closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    async def __aenter__(self) -> Loopback:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(
            method=request.method, path=request.path, query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()}))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return web.json_response({"error": {"message": "no such route", "code": None}},
                                     status=404)
        return await handler(request)

    # --- handlers for common behaviours ------------------------------------------------------

    def hang(self) -> Handler:
        """Accept the request and never answer (until the server closes)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            await self.closing.wait()
            return web.Response(status=204)

        return handler

    def trickle(self, *, every: float = 0.05, chunk: bytes = b" ") -> Handler:
        """Send headers at once, then one small chunk every ``every`` seconds, forever."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            with suppress(ConnectionError, RuntimeError):
                while not self.closing.is_set():
                    await response.write(chunk)
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self.closing.wait(), every)
            return response

        return handler


def json_handler(payload: Any, *, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(payload, status=status)

    return handler


def bytes_handler(body: bytes, *, status: int = 200,
                  content_type: str = "application/json", chunked: bool = False,
                  chunk_size: int = 65536) -> Handler:
    """Serve ``body``; ``chunked`` streams it without a Content-Length."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if not chunked:
            return web.Response(body=body, status=status, content_type=content_type)
        response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with suppress(ConnectionError, RuntimeError):
            for start in range(0, len(body), chunk_size):
                await response.write(body[start:start + chunk_size])
            await response.write_eof()
        return response

    return handler


def text_handler(text: str, *, status: int = 200, content_type: str = "text/html") -> Handler:
    return bytes_handler(text.encode(), status=status, content_type=content_type)


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


@asynccontextmanager
async def raw_server(response: bytes) -> AsyncIterator[str]:
    """A TCP server that reads the request head, writes ``response`` verbatim and closes."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(response)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()
