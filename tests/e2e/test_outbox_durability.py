"""The outbox against a fake chat platform on loopback HTTP: outages and a killed worker.

An outage (503 / 429 with ``Retry-After``) is driven with a fake clock; the kill tests run the
worker in a child process (``tests/fakes/outbox_worker.py``) and SIGKILL it, either with a post
accepted by the platform but not yet answered (the resend is absorbed by the platform's
deduplication by key) or between two posts.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest

from bot.chat import DeliveryError, MessageRef
from bot.messages import Message
from bot.outbox import Outbox
from bot.store import OutboxItem, Store
from tests.fakes.chat import FakeClock
from tests.fakes.chat_platform import ChatPlatform, HttpChat

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = "http"


def item(key: str, channel: str, reply_to: str | None = None) -> OutboxItem:
    return OutboxItem(key, PLATFORM, channel, Message(title=f"alert {key}", text=key),
                      reply_to_key=reply_to)


# (second of the outage it is enqueued at, the item): 12 alerts over 3 channels, some replies
OUTAGE_SCHEDULE: list[tuple[int, OutboxItem]] = [
    (0, item("a1", "C1")), (0, item("b1", "C2")), (5, item("a2", "C1", "a1")),
    (13, item("c1", "C3")), (20, item("b2", "C2", "b1")), (31, item("a3", "C1")),
    (47, item("c2", "C3", "c1")), (60, item("b3", "C2")), (75, item("a4", "C1", "a3")),
    (90, item("c3", "C3")), (104, item("b4", "C2", "b1")), (118, item("c4", "C3", "c3")),
]

# For the kill tests: 3 channels × 4 posts, replies included.
BATCH: list[OutboxItem] = [
    item(f"{ch}{n}", ch, f"{ch}1" if n in (2, 4) else None)
    for n in range(1, 5) for ch in ("X", "Y", "Z")
]


def assert_delivered_once_in_order(platform: ChatPlatform, items: Sequence[OutboxItem]) -> None:
    keys = [a.key for a in platform.accepted]
    assert sorted(k or "" for k in keys) == sorted(i.key for i in items), keys
    for channel in {i.channel for i in items}:
        assert [a.key for a in platform.in_channel(channel)] == \
            [i.key for i in items if i.channel == channel]
    for i in items:
        got = platform.by_key(i.key)
        assert got is not None
        parent = platform.by_key(i.reply_to_key) if i.reply_to_key else None
        assert got.reply_to == (parent.id if parent else None), i.key


def assert_outbox_done(store: Store, platform: ChatPlatform) -> None:
    assert store.pending_posts() == []
    for row in store.posts():
        got = platform.by_key(row["key"])
        assert got is not None and row["ref"] == got.id and row["sent_at"] is not None
        assert row["dead_at"] is None


# --- the fake platform and HttpChat ----------------------------------------------------------


async def refusal(chat: HttpChat, channel: str, key: str, reply_to: MessageRef | None = None
                  ) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        await chat.send(channel, Message(title="hello"), reply_to=reply_to, key=key)
    return caught.value


async def test_http_chat_turns_platform_answers_into_refs_and_delivery_errors() -> None:
    clock, mono = FakeClock(), [100.0]  # the rate limits run on this "monotonic clock"
    hello = Message(title="hello")
    platform = ChatPlatform(clock=clock, channel_rate=1.0, global_rate=3.0,
                            gone_channels=frozenset({"gone"}), monotonic=lambda: mono[0],
                            refuse_until=clock() + timedelta(seconds=1))
    async with httpx2.AsyncClient() as client:
        async with platform:
            chat = HttpChat(client, platform.url, platform="discord")
            outage = await refusal(chat, "C1", "k1")  # 503, no body: the header's Retry-After
            assert (outage.retry_after, outage.global_limit, outage.permanent) == (7, False, False)
            clock.advance(1)
            ref = await chat.send("C1", hello, key="k1")
            assert ref == MessageRef("discord", "C1", platform.accepted[0].id)
            per_channel = await refusal(chat, "C1", "k2")  # 1 message/s in a channel
            assert per_channel.retry_after == pytest.approx(1.0)
            assert not per_channel.global_limit
            mono[0] += 1
            assert await chat.send("C1", hello, key="k1") == ref  # the key deduplicates
            assert platform.dedup_hits == 1 and len(platform.accepted) == 1
            reply = await chat.send("C1", hello, reply_to=ref, key="k2")
            assert platform.by_key("k2") == platform.accepted[-1]
            assert platform.accepted[-1].reply_to == ref.id and reply.id != ref.id
            assert (await refusal(chat, "C2", "k3", ref)).permanent  # parent is in C1
            await chat.send("C3", hello, key="k4")
            await chat.send("C4", hello, key="k5")  # the third message in this second
            global_limit = await refusal(chat, "C5", "k6")  # 3 messages/s for the whole bot
            assert global_limit.global_limit
            assert global_limit.retry_after == pytest.approx(1 / 3)
            assert (platform.rate_limited, platform.global_limited) == (2, 1)
            mono[0] += 1
            assert (await refusal(chat, "gone", "k7")).permanent  # 404: the channel is gone
            await chat.edit(ref, hello)
            with pytest.raises(DeliveryError) as unknown:
                await chat.edit(MessageRef("discord", "C1", "nope"), hello)
            assert unknown.value.permanent
        down = await refusal(chat, "C1", "k8")  # nobody listens: transient, no Retry-After
        assert (down.retry_after, down.permanent) == (None, False)


# --- an outage, on a fake clock ----------------------------------------------------------------


async def test_an_outage_delays_every_alert_but_loses_none_and_keeps_order() -> None:
    clock = FakeClock()
    start = clock()
    outage_ends = start + timedelta(minutes=2)
    platform = ChatPlatform(clock=clock, refuse_until=outage_ends)
    with Store(":memory:") as store:
        async with platform, httpx2.AsyncClient() as client:
            outbox = Outbox(store=store, chats={PLATFORM: HttpChat(client, platform.url)},
                            clock=clock)
            for second in range(240):  # 4 minutes in steps of 1 s
                due = [i for s, i in OUTAGE_SCHEDULE if s == second]
                if due:
                    store.enqueue(due, clock())
                await outbox.deliver()
                clock.advance(1)
        assert_outbox_done(store, platform)

    items = [i for _, i in OUTAGE_SCHEDULE]
    assert_delivered_once_in_order(platform, items)
    assert platform.dedup_hits == 0
    refusals = [a for a in platform.attempts if a.reason == "outage"]
    assert {a.status for a in refusals} == {503, 429}
    assert all(a.at >= outage_ends for a in platform.accepted)
    for i in items:  # each retry waited for the Retry-After of the refusal before it
        tries = platform.attempts_for(i.key)
        for before, after in itertools.pairwise(tries):
            assert before.retry_not_before is not None and after.at >= before.retry_not_before
    # Only the head of a channel is tried: nothing is attempted before its predecessor is in.
    for channel in ("C1", "C2", "C3"):
        keys = [i.key for i in items if i.channel == channel]
        for earlier, later in itertools.pairwise(keys):
            first_try = min(n for n, a in enumerate(platform.attempts) if a.key == later)
            accepted_at = next(n for n, a in enumerate(platform.attempts)
                               if a.key == earlier and a.status == 200)
            assert accepted_at < first_try, (earlier, later)
    # And the retries were as prompt as the platform allowed: all in within the longest
    # Retry-After (11 s) of the end, plus one step of the loop.
    last = max(a.at for a in platform.accepted)
    assert (last - outage_ends).total_seconds() <= 12, last - start


# --- a worker process that is killed -------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Path, Store]]:
    path = tmp_path / "bot.db"
    with Store(path) as store:
        yield path, store


async def start_worker(db_path: Path, url: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fakes.outbox_worker", str(db_path), url,
        "--platform", PLATFORM, "--timeout", "15", cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)


async def finish(proc: asyncio.subprocess.Process) -> None:
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode(errors="replace")


async def kill(proc: asyncio.subprocess.Process) -> None:
    proc.kill()  # SIGKILL: no cleanup, no finally
    await proc.communicate()
    assert proc.returncode == -9


def sent(store: Store) -> int:
    return sum(1 for row in store.posts() if row["sent_at"] is not None)


async def test_a_worker_killed_mid_request_resends_and_the_key_deduplicates(
        db: tuple[Path, Store]) -> None:
    path, store = db
    store.enqueue(BATCH, datetime.now(UTC))
    async with ChatPlatform(hold_after_accept=60) as platform:
        proc = await start_worker(path, platform.url)
        try:
            # The three channel heads go out together; each is accepted and left unanswered.
            async with asyncio.timeout(10):
                await platform.wait_until(lambda: len(platform.accepted) >= 3)
        finally:
            await kill(proc)
        assert sent(store) == 0  # the worker never learned that they were accepted
        held = [a.key for a in platform.accepted]

        platform.hold_after_accept = 0
        await finish(await start_worker(path, platform.url))

    assert platform.dedup_hits >= 1  # the kill really was mid-request: the resend was absorbed
    assert {a.key for a in platform.attempts if a.reason == "duplicate"} == set(held)
    assert_delivered_once_in_order(platform, BATCH)
    assert_outbox_done(store, platform)


async def test_a_worker_killed_between_posts_loses_and_repeats_nothing(
        db: tuple[Path, Store]) -> None:
    path, store = db
    store.enqueue(BATCH, datetime.now(UTC))
    k = 5
    async with ChatPlatform(pause_after=k, pause_retry_after=0.2) as platform:
        proc = await start_worker(path, platform.url)
        try:
            # After k posts the platform refuses: the worker has recorded k and is waiting.
            async with asyncio.timeout(10):
                # the worker's database has no change notification: poll it
                while not (len(platform.accepted) == k and sent(store) == k):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            await kill(proc)
        assert len(platform.accepted) == k and sent(store) == k

        platform.pause_after = None
        await finish(await start_worker(path, platform.url))

    assert platform.dedup_hits == 0  # nothing already recorded as sent went out again
    assert_delivered_once_in_order(platform, BATCH)
    assert_outbox_done(store, platform)
