"""A recording ChatPort (``FakeChat.sent``) and a hand-driven clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from bot.chat import MessageRef
from bot.messages import Message


class FakeChat:
    """Records what was posted; ``refuse = True`` makes every post fail like a platform outage."""

    platform = "fake"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []
        self.edits: list[tuple[MessageRef, Message]] = []
        self.refuse = False
        self._ids = itertools.count(1)

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None
                   ) -> MessageRef:
        if self.refuse:
            raise ConnectionError("platform refused the post")
        self.sent.append((channel, message))
        return MessageRef(self.platform, channel, str(next(self._ids)))

    async def edit(self, ref: MessageRef, message: Message) -> None:
        self.edits.append((ref, message))

    @property
    def titles(self) -> list[str]:
        return [m.title for _, m in self.sent]


class FakeClock:
    def __init__(self, start: datetime = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
