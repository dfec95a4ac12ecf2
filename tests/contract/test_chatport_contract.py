"""One contract for every ``ChatPort``: what the outbox and the commands rely on.

Each port comes with a way to read back what reached its platform: the Slack adapter runs the
real ``AsyncWebClient`` against the loopback fake Slack, the Discord adapter the real discord.py
client against the loopback fake Discord. Channel ids are digits, as Discord's snowflakes are.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx2
import pytest

from adapters.console import ConsoleChat
from adapters.slack import SlackChat, make_web_client
from bot.chat import ChatPort, MessageRef
from bot.messages import Attachment, Field, Message, Severity, Table
from tests.e2e.test_discord import logged_in
from tests.fakes.chat import FakeChat
from tests.fakes.chat_platform import ChatPlatform, HttpChat
from tests.fakes.slack_api import FakeSlack

RICH = Message(title="🔴 Sora 2 · reverse relay is suspended", text="HTTP 503 (3× in a row)",
               severity=Severity.DANGER, fields=(Field("HTTP", "503"),),
               table=Table(("", "Service"), (("🔴", "Sora 2"),)), context="transition #7",
               attachments=(Attachment("digest.png", b"\x89PNG\r\n\x1a\nfake"),))


@dataclass
class Port:
    chat: ChatPort
    seen: Callable[[], str]  # everything that reached the platform, as text


@asynccontextmanager
async def console() -> AsyncIterator[Port]:
    out = io.StringIO()
    yield Port(ConsoleChat(out, color=False), out.getvalue)


@asynccontextmanager
async def fake() -> AsyncIterator[Port]:
    chat = FakeChat()
    yield Port(chat, lambda: "\n".join(p.message.plain() for p in chat.posts) + "\n".join(
        m.plain() for _, m in chat.edits))


@asynccontextmanager
async def http() -> AsyncIterator[Port]:
    async with ChatPlatform() as platform, httpx2.AsyncClient() as client:
        yield Port(HttpChat(client, platform.url),
                   lambda: "\n".join(a.title for a in platform.accepted) + "\n".join(
                       platform.edits))


@asynccontextmanager
async def slack() -> AsyncIterator[Port]:
    async with FakeSlack() as platform:
        chat = SlackChat(make_web_client(platform.bot_token, base_url=platform.api_url))
        yield Port(chat, lambda: "\n".join(
            [m.text for m in platform.messages] + [u.text for u in platform.updates]
            + [u.filename for u in platform.uploads]))


@asynccontextmanager
async def discord() -> AsyncIterator[Port]:
    async with logged_in() as (platform, chat):
        yield Port(chat, lambda: "\n".join(
            [m.content for m in platform.messages] + [e.content or "" for e in platform.edits]
            + [f[0] for m in platform.messages for f in m.files]))


PORTS = {"console": console, "fake": fake, "http": http, "slack": slack, "discord": discord}


@pytest.fixture(params=sorted(PORTS))
async def port(request: pytest.FixtureRequest) -> AsyncIterator[Port]:
    async with PORTS[request.param]() as p:
        yield p


async def test_send_returns_a_reference_in_that_channel(port: Port) -> None:
    first = await port.chat.send("101", RICH, key="k1")
    second = await port.chat.send("101", Message(title="second"), key="k2")
    assert isinstance(first, MessageRef)
    assert (first.platform, first.channel) == (port.chat.platform, "101")
    assert first.id and second.id and first.id != second.id
    assert "reverse relay is suspended" in port.seen()


async def test_a_reply_goes_under_the_referenced_post(port: Port) -> None:
    parent = await port.chat.send("102", RICH)
    reply = await port.chat.send("102", Message(title="🟢 recovered after 4m"), reply_to=parent)
    assert reply.channel == "102" and reply.id != parent.id
    assert "recovered after 4m" in port.seen()


async def test_edit_replaces_a_post_in_place(port: Port) -> None:
    ref = await port.chat.send("103", Message(title="queued"))
    await port.chat.edit(ref, Message(title="in progress 40 %"))
    assert "in progress 40 %" in port.seen()
