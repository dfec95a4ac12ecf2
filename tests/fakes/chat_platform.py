"""A fake chat platform on loopback HTTP, and ``HttpChat``: a ``ChatPort`` that speaks to it.

Modelled on what matters of Slack and Discord for delivery: ``POST /messages`` with JSON
``{"channel", "key", "reply_to", "message": {...}}`` answers 200 ``{"id": "..."}``. The server
records every accepted message and every attempt. Behaviours, all off by default and all
changeable between requests (plain attributes):

- ``refuse_until``: an outage judged with the injected ``clock``; the refusals of a post
  alternate 503 (``Retry-After: 7``) and 429 (``Retry-After: 11``), each recorded with the
  earliest time a retry is allowed.
- idempotency by ``key`` (Discord's ``nonce`` + ``enforce_nonce``): a key seen before answers
  the original id and is not recorded again; ``dedup_hits`` counts those.
- rate limits on the monotonic clock: ``channel_rate`` per channel and ``global_rate`` for the
  whole bot (token buckets; bursts of ``channel_burst`` / ``global_burst``), answered with 429,
  a JSON body ``{"retry_after": s, "global": bool}`` and a fractional ``Retry-After`` header.
- ``pause_after``: once that many messages were accepted, new ones get 503 with
  ``Retry-After: pause_retry_after`` (to stop a client between two posts).
- ``hold_after_accept``: record the message as accepted, then wait that long before answering
  (so a client can be killed with its post accepted but unanswered).

    async with ChatPlatform(clock=clock) as platform:
        async with httpx2.AsyncClient() as client:
            chat = HttpChat(client, platform.url)
            ref = await chat.send("C1", message, key="k1")
        assert platform.accepted[0].key == "k1"
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from aiohttp import web

from bot.chat import DeliveryError, MessageRef
from bot.messages import Message, message_to_json
from tests.fakes.loopback import Loopback


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message the platform took (once per key)."""

    id: str
    channel: str
    key: str | None
    reply_to: str | None
    title: str
    at: datetime  # by the injected clock


