"""Delivery of the durable outbox to the chat platforms.

A post leaves the outbox only when its platform accepted it. Per channel, posts go strictly in
order: a post that fails blocks the ones behind it until its retry is due, so nobody reads a
recovery before its outage. Failures back off exponentially, or exactly as long as the platform's
``Retry-After`` says; a global rate limit pauses every channel of that platform, and sends are paced
to a platform's known global rate; a permanent refusal (channel gone) or a post older than
``max_age`` is given up with a log line. Channels are served concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.chat import ChatPort, DeliveryError, MessageRef
from bot.metrics import Metrics
from bot.store import PendingPost, Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # will be retried
    dropped: int = 0  # given up: refused for good, or expired


def backoff(attempts: int, *, base: float = 2.0, cap: float = 300.0) -> float:
    """Seconds before retry number ``attempts + 1``: 2, 4, 8, … capped at five minutes."""
    return min(cap, base * 2.0 ** min(attempts, 16))


class Outbox:
    """Posts pending outbox rows through the ``ChatPort`` of their platform."""

    def __init__(self, *, store: Store, chats: Mapping[str, ChatPort],
                 clock: Callable[[], datetime], concurrency: int = 50,
                 max_age: timedelta = timedelta(hours=24), metrics: Metrics | None = None,
                 rates: Mapping[str, float] | None = None) -> None:
        """``rates``: posts per second each platform allows the whole bot (Discord: 50); sends
        are paced to it up front, so a fan-out to many channels is not a storm of 429s."""
        self._store = store
        self._chats = chats
        self._clock = clock
        self._limit = asyncio.Semaphore(concurrency)
        self._max_age = max_age
        self._paused_until: dict[str, datetime] = {}  # per platform, after a global limit
        self._pacers = {p: _Pacer(rate) for p, rate in (rates or {}).items()}
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._missing: set[str] = set()
        self._metrics = metrics
        self._running = False

    def wake(self) -> None:
        """Something was enqueued: deliver now rather than at the next poll."""
        self._wake.set()

    async def flush(self) -> int:
        """Deliver what is due: by waking the worker when ``run`` is going (a probe cycle never
        waits for a slow platform), else right here. Returns posts sent here."""
        if self._running:
            self.wake()
            return 0
        return (await self.deliver()).sent

    async def deliver(self) -> DeliveryReport:
        """One pass over every channel with a due post."""
        async with self._lock:
            report = DeliveryReport()
            by_channel: dict[tuple[str, str], list[PendingPost]] = defaultdict(list)
            for post in self._store.pending_posts():
                by_channel[(post.platform, post.channel)].append(post)
            sent_refs: dict[str, str] = {}
            await asyncio.gather(*(self._channel(posts, report, sent_refs)
                                   for posts in by_channel.values()))
            if self._metrics:
                pending = sum(len(p) for p in by_channel.values()) - report.sent - report.dropped
                self._metrics.outbox_pending.set(pending)
            return report

    async def _channel(self, posts: list[PendingPost], report: DeliveryReport,
                       sent_refs: dict[str, str]) -> None:
        chat = self._chats.get(posts[0].platform)
        if chat is None:
            if posts[0].platform not in self._missing:
                self._missing.add(posts[0].platform)
                log.warning("posts for %s are waiting: that adapter is not running",
                            posts[0].platform)
            return
        async with self._limit:
            for post in posts:
                now = self._clock()
                paused = self._paused_until.get(post.platform)
                if paused is not None and now < paused:
                    return
                if post.next_attempt_at > now:
                    return  # order: nothing behind a post that is waiting for its retry
                if now - post.created_at > self._max_age:
                    self._store.post_dead(post.id, "expired undelivered", now)
                    log.warning("gave up on post %s to %s: undelivered for %s", post.key,
                                post.channel, self._max_age)
                    self._tally(post, "dropped", report)
                    continue
                if not await self._send(chat, post, report, sent_refs):
                    return

    async def _send(self, chat: ChatPort, post: PendingPost, report: DeliveryReport,
                    sent_refs: dict[str, str]) -> bool:
        """Post one; False when the channel must wait (order)."""
        result = await self._attempt(chat, post, sent_refs)
        self._tally(post, result, report)
        return result != "failed"

    def _tally(self, post: PendingPost, result: str, report: DeliveryReport) -> None:
        setattr(report, result, getattr(report, result) + 1)
        if self._metrics:
            self._metrics.posts.labels(post.platform, result).inc()

    async def _attempt(self, chat: ChatPort, post: PendingPost, sent_refs: dict[str, str]
                       ) -> str:
        """One try: "sent", "failed" (retry later) or "dropped" (never)."""
        parent = sent_refs.get(post.reply_to_key or "") or post.reply_to_ref
        reply_to = MessageRef(post.platform, post.channel, parent) if parent else None
        pacer = self._pacers.get(post.platform)
        if pacer is not None:
            await pacer.slot()
        try:
            ref = await chat.send(post.channel, post.message, reply_to=reply_to, key=post.key)
        except DeliveryError as e:
            now = self._clock()
            if e.permanent:
                self._store.post_dead(post.id, str(e), now)
                log.warning("post %s to %s refused for good: %s", post.key, post.channel, e)
                return "dropped"
            delay = e.retry_after if e.retry_after is not None else backoff(post.attempts)
            retry_at = now + timedelta(seconds=delay)
            if e.global_limit:
                paused = self._paused_until.get(post.platform, retry_at)
                self._paused_until[post.platform] = max(paused, retry_at)
                if post.platform in self._pacers:
                    self._pacers[post.platform].hold(delay)
            self._store.post_failed(post.id, str(e), retry_at)
            return "failed"
        except Exception as e:  # anything else is a transient failure of the platform
            self._store.post_failed(post.id, f"{type(e).__name__}: {e}",
                                    self._clock() + timedelta(seconds=backoff(post.attempts)))
            log.info("post %s to %s failed, will retry: %s", post.key, post.channel, e)
            return "failed"
        self._store.post_sent(post.id, ref.id, self._clock())
        sent_refs[post.key] = ref.id
        return "sent"

    def seconds_until_due(self, *, idle: float) -> float:
        """How long the worker may sleep: until the next retry or pause ends, at most ``idle``."""
        due = self._store.next_post_due(list(self._chats))
        if due is not None and self._paused_until:
            due = max(due, min(self._paused_until.values()))
        if due is None:
            return idle
        return min(idle, max(0.01, (due - self._clock()).total_seconds()))

    async def run(self, stop: asyncio.Event, *, idle: float = 5.0) -> None:
        """Deliver until ``stop``: right away when woken, else when the next retry is due."""
        self._running = True
        try:
            await self._loop(stop, idle)
        finally:
            self._running = False

    async def _loop(self, stop: asyncio.Event, idle: float) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.deliver()
            except Exception:  # the worker must outlive a bad pass (e.g. a locked database)
                log.exception("outbox delivery pass failed")
            wait = self.seconds_until_due(idle=idle)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self._wake), timeout=wait)


class _Pacer:
    """Hands out send slots ``1 / rate`` seconds apart (on the event loop's clock)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def slot(self) -> None:
        now = asyncio.get_running_loop().time()
        at = max(now, self._next)
        self._next = at + self._interval
        if at > now:
            await asyncio.sleep(at - now)

    def hold(self, seconds: float) -> None:
        """The platform said stop: no slot before ``seconds`` from now."""
        self._next = max(self._next, asyncio.get_running_loop().time() + seconds)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
