"""``Outbox`` on a fake clock with recording chats: order, retries, drops, expiry, pauses."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.chat import DeliveryError, MessageRef
from bot.messages import Message
from bot.outbox import Outbox, backoff
from bot.store import OutboxItem, Store
from tests.fakes.chat import FakeChat, FakeClock


class PickyChat(FakeChat):
    """A ``FakeChat`` that refuses chosen keys (``fail[key]``) and records every key it is
    asked to post, accepted or not (``tried``)."""

    def __init__(self, platform: str = "fake") -> None:
        super().__init__(platform)
        self.fail: dict[str, Exception] = {}
        self.tried: list[str | None] = []

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        self.tried.append(key)
        if key in self.fail:
            self.attempts += 1
            raise self.fail[key]
        return await super().send(channel, message, reply_to=reply_to, key=key)

    @property
    def keys(self) -> list[str | None]:
        return [p.key for p in self.posts]


def item(key: str, channel: str = "C1", reply_to: str | None = None,
         platform: str = "fake") -> OutboxItem:
    return OutboxItem(key, platform, channel, Message(title=key), reply_to_key=reply_to)


def row(store: Store, key: str) -> dict[str, object]:
    return next(r for r in store.posts() if r["key"] == key)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def chat() -> PickyChat:
    return PickyChat()


@pytest.fixture
def outbox(store: Store, chat: PickyChat, clock: FakeClock) -> Outbox:
    return Outbox(store=store, chats={"fake": chat}, clock=clock)


async def test_posts_go_out_per_channel_in_order_and_replies_name_their_parent(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    store.enqueue([item("a1"), item("b1", "C2"), item("a2", reply_to="a1")], clock())
    report = await outbox.deliver()
    assert (report.sent, report.failed, report.dropped) == (3, 0, 0)
    assert [k for k in chat.keys if k and k[0] == "a"] == ["a1", "a2"]
    a1 = next(p for p in chat.posts if p.key == "a1")
    a2 = next(p for p in chat.posts if p.key == "a2")
    assert a2.reply_to == a1.ref  # parent sent in the same pass
    store.enqueue([item("a3", reply_to="a1")], clock())  # parent sent in an earlier pass
    await outbox.deliver()
    assert chat.posts[-1].key == "a3" and chat.posts[-1].reply_to == a1.ref
    assert store.pending_posts() == []
    assert row(store, "a1")["ref"] == a1.ref.id


async def test_a_failing_head_blocks_its_channel_only_until_its_retry(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    chat.fail["a1"] = DeliveryError("503", retry_after=30)
    store.enqueue([item("a1"), item("a2"), item("b1", "C2")], clock())
    report = await outbox.deliver()
    assert (report.sent, report.failed) == (1, 1)
    assert chat.keys == ["b1"]
    assert "a2" not in chat.tried  # nothing behind the failed head was tried
    clock.advance(29)
    await outbox.deliver()
    assert chat.tried == ["a1", "b1"]  # Retry-After is honoured: no attempt before it is due
    del chat.fail["a1"]
    clock.advance(1)
    report = await outbox.deliver()
    assert report.sent == 2 and chat.keys == ["b1", "a1", "a2"]
    assert row(store, "a1")["attempts"] == 2


async def test_without_retry_after_retries_back_off_exponentially(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    chat.fail["a1"] = DeliveryError("platform down")
    store.enqueue([item("a1")], clock())
    tried_at = []
    for second in range(31):
        before = len(chat.tried)
        await outbox.deliver()
        if len(chat.tried) > before:
            tried_at.append(second)
        clock.advance(1)
    assert tried_at == [0, 2, 6, 14, 30]  # waits of 2, 4, 8, 16 s
    assert [backoff(n) for n in range(4)] == [2, 4, 8, 16] and backoff(40) == 300


async def test_an_unexpected_exception_is_retried_with_backoff(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    chat.fail["a1"] = ConnectionResetError("peer reset")
    store.enqueue([item("a1")], clock())
    report = await outbox.deliver()
    assert report.failed == 1
    assert row(store, "a1")["last_error"] == "ConnectionResetError: peer reset"
    del chat.fail["a1"]
    clock.advance(2)
    assert (await outbox.deliver()).sent == 1


async def test_a_permanent_refusal_drops_only_that_post(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    chat.fail["a1"] = DeliveryError("channel_not_found", permanent=True)
    store.enqueue([item("a1"), item("a2"), item("a3", reply_to="a1")], clock())
    report = await outbox.deliver()
    assert (report.sent, report.failed, report.dropped) == (2, 0, 1)
    assert chat.keys == ["a2", "a3"]  # the channel goes on in the same pass
    assert chat.posts[1].reply_to is None  # its parent never posted: a top-level post instead
    dead = row(store, "a1")
    assert dead["dead_at"] is not None and dead["last_error"] == "channel_not_found"
    assert store.pending_posts() == []
    await outbox.deliver()
    assert chat.tried.count("a1") == 1  # never retried


async def test_posts_older_than_max_age_are_given_up(
        store: Store, chat: PickyChat, clock: FakeClock) -> None:
    outbox = Outbox(store=store, chats={"fake": chat}, clock=clock, max_age=timedelta(hours=1))
    for key in ("a1", "a2"):
        chat.fail[key] = DeliveryError("503", retry_after=600)
    store.enqueue([item("a1"), item("a2")], clock())
    clock.advance(50 * 60)
    store.enqueue([item("a3")], clock())
    dropped = 0
    for _ in range(7):  # every 10 minutes to 1 h 50 min after the first enqueue
        clock.advance(600)
        dropped += (await outbox.deliver()).dropped
    assert dropped == 2
    assert chat.keys == ["a3"]  # the young post behind the expired ones went out
    for key in ("a1", "a2"):
        assert row(store, key)["last_error"] == "expired undelivered"
        assert row(store, key)["dead_at"] is not None
    assert chat.tried.count("a2") == 0  # expired while blocked: never tried at all


async def test_a_global_limit_pauses_every_channel(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    chat.fail["a1"] = DeliveryError("429 global", retry_after=30, global_limit=True)
    store.enqueue([item("a1"), item("b1", "C2"), item("c1", "C3")], clock())
    report = await outbox.deliver()
    assert (report.sent, report.failed) == (0, 1)
    assert chat.tried == ["a1"]
    assert outbox.seconds_until_due(idle=60) == pytest.approx(30)
    clock.advance(29.5)
    await outbox.deliver()
    assert chat.tried == ["a1"]
    del chat.fail["a1"]
    clock.advance(0.5)
    assert (await outbox.deliver()).sent == 3
    assert set(chat.keys) == {"a1", "b1", "c1"}


async def test_a_global_limit_of_one_platform_does_not_pause_another(
        store: Store, clock: FakeClock) -> None:
    discord, slack = PickyChat("discord"), PickyChat("slack")
    outbox = Outbox(store=store, chats={"discord": discord, "slack": slack}, clock=clock)
    discord.fail["d1"] = DeliveryError("429 global", retry_after=30, global_limit=True)
    store.enqueue([item("d1", platform="discord"), item("s1", platform="slack")], clock())
    await outbox.deliver()
    assert slack.keys == ["s1"]


async def test_posts_for_a_platform_that_is_not_running_wait(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    store.enqueue([item("x1", platform="discord"), item("a1")], clock())
    report = await outbox.deliver()
    assert (report.sent, report.dropped) == (1, 0)
    assert [p.key for p in store.pending_posts()] == ["x1"]


async def test_seconds_until_due(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    assert outbox.seconds_until_due(idle=5) == 5  # nothing pending
    store.enqueue([item("a1")], clock())
    assert outbox.seconds_until_due(idle=5) == pytest.approx(0.01)  # due now: at once
    chat.fail["a1"] = DeliveryError("503", retry_after=30)
    await outbox.deliver()
    assert outbox.seconds_until_due(idle=60) == pytest.approx(30)
    assert outbox.seconds_until_due(idle=5) == 5  # never longer than idle
    clock.advance(20)
    assert outbox.seconds_until_due(idle=60) == pytest.approx(10)
    store.enqueue([item("b1", "C2")], clock())  # another channel has a post due now
    assert outbox.seconds_until_due(idle=60) == pytest.approx(0.01)


async def test_a_post_queued_behind_a_waiting_head_does_not_wake_the_worker(
        store: Store, chat: PickyChat, clock: FakeClock, outbox: Outbox) -> None:
    chat.fail["a1"] = DeliveryError("503", retry_after=30)
    store.enqueue([item("a1")], clock())
    await outbox.deliver()
    store.enqueue([item("a2")], clock())  # same channel: it cannot go before a1
    assert outbox.seconds_until_due(idle=60) == pytest.approx(30)