@dataclass(frozen=True, slots=True)
class Attempt:
    """One ``POST /messages``, whatever came of it."""

    channel: str
    key: str | None
    at: datetime  # by the injected clock
    status: int
    retry_not_before: datetime | None = None  # refusals: the earliest a retry is allowed
    reason: str = "accepted"  # accepted | duplicate | outage | paused | rate_limit | bad_request


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.updated = now

    def wait(self, now: float) -> float:
        """Seconds until one token is available (0: now)."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1.0


class ChatPlatform(Loopback):
    """The fake platform: a ``Loopback`` server (127.0.0.1, port 0) answering the chat API."""

    OUTAGE_REPLIES = ((503, 7.0), (429, 11.0))  # alternated, per post, while refusing

    def __init__(self, *, clock: Callable[[], datetime] = _utcnow,
                 refuse_until: datetime | None = None,
                 channel_rate: float | None = None, channel_burst: float = 1.0,
                 global_rate: float | None = None, global_burst: float | None = None,
                 hold_after_accept: float = 0.0, pause_after: int | None = None,
                 pause_retry_after: float = 0.5, gone_channels: frozenset[str] = frozenset(),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.clock = clock
        self.refuse_until = refuse_until
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self.global_rate = global_rate
        self.global_burst = global_burst if global_burst is not None else global_rate
        self.hold_after_accept = hold_after_accept
        self.pause_after = pause_after
        self.pause_retry_after = pause_retry_after
        self.gone_channels = gone_channels
        self.monotonic = monotonic
        self.accepted: list[Accepted] = []
        self.edits: list[str] = []  # titles that replaced a posted message (PATCH)
        self.attempts: list[Attempt] = []
        self.dedup_hits = 0
        self.rate_limited = 0  # 429s for rate limits (not outages)
        self.global_limited = 0  # of which for the global limit
        self._by_key: dict[str, Accepted] = {}
        self._by_id: dict[str, Accepted] = {}
        self._ids = itertools.count(1_000_001)
        self._channel_buckets: dict[str, TokenBucket] = {}
        self._global_bucket: TokenBucket | None = None
        self._changed = asyncio.Event()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.method == "POST" and request.path == "/messages":
            return await self._post(request)
        if request.method == "PATCH" and request.path.startswith("/messages/"):
            return await self._patch(request, request.path.removeprefix("/messages/"))
        return await super()._dispatch(request)

    # --- what tests read ---------------------------------------------------------------------

    def in_channel(self, channel: str) -> list[Accepted]:
        return [a for a in self.accepted if a.channel == channel]

    def by_key(self, key: str) -> Accepted | None:
        return self._by_key.get(key)

    def attempts_for(self, key: str) -> list[Attempt]:
        return [a for a in self.attempts if a.key == key]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds after some request (bound it with asyncio.timeout)."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()

    # --- the server --------------------------------------------------------------------------

    def _attempt(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self._changed.set()

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        channel, key, reply_to = str(body["channel"]), body.get("key"), body.get("reply_to")
        now = self.clock()

        def refuse(status: int, retry_after: float, reason: str,
                   payload: dict[str, Any] | None = None) -> web.StreamResponse:
            self._attempt(Attempt(channel, key, now, status,
                                  now + timedelta(seconds=retry_after), reason))
            headers = {"Retry-After": _seconds(retry_after)}
            if payload is None:
                return web.Response(status=status, text="try again later", headers=headers)
            return web.json_response(payload, status=status, headers=headers)

        if self.refuse_until is not None and now < self.refuse_until:
            turn = sum(1 for a in self.attempts if a.key == key and a.reason == "outage")
            status, after = self.OUTAGE_REPLIES[turn % len(self.OUTAGE_REPLIES)]
            return refuse(status, after, "outage")
        if channel in self.gone_channels:
            self._attempt(Attempt(channel, key, now, 404, reason="bad_request"))
            return web.json_response({"message": "Unknown Channel", "code": 10003}, status=404)
        limited = self._rate_limit(channel)
        if limited is not None:
            after, is_global = limited
            self.rate_limited += 1
            self.global_limited += is_global
            return refuse(429, after, "rate_limit", {
                "message": "You are being rate limited.", "retry_after": after,
                "global": is_global})
        if key is not None and key in self._by_key:
            self.dedup_hits += 1
            self._attempt(Attempt(channel, key, now, 200, reason="duplicate"))
            return web.json_response({"id": self._by_key[key].id, "duplicate": True})
        if self.pause_after is not None and len(self.accepted) >= self.pause_after:
            return refuse(503, self.pause_retry_after, "paused")
        if reply_to is not None and (reply_to not in self._by_id
                                     or self._by_id[reply_to].channel != channel):
            self._attempt(Attempt(channel, key, now, 400, reason="bad_request"))
            return web.json_response({"message": "Unknown Message", "code": 10008}, status=400)
        self._take_tokens(channel)
        message = Accepted(str(next(self._ids)), channel, key, reply_to,
                           str(body["message"]["title"]), now)
        self.accepted.append(message)
        self._by_id[message.id] = message
        if key is not None:
            self._by_key[key] = message
        self._attempt(Attempt(channel, key, now, 200))
        hold = self.hold_after_accept
        if hold > 0:
            with suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), hold)
        return web.json_response({"id": message.id})

    async def _patch(self, request: web.Request, message_id: str) -> web.StreamResponse:
        if message_id not in self._by_id:
            return web.json_response({"message": "Unknown Message", "code": 10008}, status=404)
        body = await request.json()
        self.edits.append(str(body["message"]["title"]))
        return web.json_response({"id": message_id})

    def _rate_limit(self, channel: str) -> tuple[float, bool] | None:
        """``(retry_after, global)`` when a limit refuses the request, else None."""
        now = self.monotonic()
        if self.global_rate is not None:
            if self._global_bucket is None:
                self._global_bucket = TokenBucket(self.global_rate,
                                                  self.global_burst or self.global_rate, now)
            wait = self._global_bucket.wait(now)
            if wait > 0:
                return wait, True
        if self.channel_rate is not None:
            bucket = self._channel_buckets.get(channel)
            if bucket is None:
                bucket = self._channel_buckets[channel] = TokenBucket(
                    self.channel_rate, self.channel_burst, now)
            wait = bucket.wait(now)
            if wait > 0:
                return wait, False
        return None

    def _take_tokens(self, channel: str) -> None:
        if self._global_bucket is not None:
            self._global_bucket.take()
        if channel in self._channel_buckets:
            self._channel_buckets[channel].take()


def _seconds(value: float) -> str:
    """A ``Retry-After`` value: whole seconds as such, else fractional (rounded up, ms)."""
    if value == int(value):
        return str(int(value))
    return f"{math.ceil(value * 1000) / 1000:.3f}"


class HttpChat:
    """A ``ChatPort`` over ``httpx2`` to a ``ChatPlatform`` (the shape a real adapter has)."""

    def __init__(self, client: httpx2.AsyncClient, base_url: str, *,
                 platform: str = "http") -> None:
        self.platform = platform
        self._client = client
        self._base = base_url.rstrip("/")

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        payload = {"channel": channel, "key": key,
                   "reply_to": None if reply_to is None else reply_to.id,
                   "message": {"title": message.title, "text": message.text,
                               "body": message_to_json(message)}}
        try:
            response = await self._client.post(f"{self._base}/messages", json=payload)
        except httpx2.TransportError as e:
            raise DeliveryError(f"{type(e).__name__}: {e}") from e
        _raise_for(response)
        return MessageRef(self.platform, channel, str(response.json()["id"]))

    async def edit(self, ref: MessageRef, message: Message) -> None:
        try:
            response = await self._client.patch(
                f"{self._base}/messages/{ref.id}",
                json={"message": {"title": message.title, "text": message.text}})
        except httpx2.TransportError as e:
            raise DeliveryError(f"{type(e).__name__}: {e}") from e
        _raise_for(response)


def _raise_for(response: httpx2.Response) -> None:
    """429 and 5xx: retry (when the platform says); other 4xx: permanent."""
    status = response.status_code
    if status < 400:
        return
    body: Any = None
    with suppress(ValueError):
        body = response.json()
    body = body if isinstance(body, dict) else {}
    what = f"HTTP {status}: {body.get('message') or response.text[:100]}"
    if status == 429 or status >= 500:
        raise DeliveryError(what, retry_after=_retry_after(response, body),
                            global_limit=bool(body.get("global", False)))
    raise DeliveryError(what, permanent=True)


def _retry_after(response: httpx2.Response, body: dict[str, Any]) -> float | None:
    """The body's ``retry_after`` (Discord: the precise one), else the header's seconds."""
    for value in (body.get("retry_after"), response.headers.get("retry-after")):
        if value is None:
            continue
        with suppress(TypeError, ValueError):
            seconds = float(value)
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None
