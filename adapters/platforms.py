"""The chat platforms ``sora-bot run`` starts besides the console, chosen from ``Settings``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Protocol

from bot.chat import ChatPort
from bot.commands import Commands
from bot.config import Settings
from bot.server import Route


class Platform(Protocol):
    """A chat adapter with a lifetime: its ``ChatPort`` plus whatever receives commands."""

    chat: ChatPort

    def running(self, commands: Commands) -> AbstractAsyncContextManager[list[Route]]:
        """Connect (or hand out HTTP routes) until the context exits; raise ``ChatStartError``
        when the platform refuses the configured tokens."""
        ...


def configured_platforms(settings: Settings) -> list[Platform]:
    """One adapter per platform with a token set (their SDKs load only then)."""
    platforms: list[Platform] = []
    if settings.slack_mode is not None:
        from adapters.slack import SlackAdapter

        platforms.append(SlackAdapter(settings))
    if settings.discord_token is not None:
        from adapters.discord import DiscordAdapter

        platforms.append(DiscordAdapter(settings))
    return platforms


@asynccontextmanager
async def running(platforms: Sequence[Platform], commands: Commands
                  ) -> AsyncIterator[list[Route]]:
    """Start every platform; yields the HTTP routes they serve; stops them in reverse order."""
    async with AsyncExitStack() as stack:
        routes: list[Route] = []
        for platform in platforms:
            routes += await stack.enter_async_context(platform.running(commands))
        yield routes
