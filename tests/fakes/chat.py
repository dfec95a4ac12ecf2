"""A recording ChatPort (``FakeChat.sent``), a hand-driven clock, and outbox wiring for tests."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.chat import DeliveryError, MessageRef
from bot.messages import Message
from bot.models import State
from bot.outbox import Outbox
from bot.store import Store
from bot.subscriptions import ALL


@dataclass(frozen=True, slots=True)
class Post:
    channel: str
    message: Message
    ref: MessageRef
    reply_to: MessageRef | None
    key: str | None


class FakeChat:
    """Records what was posted; ``refuse = True`` makes every post fail like a platform outage
    (``refuse_with`` chooses the error, e.g. a ``DeliveryError`` with ``retry_after``)."""

    platform = "fake"

    def __init__(self, platform: str = "fake") -> None:
        self.platform = platform
        self.posts: list[Post] = []
        self.edits: list[tuple[MessageRef, Message]] = []
        self.refuse = False
        self.refuse_with: Exception = DeliveryError("platform refused the post")
        self.attempts = 0
        self._ids = itertools.count(1)

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        self.attempts += 1
        if self.refuse:
            raise self.refuse_with
        ref = MessageRef(self.platform, channel, str(next(self._ids)))
        self.posts.append(Post(channel, message, ref, reply_to, key))
        return ref

    async def edit(self, ref: MessageRef, message: Message) -> None:
        self.edits.append((ref, message))

    @property
    def sent(self) -> list[tuple[str, Message]]:
        return [(p.channel, p.message) for p in self.posts]

    @property
    def titles(self) -> list[str]:
        return [p.message.title for p in self.posts]


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def wire(store: Store, chat: FakeChat, channel: str, clock: FakeClock, *,
         services: tuple[str, ...] = (ALL,), min_state: State = State.DEGRADED) -> Outbox:
    """Subscribe ``channel`` of ``chat`` and return an outbox that posts to it."""
    store.subscribe(chat.platform, "T1", channel, services=services, min_state=min_state,
                    by="U-admin", now=clock())
    return Outbox(store=store, chats={chat.platform: chat}, clock=clock)
