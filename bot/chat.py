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


class ChatPort(Protocol):
    """Implemented by every adapter (console, Slack, Discord)."""

    platform: str

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None
                   ) -> MessageRef:
        """Post ``message``; raise on failure (the caller retries). Returns its reference."""
        ...

    async def edit(self, ref: MessageRef, message: Message) -> None:
        """Replace a posted message in place (progress updates)."""
        ...
