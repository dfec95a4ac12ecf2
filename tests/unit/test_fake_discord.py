"""The Discord fake speaks the wire protocol of the real discord.py client (REST and Gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from io import BytesIO
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.fakes.discord_api import (
    APP_ID,
    BOT_USER_ID,
    CHANNEL_ID,
    EPHEMERAL,
    GUILD_ID,
    LOADING,
    MAX_ATTACHMENT,
    USER_ID,
    FakeDiscord,
    RateLimit,
    pointed_at,
)

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
CHANNEL = int(CHANNEL_ID)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        with pointed_at(server):
            yield server


def make_client(**options: Any) -> discord.Client:
    # guild_ready_timeout=0: READY lists no guilds, so there is nothing to wait for
    return discord.Client(intents=discord.Intents.none(), guild_ready_timeout=0, **options)


@pytest.fixture
async def client(fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    bot = make_client()
    await bot.login(fake.token)
    yield bot
    await bot.close()


class Recorder:
    """A ``/sora`` group whose subcommands exercise every way of answering an interaction."""

    def __init__(self, client: discord.Client) -> None:
        self.tree = app_commands.CommandTree(client)
        self.errors: list[discord.HTTPException] = []
        self.results: list[Any] = []
        self.answered = asyncio.Event()  # set when a handler got its answer (or refusal)
        group = app_commands.Group(name="sora", description="Sora status")

        @group.command(description="Status of a service")
        async def status(interaction: discord.Interaction, service: str, days: int = 1,
                         verbose: bool = False) -> None:
            await self.attempt(interaction.response.send_message(
                f"{service} {days} {verbose}", ephemeral=True))

        @status.autocomplete("service")
        async def services(interaction: discord.Interaction,
                           current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=n, value=n) for n in ("openai", "azure")
                    if n.startswith(current)]

        @group.command(description="A slow answer")
        async def slow(interaction: discord.Interaction) -> None:
            await interaction.response.defer(thinking=True)
            first = await interaction.followup.send("done", embed=discord.Embed(title="Slow"),
                                                  wait=True)
            second = await interaction.followup.send("more", ephemeral=True, wait=True)
            original = await interaction.original_response()
            edited = await interaction.edit_original_response(content="edited")
            self.results.extend([first, second, original, edited])
            await interaction.delete_original_response()

        @group.command(description="Follows up without answering first")
        async def rude(interaction: discord.Interaction) -> None:
            await self.attempt(interaction.followup.send("hello?"))

        self.tree.add_command(group)

    async def attempt(self, call: Awaitable[Any]) -> None:
        try:
            self.results.append(await call)
        except discord.HTTPException as e:
            self.errors.append(e)
        self.answered.set()

    async def run(self, client: discord.Client, payload: dict[str, Any]) -> None:
        """What discord.py does with an INTERACTION_CREATE, minus the gateway."""
        interaction: discord.Interaction = discord.Interaction(
            data=payload, state=client._connection)  # type: ignore[arg-type]
        await self.tree._call(interaction)


# --- login, pointing, gateway -----------------------------------------------------------------


async def test_pointed_at_restores_the_class_attributes() -> None:
    saved = (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as server:
        with pytest.raises(RuntimeError), pointed_at(server):
            assert Route.BASE == server.api_url
            assert str(DiscordWebSocket.DEFAULT_GATEWAY) == server.gateway_url
            raise RuntimeError("boom")
    assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == saved


async def test_login_and_wrong_token(fake: FakeDiscord) -> None:
    bot = make_client()
    try:
        await bot.login(fake.token)
        assert bot.user is not None and bot.user.id == int(BOT_USER_ID)
        assert bot.application_id == int(APP_ID)
        assert bot.application is not None and bot.application.interactions_endpoint_url is None
    finally:
        await bot.close()
    stranger = make_client()
    try:
        with pytest.raises(discord.LoginFailure):
            await stranger.login("not.the.token")
    finally:
        await stranger.close()


async def test_connect_ready_resume_and_close(fake: FakeDiscord, client: discord.Client) -> None:
    task = asyncio.create_task(client.connect())
    await asyncio.wait_for(client.wait_until_ready(), 3)
    assert fake.connected.is_set()
    assert fake.identify is not None and fake.identify["intents"] == 0
    assert fake.identify["token"] == fake.token
    assert [f["op"] for f in fake.frames][:2] == [1, 2]  # first heartbeat, then IDENTIFY

    await fake.disconnect(4000)  # a resumable close: discord.py comes back with RESUME
    await asyncio.wait_for(fake.connected.wait(), 3)
    assert fake.frames[-1]["op"] == 6

    await client.close()
    await asyncio.wait_for(task, 3)
    assert task.exception() is None
    await fake.wait_for(lambda: not fake.connected.is_set())


# --- channel messages -------------------------------------------------------------------------


async def test_send_with_embed_file_nonce_and_mentions(fake: FakeDiscord,
                                                       client: discord.Client) -> None:
    channel = client.get_partial_messageable(CHANNEL)
    sent = await channel.send(
        content="hello", embeds=[discord.Embed(title="Status", description="all good")],
        file=discord.File(BytesIO(PNG), "chart.png"), nonce="n-1",
        allowed_mentions=discord.AllowedMentions.none())

    [posted] = fake.messages
    assert (posted.channel_id, posted.id, posted.content) == (CHANNEL_ID, str(sent.id), "hello")
    assert posted.embeds[0]["title"] == "Status"
    assert posted.files == [("chart.png", "application/octet-stream", PNG)]
    assert (posted.nonce, posted.allowed_mentions) == ("n-1", {"parse": []})
    assert sent.author.id == int(BOT_USER_ID) and sent.embeds[0].description == "all good"
    assert sent.attachments[0].content_type == "image/png"
    assert await sent.attachments[0].read() == PNG

    again = await channel.send(content="hello", nonce="n-1")
    assert again.id == sent.id and len(fake.messages) == 1


async def test_reply_and_edit(fake: FakeDiscord, client: discord.Client) -> None:
    channel = client.get_partial_messageable(CHANNEL)
    first = await channel.send("first", file=discord.File(BytesIO(PNG), "chart.png"))
    reply = await channel.send("reply", reference=discord.MessageReference(
        message_id=first.id, channel_id=CHANNEL, fail_if_not_exists=False))
    assert reply.type is discord.MessageType.reply
    assert reply.reference is not None and reply.reference.message_id == first.id
    assert fake.messages[1].message_reference == {
        "type": 0, "message_id": first.id, "channel_id": CHANNEL, "fail_if_not_exists": False}
    orphan = await channel.send("orphan", reference=discord.MessageReference(
        message_id=1, channel_id=CHANNEL, fail_if_not_exists=False))
    assert orphan.type is discord.MessageType.default and orphan.reference is None
    with pytest.raises(discord.HTTPException) as strict:
        await channel.send("strict", reference=discord.MessageReference(
            message_id=1, channel_id=CHANNEL))
    assert (strict.value.status, strict.value.code) == (400, 50035)

    edited = await channel.get_partial_message(first.id).edit(
        embeds=[discord.Embed(title="Edited")])
    [edit] = fake.edits
    assert (edit.id, edit.content, edit.attachments) == (str(first.id), None, None)
    assert edit.embeds is not None and edit.embeds[0]["title"] == "Edited"
    assert edited.embeds[0].title == "Edited" and edited.content == "first"
    assert len(edited.attachments) == 1  # attachments not mentioned: kept
    await channel.get_partial_message(first.id).edit(attachments=[])
    stored = fake.message(CHANNEL, first.id)
    assert stored is not None and stored.attachments == [] and stored.edited_timestamp
    with pytest.raises(discord.NotFound) as unknown:
        await channel.get_partial_message(42).edit(content="x")
    assert unknown.value.code == 10008


async def test_refusals_of_channel_and_body(fake: FakeDiscord, client: discord.Client) -> None:
    fake.missing_channels.add("404")
    fake.forbidden_channels.add("403")
    with pytest.raises(discord.NotFound) as missing:
        await client.get_partial_messageable(404).send("x")
    assert missing.value.code == 10003
    with pytest.raises(discord.Forbidden) as forbidden:
        await client.get_partial_messageable(403).send("x")
    assert forbidden.value.code == 50001

    channel = client.get_partial_messageable(CHANNEL)
    too_long: list[dict[str, Any]] = [
        {"embed": discord.Embed(description="d" * 4097)},
        {"embeds": [discord.Embed(description="d" * 4000)] * 2},  # 8000 > 6000 in all
        {"embed": discord.Embed(title="t").add_field(name="", value="v")},
        {"content": "c" * 2001},
    ]
    for kwargs in too_long:
        with pytest.raises(discord.HTTPException) as invalid:
            await channel.send(**kwargs)
        assert (invalid.value.status, invalid.value.code) == (400, 50035)
    with pytest.raises(discord.HTTPException) as field_error:
        await channel.send(embed=discord.Embed(description="d" * 4097))
    assert "embeds.0.description" in field_error.value.text
    with pytest.raises(discord.HTTPException) as empty:
        await channel.send()
    assert empty.value.code == 50006
    with pytest.raises(discord.HTTPException) as too_big:  # Discord takes 10 MiB a file
        await channel.send(file=discord.File(BytesIO(bytes(MAX_ATTACHMENT + 1)), "big.bin"))
    assert (too_big.value.status, too_big.value.code) == (413, 40005)
    assert fake.messages == []


# --- rate limits and failures -----------------------------------------------------------------


async def test_short_rate_limit_is_retried_by_discord_py(fake: FakeDiscord,
                                                         client: discord.Client) -> None:
    fake.fail("messages", RateLimit(0.05), RateLimit(0.01, global_=True))
    sent = await client.get_partial_messageable(CHANNEL).send("after two 429s")
    assert [m.id for m in fake.messages] == [str(sent.id)]
    assert fake.rate_limited == 2


async def test_long_rate_limit_and_server_errors_raise(fake: FakeDiscord) -> None:
    bot = make_client(max_ratelimit_timeout=30)
    try:
        await bot.login(fake.token)
        channel = bot.get_partial_messageable(CHANNEL)
        fake.fail("messages", RateLimit(60), 503, 403)
        with pytest.raises(discord.RateLimited) as limited:
            await channel.send("x")
        assert limited.value.retry_after == 60
        with pytest.raises(discord.DiscordServerError):
            await channel.send("x")
        with pytest.raises(discord.Forbidden):
            await channel.send("x")
        assert fake.messages == [] and fake.rate_limited == 1
    finally:
        await bot.close()


# --- application commands and interactions ----------------------------------------------------


async def test_command_tree_sync(fake: FakeDiscord, client: discord.Client) -> None:
    recorder = Recorder(client)
    synced = await recorder.tree.sync()
    assert [c.name for c in synced] == ["sora"]
    [stored] = fake.commands[None]
    assert synced[0].id == int(stored["id"])
    assert [o["name"] for o in stored["options"]] == ["status", "slow", "rude"]

    guild = discord.Object(int(GUILD_ID))
    recorder.tree.copy_global_to(guild=guild)
    in_guild = await recorder.tree.sync(guild=guild)
    assert fake.commands[GUILD_ID][0]["guild_id"] == GUILD_ID
    assert in_guild[0].guild_id == int(GUILD_ID)
    assert [c.id for c in await recorder.tree.fetch_commands()] == [synced[0].id]
    # the builder uses the id Discord gave the command
    assert fake.command_payload("status")["data"]["id"] == stored["id"]


async def test_command_payload_parses_as_an_interaction(fake: FakeDiscord,
                                                        client: discord.Client) -> None:
    payload = fake.command_payload(
        "status", {"service": "openai", "days": 7, "verbose": True, "ratio": 0.5},
        permissions=8, roles=["55"])
    interaction: discord.Interaction = discord.Interaction(
        data=payload, state=client._connection)  # type: ignore[arg-type]
    assert interaction.type is discord.InteractionType.application_command
    assert (interaction.guild_id, interaction.channel_id) == (int(GUILD_ID), CHANNEL)
    assert isinstance(interaction.channel, discord.TextChannel)
    assert isinstance(interaction.user, discord.Member)
    assert interaction.user.id == int(USER_ID) and payload["member"]["roles"] == ["55"]
    assert interaction.permissions.administrator
    assert interaction.app_permissions.send_messages and interaction.app_permissions.attach_files
    assert [o["type"] for o in payload["data"]["options"][0]["options"]] == [3, 4, 5, 10]
    other = fake.command_payload(None, group="help")
    assert "options" not in other["data"] or other["data"]["options"] == []
    assert int(other["id"]) > int(payload["id"]) and other["token"] != payload["token"]
    assert await client.http.get_bot_gateway() == (1, fake.gateway_url, {
        "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1})


async def test_send_message_callback(fake: FakeDiscord, client: discord.Client) -> None:
    recorder = Recorder(client)
    payload = fake.command_payload("status", {"service": "openai", "days": 7, "verbose": True},
                                   permissions=8)
    await recorder.run(client, payload)

    [callback] = fake.callbacks
    assert (callback.interaction_id, callback.type, callback.error) == (payload["id"], 4, None)
    assert callback.data is not None and callback.data["content"] == "openai 7 True"
    assert callback.data["flags"] == EPHEMERAL and 0 <= callback.after < 1
    [answer] = recorder.results
    assert answer.message_id is not None and answer.resource.content == "openai 7 True"
    assert answer.is_ephemeral()
    stored = fake.message(CHANNEL, answer.message_id)
    assert stored is not None and stored.type == 20 and stored.flags == EPHEMERAL


async def test_defer_then_followups(fake: FakeDiscord, client: discord.Client) -> None:
    recorder = Recorder(client)
    payload = fake.command_payload("slow")
    await recorder.run(client, payload)

    assert [(c.type, c.error) for c in fake.callbacks] == [(5, None)]
    first, second, original, edited = recorder.results
    assert [(f.content, f.filled_original, f.ephemeral) for f in fake.followups] == [
        ("done", True, False), ("more", False, True)]
    assert first.id == original.id == edited.id != second.id
    assert original.content == "done" and original.embeds[0].title == "Slow"
    assert not original.flags.loading
    assert edited.content == "edited"
    [edit] = fake.edits
    assert (edit.id, edit.content, edit.interaction_token) == (
        str(first.id), "edited", payload["token"])
    assert fake.deleted == [(CHANNEL_ID, str(first.id))]
    assert fake.message(CHANNEL, first.id) is None
    kept = fake.message(CHANNEL, second.id)
    assert kept is not None and kept.flags == EPHEMERAL and not kept.flags & LOADING


async def test_second_response_late_response_and_unknown_webhook(
        fake: FakeDiscord, client: discord.Client) -> None:
    recorder = Recorder(client)
    payload = fake.command_payload("status", {"service": "openai"})
    await recorder.run(client, payload)
    await recorder.run(client, payload)  # delivered twice: discord.py cannot know
    assert [(c.type, c.error) for c in fake.callbacks] == [(4, None), (4, 40060)]
    assert [e.code for e in recorder.errors] == [40060]

    fake.callback_deadline = 0.0  # every answer is now too late
    await recorder.run(client, fake.command_payload("status", {"service": "openai"}))
    assert fake.callbacks[-1].error == 10062
    assert isinstance(recorder.errors[-1], discord.NotFound) and recorder.errors[-1].code == 10062

    await recorder.run(client, fake.command_payload("rude"))
    assert recorder.errors[-1].code == 10015 and fake.followups == []


async def test_autocomplete_callback(fake: FakeDiscord, client: discord.Client) -> None:
    recorder = Recorder(client)
    payload = fake.autocomplete_payload("status", {"service": "op", "days": 1}, focused="service")
    assert payload["type"] == 4
    assert payload["data"]["options"][0]["options"][0] == {
        "name": "service", "type": 3, "value": "op", "focused": True}
    await recorder.run(client, payload)
    [callback] = fake.callbacks
    assert (callback.type, callback.error) == (8, None)
    assert callback.data == {"choices": [{"name": "openai", "value": "openai"}]}


async def test_interaction_pushed_over_the_gateway(fake: FakeDiscord,
                                                   client: discord.Client) -> None:
    recorder = Recorder(client)
    task = asyncio.create_task(client.connect())
    try:
        await asyncio.wait_for(fake.connected.wait(), 3)
        payload = fake.command_payload("status", {"service": "azure"})
        await fake.push("INTERACTION_CREATE", payload)
        await asyncio.wait_for(recorder.answered.wait(), 3)
        assert [(c.interaction_id, c.type) for c in fake.callbacks] == [(payload["id"], 4)]
        assert recorder.results[0].resource.content == "azure 1 False"
    finally:
        await client.close()
        await asyncio.wait_for(task, 3)
