"""``/sora`` in Slack, end to end: the real Bolt app and ``AsyncWebClient`` against the loopback
fake Slack (``tests.fakes.slack_api``), slash commands signed with Slack's scheme and sent over
real HTTP to ``/slack/events`` on the bot's own server, probes against the relay simulator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2
import pytest
from pydantic import SecretStr

from adapters.slack import METHOD_SCOPES, SlackAdapter, SlackChat, make_web_client
from bot.app import Runtime, open_runtime
from bot.chat import ChatStartError, DeliveryError
from bot.config import Settings, load_settings
from bot.messages import Attachment, Message, Severity
from bot.server import build_app, serve
from bot.sim import SimRelay
from bot.sim.relay import Behaviour
from bot.store import OutboxItem
from tests.fakes.chat import FakeClock
from tests.fakes.slack_api import FakeSlack, Posted, signed_slash_command, slash_payload

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
KEY = "sk-slack-e2e-0000000000000000"
ADMIN, PLAIN, CHANNEL = "UADMIN", "UPLAIN", "C0ALERTS"
REV, OFFICIAL = "sora-2-pro-reverse", "sora-2-official"
NO_SCOPE_NEEDED = {"auth.test", "apps.connections.open"}


def relay_services(relay: SimRelay, *, priced: bool = False) -> str:
    """Two ``[[service]]`` entries on ``relay`` (key in ``REV_KEY``) that flip on one probe;
    ``priced``: at $0.10 a second (an 8 s generation is estimated at $0.80)."""
    price = "price_per_second = 0.10\n" if priced else ""
    return "".join(
        f'[[service]]\nid = "{sid}"\nname = "{name}"\nkind = "openai_compat"\nmodel = "{model}"\n'
        f'base_url = "{relay.url}"\napi_key_env = "REV_KEY"\ninterval = 60\n'
        f"failure_threshold = 1\nsuccess_threshold = 1\n{price}\n"
        for sid, name, model in ((REV, "Sora 2 Pro · reverse relay", "sora-2-pro"),
                                 (OFFICIAL, "Sora 2 · official relay", "sora-2")))


def generate_section(generate: dict[str, Any] | None) -> str:
    """A ``[generate]`` table (values written as JSON, which TOML reads alike), or nothing."""
    if generate is None:
        return ""
    return "[generate]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in generate.items()) \
        + "\n"


def settings_for(tmp_path: Path, relay: SimRelay, slack: FakeSlack, *,
                 socket: bool = False, generate: dict[str, Any] | None = None) -> Settings:
    """``generate``: a ``[generate]`` section (and prices on the services)."""
    cfg = tmp_path / "bot.toml"
    cfg.write_text("[bot]\nbuiltin_catalog = false\n\n" + generate_section(generate)
                   + relay_services(relay, priced=generate is not None), encoding="utf-8")
    env = {"SORA_BOT_DB": str(tmp_path / "bot.db"), "REV_KEY": KEY,
           "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.api_url}
    env.update({"SLACK_APP_TOKEN": slack.app_token} if socket else
               {"SLACK_SIGNING_SECRET": SECRET})
    return load_settings(cfg, env)


def shown(body: Any) -> str:
    """Every text of a Slack payload (fallback, blocks, attachments, table cells), joined."""
    if isinstance(body, dict):
        return "\n".join(shown(v) if k != "text" or not isinstance(v, str) else v
                         for k, v in body.items() if isinstance(v, (dict, list, str))
                         and (k == "text" or not isinstance(v, str)))
    if isinstance(body, list):
        return "\n".join(shown(v) for v in body)
    return ""


def blocks_of(payload: dict[str, Any] | Posted) -> list[dict[str, Any]]:
    if isinstance(payload, Posted):
        return payload.blocks or payload.attachments[0]["blocks"]
    return payload.get("blocks") or payload["attachments"][0]["blocks"]


@dataclass
class Rig:
    slack: FakeSlack
    relay: SimRelay
    rt: Runtime
    base: str
    http: httpx2.AsyncClient
    clock: FakeClock

    async def post(self, text: str, *, user: str = ADMIN, secret: str = SECRET,
                   timestamp: int | None = None, url: str | None = None
                   ) -> tuple[httpx2.Response, str]:
        url = url or self.slack.response_url()
        body, headers = signed_slash_command(secret, text, user_id=user, channel_id=CHANNEL,
                                             response_url=url, timestamp=timestamp)
        return await self.http.post(f"{self.base}/slack/events", content=body,
                                    headers=headers), url

    async def ask(self, text: str, *, user: str = ADMIN) -> dict[str, Any]:
        response, url = await self.post(text, user=user)
        assert response.status_code == 200
        return await reply_at(self.slack, url)

    async def cycle(self) -> None:
        await self.rt.monitor.run_cycle(force=True)
        self.clock.advance(60)

    def in_channel(self) -> list[Posted]:
        return [m for m in self.slack.messages if m.channel == CHANNEL]

    def commands_counted(self) -> float:
        return sum(s.value for m in self.rt.metrics.commands.collect() for s in m.samples
                   if s.name.endswith("_total"))


async def reply_at(slack: FakeSlack, url: str) -> dict[str, Any]:
    """The answer posted to ``url`` (the response URL of one command), waited for up to 5 s."""
    path = urlparse(url).path
    for _ in range(500):
        found = [r.body for r in slack.responses if r.path == path]
        if found:
            return found[0]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no answer at {path}")


@asynccontextmanager
async def slack_bot(tmp_path: Path, *,
                    generate: dict[str, Any] | None = None) -> AsyncIterator[Rig]:
    """The bot in HTTP mode: the runtime, the Slack adapter's route on the bot's server.
    ``generate``: the config's ``[generate]`` section."""
    clock = FakeClock()
    async with FakeSlack() as slack, SimRelay(models=("sora-2", "sora-2-pro"),
                                              api_key=KEY) as relay:
        slack.users.update({ADMIN: {"is_admin": True}, PLAIN: {}})
        settings = settings_for(tmp_path, relay, slack, generate=generate)
        adapter = SlackAdapter(settings)
        async with open_runtime(settings, chats=[adapter.chat], clock=clock) as rt, \
                adapter.running(rt.commands) as routes, httpx2.AsyncClient() as http:
            app = build_app(metrics=rt.metrics, last_cycle=lambda: None, clock=clock,
                            started_at=clock(), stale_after=600, routes=routes)
            runner, port = await serve(app, host="127.0.0.1", port=0)
            try:
                yield Rig(slack, relay, rt, f"http://127.0.0.1:{port}", http, clock)
            finally:
                await runner.cleanup()


