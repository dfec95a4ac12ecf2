"""The one port the core talks to chat platforms through."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.messages import Message


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Where a posted message lives, so it can be edited or replied to (Slack ts, Discord id)."""

    platform: str
    channel: str
    id: str


class DeliveryError(Exception):
    """A post the platform did not accept. Adapters raise it with what the platform said.

    ``retry_after``: seconds the platform asked us to wait (429 / 503 ``Retry-After``).
    ``global_limit``: the limit is for the whole bot, not this channel (pause every channel).
    ``permanent``: retrying cannot help (channel gone, bot removed, payload invalid).
    """

    def __init__(self, message: str, *, retry_after: float | None = None,
                 global_limit: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.global_limit = global_limit
        self.permanent = permanent


class ChatPort(Protocol):
    """Implemented by every adapter (console, Slack, Discord)."""

    platform: str

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        """Post ``message`` (in the thread of ``reply_to`` when given) and return its reference.

        Raise on failure (``DeliveryError`` when the platform said why); the outbox retries.
        ``key`` is the post's idempotency key: an adapter whose platform can deduplicate by it
        (Discord's ``nonce``) passes it on, so a post retried after a crash appears once.
        """
        ...

    async def edit(self, ref: MessageRef, message: Message) -> None:
        """Replace a posted message in place (progress updates)."""
        ...


class ChatStartError(Exception):
    """A chat platform refused to start (a wrong token): the message says which and what to do."""
