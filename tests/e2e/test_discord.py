"""``/sora`` in Discord, end to end: the real discord.py client logged in to the loopback fake
Discord (``tests.fakes.discord_api``), interactions pushed over the real gateway into the real
``CommandTree``, alerts through the adapter's ``ChatPort`` to the fake REST API, probes against
the relay simulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest
from pydantic import SecretStr

from adapters.discord import DiscordAdapter, DiscordChat, DiscordCommands, make_client
from bot.app import Runtime, open_runtime
from bot.chat import ChatStartError, DeliveryError, MessageRef
from bot.commands import Commands, Incoming
from bot.config import Settings, load_settings
from bot.messages import Attachment, Field, Message, Severity
from bot.sim import SimRelay
from bot.sim.relay import Behaviour
from bot.store import Store
from tests.e2e.test_slack import OFFICIAL, REV, generate_section, relay_services
from tests.fakes.chat import FakeClock
from tests.fakes.discord_api import (
    CHANNEL_ID,
    EPHEMERAL,
    GUILD_ID,
    FakeDiscord,
    Posted,
    RateLimit,
    StoredMessage,
    pointed_at,
)

KEY = "sk-discord-e2e-00000000000000000"
LISTED = "1210000000000000077"  # in the config's `admins`
MANAGER = discord.Permissions(view_channel=True, send_messages=True, manage_channels=True).value
MEMBER = discord.Permissions(view_channel=True, send_messages=True).value
NO_MENTIONS = {"parse": []}


def settings_for(tmp_path: Path, relay: SimRelay, fake: FakeDiscord, *,
                 generate: dict[str, Any] | None = None, extra: str = "",
                 **env: str) -> Settings:
    """``generate``: a ``[generate]`` section (and prices on the services); ``extra``: more
    TOML after the services."""
    cfg = tmp_path / "bot.toml"
    cfg.write_text(f'[bot]\nbuiltin_catalog = false\nadmins = ["{LISTED}"]\n\n'
                   + generate_section(generate)
                   + relay_services(relay, priced=generate is not None) + extra,
                   encoding="utf-8")
    return load_settings(cfg, {"SORA_BOT_DB": str(tmp_path / "bot.db"), "REV_KEY": KEY,
                               "DISCORD_TOKEN": fake.token, "DISCORD_API_URL": fake.api_url,
                               **env})


def shown(messages: list[StoredMessage] | list[Posted]) -> str:
    """Everything a member reads in these messages: content and every embed text."""
    parts: list[str] = []
    for m in messages:
        parts.append(m.content)
        for e in m.embeds:
            parts += [e.get("title", ""), e.get("description", ""),
                      (e.get("footer") or {}).get("text", "")]
            parts += [f"{f['name']}: {f['value']}" for f in e.get("fields", [])]
    return "\n".join(p for p in parts if p)


@dataclass
class Answer:
    messages: list[StoredMessage]

    @property
    def ephemeral(self) -> bool:
        return all(m.flags & EPHEMERAL for m in self.messages)

    @property
    def text(self) -> str:
        return shown(self.messages)

    @property
    def colour(self) -> int:
        return int(self.messages[0].embeds[0]["color"])


@dataclass
class Rig:
    fake: FakeDiscord
    relay: SimRelay
    rt: Runtime
    adapter: DiscordAdapter
    clock: FakeClock

    async def ask(self, subcommand: str, options: dict[str, Any] | None = None, *,
                  permissions: int = MANAGER, **where: Any) -> Answer:
        """Push ``/sora subcommand`` over the gateway; the answer once it is complete."""
        payload = self.fake.command_payload(subcommand, options, permissions=permissions,
                                            **where)
        await self.fake.push("INTERACTION_CREATE", payload)
        await self.fake.wait_for(lambda: self._settled(payload["id"]), within=5)
        return Answer(self.fake.answers(payload["id"]))

    def _settled(self, interaction_id: str) -> bool:
        """Answered, and no "thinking…" message left waiting to be filled in."""
        return bool(self.fake.answers(interaction_id)) and not self.fake.thinking(interaction_id)

    async def cycle(self) -> None:
        await self.rt.monitor.run_cycle(force=True)
        self.clock.advance(60)

    def in_channel(self) -> list[Posted]:
        return [m for m in self.fake.messages if m.channel_id == CHANNEL_ID]

    def counted(self) -> float:
        return sum(s.value for m in self.rt.metrics.commands.collect() for s in m.samples
                   if s.name.endswith("_total") and s.labels["platform"] == "discord")


@asynccontextmanager
async def discord_bot(tmp_path: Path, *, defer_after: float = 1.5,
                      generate: dict[str, Any] | None = None, extra: str = "",
                      **env: str) -> AsyncIterator[Rig]:
    clock = FakeClock()
    async with FakeDiscord() as fake, SimRelay(models=("sora-2", "sora-2-pro"),
                                               api_key=KEY) as relay:
        settings = settings_for(tmp_path, relay, fake, generate=generate, extra=extra, **env)
        adapter = DiscordAdapter(settings, connect_wait=5, defer_after=defer_after)
        async with open_runtime(settings, chats=[adapter.chat], clock=clock) as rt, \
                adapter.running(rt.commands) as routes:
            assert routes == []  # commands come over the gateway; nothing to serve
            yield Rig(fake, relay, rt, adapter, clock)


# --- the command group -----------------------------------------------------------------------


async def test_sora_is_registered_once_as_a_group_with_typed_options(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        assert bot.adapter.client.is_ready()
        [sora] = bot.fake.commands[None]  # globally, without DISCORD_GUILD_ID
    assert sora["name"] == "sora" and sora["contexts"] == [0]  # servers only, not DMs
    subs = {o["name"]: o for o in sora["options"]}
    assert set(subs) == {"status", "generate", "subscribe", "unsubscribe", "subscriptions",
                         "digest", "maintenance", "help"}
    assert all(o["type"] == 1 and o["description"] for o in subs.values())
    options = {s: {o["name"]: o for o in subs[s].get("options", [])} for s in subs}
    assert options["status"]["service"]["autocomplete"] is True
    assert options["status"]["public"]["type"] == 5  # a boolean switch
    seconds = options["generate"]["seconds"]
    assert seconds["type"] == 4 and [c["value"] for c in seconds["choices"]] == [4, 8, 12]
    assert "1280x720" in [c["value"] for c in options["generate"]["size"]["choices"]]
    assert options["generate"]["prompt"]["required"] is True
    assert [c["value"] for c in options["subscribe"]["min"]["choices"]] == [
        "degraded", "risk_control", "suspended"]
    assert options["digest"]["timezone"]["autocomplete"] is True


async def test_with_a_guild_id_commands_are_registered_in_that_server_only(
        tmp_path: Path) -> None:
    async with discord_bot(tmp_path, DISCORD_GUILD_ID=GUILD_ID) as bot:
        assert [c["name"] for c in bot.fake.commands[GUILD_ID]] == ["sora"]
        assert bot.fake.commands.get(None, []) == []
        assert "synced" not in (await bot.ask("help")).text  # and it answers


async def test_every_subcommand_answers_and_does_what_it_says(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        await bot.cycle()  # both services answer: operational

        help_ = await bot.ask("help")
        assert help_.ephemeral
        for name in ("status", "subscribe", "unsubscribe", "subscriptions", "digest",
                     "maintenance", "generate", "help"):
            assert f"/sora {name}" in help_.text

        status = await bot.ask("status")
        assert status.ephemeral and status.colour == int(Severity.OK.hex[1:], 16)
        assert "**Sora 2 Pro · reverse relay**" in status.text and "🟢" in status.text
        assert status.messages[0].content == "**Video API status**"
        assert not (await bot.ask("status", {"public": True})).ephemeral
        detail = await bot.ask("status", {"service": REV})
        assert "Uptime 24h / 7d / 30d" in detail.text and "Sora 2 Pro" in detail.text

        subscribed = await bot.ask("subscribe", {"services": "sora-2*", "min": "suspended"})
        assert not subscribed.ephemeral  # the channel sees who turned alerts on
        assert f"set by <@{'1210000000000000030'}>" in subscribed.text
        sub = bot.rt.store.subscription("discord", GUILD_ID, CHANNEL_ID)
        assert sub is not None and sub.services == ("sora-2*",)
        assert sub.min_state.value == "suspended"

        listed = await bot.ask("subscriptions")
        assert listed.ephemeral and f"<#{CHANNEL_ID}> (this channel)" in listed.text

        digest = await bot.ask("digest", {"when": "09:30", "timezone": "Europe/Paris"})
        assert "Daily digest at 09:30 Europe/Paris" in digest.text
        assert bot.rt.store.subscription("discord", GUILD_ID, CHANNEL_ID).digest_time == "09:30"

        started = await bot.ask("maintenance", {"service": REV, "duration": "2h",
                                                "reason": "--relay upgrade"})
        assert "maintenance for 2h" in started.text and "--relay upgrade" in started.text
        assert any(m.content.startswith("**🔧 Maintenance started: --relay upgrade")
                   for m in bot.in_channel())  # announced to the subscribed channel
        under = await bot.ask("maintenance")
        assert under.ephemeral and "relay upgrade" in under.text
        ended = await bot.ask("maintenance", {"service": REV, "end": True})
        assert "ended" in ended.text and bot.rt.store.active_maintenance(REV, bot.clock()) == []

        unsubscribed = await bot.ask("unsubscribe")
        assert "Alerts off in this channel" in unsubscribed.text
        assert bot.rt.store.subscription("discord", GUILD_ID, CHANNEL_ID) is None

        # Without a [generate] section only admins may generate (test_discord_generate.py runs
        # one); a member is told so privately and nothing is sent upstream.
        generate = await bot.ask("generate", {"prompt": "--a red fox", "seconds": 8},
                                 permissions=MEMBER)
        assert generate.ephemeral and "not allowed to run test generations" in generate.text
        assert bot.relay.billable_calls == 0 and bot.rt.store.jobs() == []

        bad = await bot.ask("subscribe", {"services": "no-such-*"})
        assert bad.ephemeral and "Usage: `/sora subscribe" in bad.text
        assert bot.rt.store.subscriptions() == []
        assert bot.counted() == 13
        assert all(c.data and c.data.get("allowed_mentions") == NO_MENTIONS
                   for c in bot.fake.callbacks)


async def test_only_manage_channels_or_configured_admins_manage_alerts(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        refused = await bot.ask("subscribe", permissions=MEMBER)
        assert refused.ephemeral and "Only admins" in refused.text
        assert bot.rt.store.subscriptions() == []
        assert "Only admins" not in (await bot.ask("status", permissions=MEMBER)).text

        admin = discord.Permissions(administrator=True).value
        await bot.ask("subscribe", permissions=admin, channel_id="1210000000000000021")
        await bot.ask("subscribe", permissions=MEMBER, user_id=LISTED,
                      channel_id="1210000000000000022")
        assert {s.channel for s in bot.rt.store.subscriptions()} == {
            "1210000000000000021", "1210000000000000022"}


async def test_subscribing_where_the_bot_cannot_post_names_what_it_lacks(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        can_only_talk = discord.Permissions(view_channel=True, send_messages=True,
                                            embed_links=True).value
        refused = await bot.ask("subscribe", app_permissions=can_only_talk)
        assert refused.ephemeral
        assert "Attach Files, Read Message History" in refused.text
        assert bot.rt.store.subscriptions() == []  # nothing half-done


async def test_autocomplete_offers_services_lists_and_time_zones(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        async def choices(sub: str, options: dict[str, Any], focused: str) -> list[str]:
            payload = bot.fake.autocomplete_payload(sub, options, focused)
            await bot.fake.push("INTERACTION_CREATE", payload)
            await bot.fake.wait_for(lambda: any(
                c.interaction_id == payload["id"] for c in bot.fake.callbacks), within=5)
            [callback] = [c for c in bot.fake.callbacks if c.interaction_id == payload["id"]]
            assert callback.type == 8 and callback.error is None and callback.data is not None
            return [c["value"] for c in callback.data["choices"]]

        assert await choices("status", {"service": "rev"}, "service") == [REV]
        assert await choices("status", {"service": "official"}, "service") == [OFFICIAL]
        assert await choices("subscribe", {"services": f"{REV},sora-2-o"}, "services") == [
            f"{REV},{OFFICIAL}"]
        assert "Europe/Berlin" in await choices("digest", {"when": "09:00",
                                                           "timezone": "berl"}, "timezone")
        assert await choices("generate", {"prompt": "x", "model": "sora-2-p"}, "model") == [
            "sora-2-pro"]


# --- slow answers ----------------------------------------------------------------------------


class SlowCommands(Commands):
    """The real core, answering only after ``delay`` seconds (a slow digest, a busy relay)."""

    delay = 0.1

    async def handle(self, incoming: Incoming) -> Message:
        await asyncio.sleep(self.delay)
        return await super().handle(incoming)


async def test_a_slow_answer_is_deferred_then_fills_in_the_thinking_message() -> None:
    """The real ``CommandTree`` driven with raw interaction payloads, as discord.py does for
    INTERACTION_CREATE; the core takes longer than ``defer_after``."""
    async with logged_in() as (fake, chat):
        store = Store(":memory:")
        services = load_settings(None, {}).services
        core = SlowCommands(store=store, services=services, clock=FakeClock())
        client = chat._client
        tree = DiscordCommands(client, core, defer_after=0.02).tree

        async def ask(subcommand: str, options: dict[str, Any] | None = None,
                      permissions: int = MANAGER) -> Answer:
            payload = fake.command_payload(subcommand, options, permissions=permissions)
            await tree._call(discord.Interaction(data=payload, state=client._connection))
            return Answer(fake.answers(payload["id"]))

        status = await ask("status")  # deferred privately, answered privately
        assert status.ephemeral and "Video API status" in status.text
        subscribed = await ask("subscribe")  # deferred publicly, answered publicly
        assert not subscribed.ephemeral and "Alerts on" in subscribed.text
        assert [c.type for c in fake.callbacks] == [5, 5]
        assert all(c.after < 1.0 for c in fake.callbacks)  # Discord allows 3 s
        assert len(fake.edits) == 2  # the answers filled in the "thinking…" messages

        refused = await ask("subscribe", permissions=MEMBER)  # deferred publicly...
        assert refused.ephemeral and "Only admins" in refused.text  # ...answered privately
        assert len(refused.messages) == 1 and len(fake.deleted) == 1
        assert len(store.subscriptions()) == 1
        store.close()


async def test_digest_now_posts_an_embed_with_the_chart_attached(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        await bot.cycle()
        await bot.ask("subscribe")
        on_its_way = await bot.ask("digest", {"when": "now"})
        assert on_its_way.ephemeral and "Digest on its way" in on_its_way.text
        await bot.fake.wait_for(lambda: any("Daily digest" in m.content
                                            for m in bot.in_channel()), within=5)
        [digest] = [m for m in bot.in_channel() if "Daily digest" in m.content]
        [(filename, _, png)] = digest.files
        assert filename == "digest.png" and png.startswith(b"\x89PNG\r\n\x1a\n")
        assert digest.embeds[0]["image"]["url"] == "attachment://digest.png"
        assert digest.allowed_mentions == NO_MENTIONS and digest.nonce


# --- alerts through the ChatPort -------------------------------------------------------------


async def test_an_outage_is_a_coloured_embed_and_its_recovery_a_reply(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        await bot.ask("subscribe")
        await bot.cycle()
        before = len(bot.in_channel())

        bot.relay.set("sora-2-pro", Behaviour.UNAVAILABLE)
        await bot.cycle()
        [alert] = bot.in_channel()[before:]
        assert "Sora 2 Pro · reverse relay" in alert.content and alert.message_reference is None
        assert alert.embeds[0]["color"] not in (int(Severity.OK.hex[1:], 16),)
        assert "503" in shown([alert]) and alert.allowed_mentions == NO_MENTIONS

        bot.relay.set("sora-2-pro", Behaviour.OK)
        await bot.cycle()
        [recovery] = bot.in_channel()[before + 1:]
        assert recovery.message_reference is not None
        assert str(recovery.message_reference["message_id"]) == alert.id
        assert recovery.embeds[0]["color"] == int(Severity.OK.hex[1:], 16)
        assert "recovered" in recovery.content


async def test_nothing_a_user_typed_can_ping_anyone(tmp_path: Path) -> None:
    async with discord_bot(tmp_path) as bot:
        await bot.ask("subscribe")
        answers = [await bot.ask("maintenance", {"service": REV, "duration": "1h",
                                                 "reason": "@everyone <@&1234> <@99> @here"}),
                   await bot.ask("status", {"service": "@everyone"})]
        assert all("@\u200beveryone" in a.text for a in answers)  # shown as typed...
        announced = [m for m in bot.in_channel() if "Maintenance" in m.content]
        assert announced and all(m.allowed_mentions == NO_MENTIONS for m in bot.in_channel())
        dumped = json.dumps([shown(a.messages) for a in answers] + [shown(announced)])
        assert "<@&1234>" not in dumped and "<@99>" not in dumped  # ...defused by the core
        assert all(c.data and c.data["allowed_mentions"] == NO_MENTIONS
                   for c in bot.fake.callbacks if c.type == 4)


# --- delivery errors -------------------------------------------------------------------------


@asynccontextmanager
async def logged_in() -> AsyncIterator[tuple[FakeDiscord, DiscordChat]]:
    async with FakeDiscord() as fake:
        with pointed_at(fake):
            client = make_client()
            await client.login(fake.token)
            try:
                yield fake, DiscordChat(client)
            finally:
                await client.close()


async def test_discord_errors_become_delivery_errors_the_outbox_understands() -> None:
    async with logged_in() as (fake, chat):
        fake.missing_channels.add("1210000000000000099")
        fake.forbidden_channels.add("1210000000000000098")
        msg = Message(title="🔴 down")

        fake.fail("messages", RateLimit(0.05))  # short: discord.py waits and retries itself
        await chat.send(CHANNEL_ID, msg)
        assert len(fake.messages) == 1 and fake.rate_limited == 1

        fake.fail("messages", RateLimit(90.0, global_=True))  # long: back to the outbox
        with pytest.raises(DeliveryError) as limited:
            await chat.send(CHANNEL_ID, msg)
        assert limited.value.retry_after == 90.0 and not limited.value.permanent

        fake.fail("messages", 503)
        with pytest.raises(DeliveryError) as unavailable:
            await chat.send(CHANNEL_ID, msg)
        assert not unavailable.value.permanent

        for channel, code in (("1210000000000000099", "10003"), ("1210000000000000098", "50001"),
                              ("C-not-a-snowflake", "not a Discord id")):
            with pytest.raises(DeliveryError) as refused:
                await chat.send(channel, msg)
            assert refused.value.permanent and code in str(refused.value)
        with pytest.raises(DeliveryError) as gone:
            await chat.edit(MessageRef("discord", CHANNEL_ID, "1210000000000000097"), msg)
        assert gone.value.permanent and "10008" in str(gone.value)
        assert len(fake.messages) == 1


async def test_a_post_retried_with_its_key_appears_once_and_big_files_are_not_sent() -> None:
    async with logged_in() as (fake, chat):
        msg = Message(title="🔴 Sora down", attachments=(
            Attachment("digest.png", b"\x89PNG" + b"0" * 100),
            Attachment("video.mp4", b"0" * (11 * 1024 * 1024), mime="video/mp4")))
        first = await chat.send(CHANNEL_ID, msg, key="t:7:sub:3@discord")
        again = await chat.send(CHANNEL_ID, msg, key="t:7:sub:3@discord")
        assert first == again and len(fake.messages) == 1
        [posted] = fake.messages
        assert posted.nonce is not None and len(posted.nonce) <= 25
        assert [f[0] for f in posted.files] == ["digest.png"]
        assert "video.mp4 is too large to attach here" in shown([posted])


async def test_a_long_message_arrives_as_embeds_discord_accepts_with_nothing_lost() -> None:
    async with logged_in() as (fake, chat):
        fields = tuple(Field(f"incident {i}", f"{i}: " + "y" * 700) for i in range(40))
        text = "\n".join(f"line {i:03d} " + "x" * 100 for i in range(80))
        ref = await chat.send(CHANNEL_ID, Message(
            title="Daily digest — 21 Nov 2026", text=text, severity=Severity.WARNING,
            fields=fields, context="Last 24 h"), key="digest:1")
        assert len(fake.messages) > 1 and ref.id == fake.messages[0].id  # the fake checked
        embeds = [e for m in fake.messages for e in m.embeds]          # every limit
        assert {e["color"] for e in embeds} == {int(Severity.WARNING.hex[1:], 16)}
        got = [f["value"] for e in embeds for f in e.get("fields", [])]
        assert got == [f.value for f in fields]
        described = "\n".join(e["description"] for e in embeds if e.get("description"))
        assert described == text
        assert embeds[-1]["footer"]["text"] == "Last 24 h"
        assert fake.messages[1].content == "**Daily digest — 21 Nov 2026** (continued)"
        assert len({m.nonce for m in fake.messages}) == len(fake.messages)


async def test_sending_before_login_is_a_retryable_error() -> None:
    chat = DiscordChat(make_client())
    with pytest.raises(DeliveryError) as caught:
        await chat.send(CHANNEL_ID, Message(title="hi"))
    assert not caught.value.permanent and "not logged in" in str(caught.value)


# --- start-up --------------------------------------------------------------------------------


async def test_a_token_discord_refuses_is_a_clear_start_error(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, SimRelay(models=("sora-2",)) as relay:
        wrong = "MTIz.revoked.token"
        settings = settings_for(tmp_path, relay, fake).model_copy(
            update={"discord_token": SecretStr(wrong)})
        adapter = DiscordAdapter(settings)
        async with open_runtime(settings, chats=[adapter.chat]) as rt:
            with pytest.raises(ChatStartError) as caught:
                async with adapter.running(rt.commands):
                    pass
    assert "Discord refused DISCORD_TOKEN (401 Unauthorized)" in str(caught.value)
    assert wrong not in str(caught.value)


async def test_an_unreachable_discord_does_not_stop_the_bot(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDiscord() as fake, SimRelay(models=("sora-2",)) as relay:
        settings = settings_for(tmp_path, relay, fake).model_copy(
            update={"discord_api_url": "http://127.0.0.1:9/api/v10"})  # nothing listens
    adapter = DiscordAdapter(settings, connect_wait=0.3)
    async with open_runtime(settings, chats=[adapter.chat]) as rt, \
            adapter.running(rt.commands) as routes:
        assert routes == []
        with pytest.raises(DeliveryError):  # alerts wait in the outbox meanwhile
            await adapter.chat.send(CHANNEL_ID, Message(title="hi"))
    assert "Discord is not reachable yet" in caplog.text
    assert "Discord gateway still connecting; retrying in the background" in caplog.text


async def test_a_discord_that_fails_at_start_is_retried_in_the_background(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDiscord() as fake, SimRelay(models=("sora-2",)) as relay:
        fake.fail("login", 503)
        fake.fail("gateway", 503)
        settings = settings_for(tmp_path, relay, fake)
        adapter = DiscordAdapter(settings, connect_wait=0.1)
        async with open_runtime(settings, chats=[adapter.chat]) as rt, \
                adapter.running(rt.commands):
            await asyncio.wait_for(fake.connected.wait(), 10)
            await adapter.chat.send(CHANNEL_ID, Message(title="queued while away"))
    assert "Discord is not reachable yet (HTTP 503: Service Unavailable)" in caplog.text
    assert "Discord API did not name its gateway" in caplog.text
    assert [m.content for m in fake.messages] == ["**queued while away**"]


async def test_commands_discord_refuses_to_register_are_logged_with_the_invite(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeDiscord() as fake, SimRelay(models=("sora-2",)) as relay:
        fake.fail("commands", 403)
        settings = settings_for(tmp_path, relay, fake)
        adapter = DiscordAdapter(settings, connect_wait=5)
        async with open_runtime(settings, chats=[adapter.chat]) as rt, \
                adapter.running(rt.commands):
            assert adapter.client.is_ready()  # alerts still work
    assert "could not register /sora with Discord (HTTP 403: Missing Permissions)" in caplog.text
    assert "scope=bot+applications.commands" in caplog.text