# --- every subcommand ----------------------------------------------------------------------


async def test_every_subcommand_answers_through_the_response_url(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        await bot.cycle()  # both services answer: operational

        help_ = await bot.ask("help")
        assert help_["response_type"] == "ephemeral"
        for name in ("status", "subscribe", "unsubscribe", "subscriptions", "digest",
                     "maintenance", "generate", "help"):
            assert f"/sora {name}" in shown(help_)
        assert shown(await bot.ask("")) == shown(help_)

        status = await bot.ask("status")
        assert status["response_type"] == "ephemeral"
        [table] = [b for b in status["blocks"] if b["type"] == "table"]
        cells = [[c["text"] for c in row] for row in table["rows"]]
        assert {"Sora 2 Pro · reverse relay", "Sora 2 · official relay"} <= {
            c for row in cells for c in row}
        assert any("🟢" in c for row in cells[1:] for c in row)
        assert status["text"].startswith("Video API status")  # the notification fallback

        public = await bot.ask("status public")
        assert public["response_type"] == "in_channel"

        detail = await bot.ask(f"status {REV}")
        assert "Sora 2 Pro · reverse relay" in blocks_of(detail)[0]["text"]["text"]

        subscribed = await bot.ask("subscribe sora-2* --min suspended")
        assert subscribed["response_type"] == "in_channel"  # the channel sees who turned it on
        assert "sora-2*" in shown(subscribed) and "set by <@UADMIN>" in shown(subscribed)
        sub = bot.rt.store.subscription("slack", "T0TEST", CHANNEL)
        assert sub is not None and sub.services == ("sora-2*",) and sub.created_by == ADMIN

        listed = await bot.ask("subscriptions")
        assert listed["response_type"] == "ephemeral" and "sora-2*" in shown(listed)

        digest = await bot.ask("digest 09:30 Europe/Paris")
        assert "Daily digest at 09:30 Europe/Paris" in shown(digest)
        assert bot.rt.store.subscription("slack", "T0TEST", CHANNEL).digest_time == "09:30"

        started = await bot.ask(f"maintenance {REV} 2h relay upgrade")
        assert "maintenance for 2h" in shown(started)
        assert any(m.text.startswith("🔧 Maintenance started: relay upgrade")
                   for m in bot.in_channel())  # announced to the subscribed channel
        under = await bot.ask("maintenance")
        assert under["response_type"] == "ephemeral" and "relay upgrade" in shown(under)
        ended = await bot.ask(f"maintenance end {REV}")
        assert "ended" in shown(ended)
        assert bot.rt.store.active_maintenance(REV, bot.clock()) == []

        unsubscribed = await bot.ask("unsubscribe")
        assert "Alerts off in this channel" in shown(unsubscribed)
        assert bot.rt.store.subscription("slack", "T0TEST", CHANNEL) is None

        # Without a [generate] section only admins may generate (test_slack_generate.py runs
        # one); anyone else is told so privately and nothing is sent upstream.
        generate = await bot.ask("generate a red fox running through snow", user=PLAIN)
        assert generate["response_type"] == "ephemeral"
        assert "not allowed to run test generations" in shown(generate)
        assert bot.relay.billable_calls == 0 and bot.rt.store.jobs() == []

        unknown = await bot.ask("frobnicate now")
        assert unknown["response_type"] == "ephemeral"
        assert "unknown command 'frobnicate'" in shown(unknown) and "/sora help" in shown(unknown)

        bad = await bot.ask("subscribe --min sometimes")
        assert bad["response_type"] == "ephemeral"
        assert "Usage: `/sora subscribe" in shown(bad)

        assert bot.commands_counted() == 15
        used = {c.method for c in bot.slack.calls}
        assert used - NO_SCOPE_NEEDED <= set(METHOD_SCOPES)  # manifest.yml grants them


async def test_a_bad_signature_or_a_stale_timestamp_is_401_and_nothing_runs(
        tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        forged, _ = await bot.post("subscribe", secret="not-the-signing-secret")
        stale, _ = await bot.post("subscribe", timestamp=int(time.time()) - 6 * 60)
        unsigned = await bot.http.post(f"{bot.base}/slack/events", content=b"command=%2Fsora",
                                       headers={"Content-Type":
                                                "application/x-www-form-urlencoded"})
        assert (forged.status_code, stale.status_code, unsigned.status_code) == (401, 401, 401)

        fresh, url = await bot.post("status", timestamp=int(time.time()) - 4 * 60)
        assert fresh.status_code == 200  # within Slack's five minutes
        await reply_at(bot.slack, url)
        assert bot.commands_counted() == 1  # only the fresh one ran
        assert len(bot.slack.responses) == 1
        assert bot.slack.method_calls("users.info") == []
        assert bot.rt.store.subscriptions() == []


async def test_only_workspace_admins_and_configured_admins_manage_alerts(
        tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        refused = await bot.ask("subscribe", user=PLAIN)
        assert refused["response_type"] == "ephemeral"
        assert "Only admins" in shown(refused)
        assert bot.rt.store.subscriptions() == []
        await bot.ask("digest 09:00", user=PLAIN)
        assert [c.args["user"] for c in bot.slack.method_calls("users.info")] == [PLAIN]  # cached

        bot.slack.users["UOWNER"] = {"is_owner": True}
        await bot.ask("subscribe", user="UOWNER")
        assert bot.rt.store.subscription("slack", "T0TEST", CHANNEL) is not None
        assert "Only admins" not in shown(await bot.ask("status", user=PLAIN))  # anyone may look


async def test_what_a_user_typed_never_reaches_slack_as_a_mention(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        answers = [await bot.ask(text) for text in (
            "subscribe <!channel>", "maintenance <!here> 2h", "status <!everyone>",
            "<!channel> hello", "digest 09:00 <@U999>")]
        dumped = json.dumps(answers, ensure_ascii=False)
        assert "<!" not in dumped and "<@" not in dumped
        assert "&lt;" in dumped  # shown escaped, not dropped


async def test_an_expired_response_url_is_logged_and_the_next_command_still_works(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with slack_bot(tmp_path) as bot:
        expired, _ = await bot.post("status", url=f"{bot.slack.url}/respond/expired")
        assert expired.status_code == 200  # acked: Slack saw an answer in time
        for _ in range(500):
            if "could not answer /sora status" in caplog.text:
                break
            await asyncio.sleep(0.01)
        assert "could not answer /sora status through the response URL: HTTP 404" in caplog.text
        assert (await bot.ask("help"))["response_type"] == "ephemeral"


# --- alerts and digests through the ChatPort -----------------------------------------------


async def test_an_outage_is_block_kit_with_a_fallback_and_the_recovery_is_threaded(
        tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        await bot.ask("subscribe")
        await bot.cycle()
        before = len(bot.in_channel())

        bot.relay.set("sora-2-pro", Behaviour.UNAVAILABLE)
        await bot.cycle()
        [alert] = bot.in_channel()[before:]
        assert alert.thread_ts is None
        [attachment] = alert.attachments
        assert attachment["color"] not in (Severity.OK.hex, Severity.NEUTRAL.hex)
        header = attachment["blocks"][0]
        assert header["type"] == "header" and "Sora 2 Pro · reverse relay" in header["text"]["text"]
        assert alert.text.startswith(header["text"]["text"])  # the notification fallback
        assert "503" in shown(attachment)

        bot.relay.set("sora-2-pro", Behaviour.OK)
        await bot.cycle()
        [recovery] = bot.in_channel()[before + 1:]
        assert recovery.thread_ts == alert.ts
        assert recovery.attachments[0]["color"] == Severity.OK.hex
        assert "recovered" in recovery.text


async def test_digest_now_posts_the_digest_with_its_chart_as_an_image(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        await bot.cycle()
        await bot.ask("subscribe")
        await bot.ask("digest now")
        for _ in range(500):
            if bot.slack.uploads:
                break
            await asyncio.sleep(0.01)
        digest = [m for m in bot.in_channel() if "Daily digest" in m.text]
        assert len(digest) == 1
        [upload] = bot.slack.uploads
        assert upload.channel == CHANNEL and upload.filename.endswith(".png")
        assert upload.content.startswith(b"\x89PNG\r\n\x1a\n") and len(upload.content) > 1000


async def test_a_failed_chart_upload_is_noted_on_the_digest_not_posted_twice(
        tmp_path: Path) -> None:
    async with FakeSlack() as slack:
        slack.fail("files.getUploadURLExternal", "not_allowed_token_type")
        chat = SlackChat(make_web_client(slack.bot_token, base_url=slack.api_url))
        ref = await chat.send("C1", Message(title="Daily digest", attachments=(
            Attachment("digest.png", b"\x89PNG-chart", alt="uptime chart"),)))
        assert len(slack.messages) == 1 and slack.uploads == []
        [update] = slack.updates
        assert update.ts == ref.id and "digest.png could not be attached" in shown(
            update.attachments)


# --- rate limits and errors ----------------------------------------------------------------


async def test_slack_errors_become_delivery_errors_the_outbox_understands() -> None:
    async with FakeSlack() as slack:
        slack.retry_after = 1
        slack.missing_channels.add("CGONE")
        chat = SlackChat(make_web_client(slack.bot_token, base_url=slack.api_url))
        msg = Message(title="🔴 down")

        slack.fail("chat.postMessage", 429)  # the SDK waits Retry-After and tries once more
        ref = await chat.send("C1", msg)
        assert ref.id == slack.messages[-1].ts
        assert len(slack.method_calls("chat.postMessage")) == 2

        slack.fail("chat.postMessage", 429, 429)
        with pytest.raises(DeliveryError) as limited:
            await chat.send("C1", msg)
        assert limited.value.retry_after == 1.0 and not limited.value.permanent

        slack.fail("chat.postMessage", 503)
        with pytest.raises(DeliveryError) as unavailable:
            await chat.send("C1", msg)
        assert not unavailable.value.permanent and unavailable.value.retry_after is None

        with pytest.raises(DeliveryError) as gone:
            await chat.send("CGONE", msg)
        assert gone.value.permanent and "channel_not_found" in str(gone.value)
        assert len(slack.messages) == 1  # only the first post got through


async def test_the_outbox_retries_a_slack_outage_and_posts_once(tmp_path: Path) -> None:
    async with slack_bot(tmp_path) as bot:
        bot.slack.fail("chat.postMessage", 503, 500)
        bot.rt.store.enqueue([OutboxItem("alert-1", "slack", CHANNEL,
                                         Message(title="🔴 Sora down"))], bot.clock())
        await bot.rt.outbox.deliver()
        assert bot.in_channel() == []
        for _ in range(3):
            bot.clock.advance(600)
            await bot.rt.outbox.deliver()
        assert [m.text for m in bot.in_channel()] == ["🔴 Sora down"]
        assert len(bot.slack.method_calls("chat.postMessage")) == 3


# --- Socket Mode and start-up --------------------------------------------------------------


async def test_socket_mode_receives_sora_over_the_websocket(tmp_path: Path) -> None:
    async with FakeSlack() as slack, SimRelay(models=("sora-2", "sora-2-pro"),
                                              api_key=KEY) as relay:
        slack.users[ADMIN] = {"is_admin": True}
        settings = settings_for(tmp_path, relay, slack, socket=True)
        adapter = SlackAdapter(settings)
        assert adapter.mode == "socket"
        async with open_runtime(settings, chats=[adapter.chat]) as rt, \
                adapter.running(rt.commands) as routes:
            assert routes == []  # nothing to serve: Slack connects to no URL of ours
            await asyncio.wait_for(slack.socket_connected.wait(), 5)
            url = slack.response_url()
            ack = await slack.push_slash_command(slash_payload("status", response_url=url))
            assert ack["envelope_id"]
            answer = await reply_at(slack, url)
        assert answer["response_type"] == "ephemeral"
        assert any(b["type"] == "table" for b in answer["blocks"])


async def test_socket_mode_keeps_trying_while_slack_is_unreachable_at_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeSlack() as slack, SimRelay(models=("sora-2",)) as relay:
        settings = settings_for(tmp_path, relay, slack, socket=True).model_copy(
            update={"slack_api_url": "http://127.0.0.1:9/api/"})  # nothing listens there
    adapter = SlackAdapter(settings, connect_wait=0.5)
    async with open_runtime(settings, chats=[adapter.chat]) as rt, \
            adapter.running(rt.commands) as routes:
        assert routes == []  # the bot runs on; alerts wait in the outbox
    assert "Slack is not reachable yet" in caplog.text
    assert "not reachable yet" in caplog.text
    assert "Slack Socket Mode still connecting; retrying in the background" in caplog.text


@pytest.mark.parametrize(("socket", "token", "variable"), [
    (False, {"slack_bot_token": SecretStr("xoxb-not-it")}, "SLACK_BOT_TOKEN"),
    (True, {"slack_app_token": SecretStr("xapp-1-revoked")}, "SLACK_APP_TOKEN"),
])
async def test_a_token_slack_refuses_is_a_clear_start_error(
        tmp_path: Path, socket: bool, token: dict[str, SecretStr], variable: str) -> None:
    async with FakeSlack() as slack, SimRelay(models=("sora-2",)) as relay:
        settings = settings_for(tmp_path, relay, slack, socket=socket).model_copy(update=token)
        adapter = SlackAdapter(settings)
        async with open_runtime(settings, chats=[adapter.chat]) as rt:
            with pytest.raises(ChatStartError) as caught:
                async with adapter.running(rt.commands):
                    pass
    assert f"Slack refused {variable} (" in str(caught.value)
    assert ": invalid_auth); " in str(caught.value)
    assert next(iter(token.values())).get_secret_value() not in str(caught.value)
