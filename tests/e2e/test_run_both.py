"""``sora-bot run`` with Slack and Discord configured together: one real process, one event loop,
the loopback fakes of both as their APIs. One outage reaches a subscribed channel on each."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx2

from bot.sim import SimRelay
from bot.sim.relay import Behaviour
from tests.e2e.test_slack import ADMIN, CHANNEL, KEY, SECRET, reply_at
from tests.e2e.test_slack_run import CONFIG, bot_env, free_port, start_bot, wait_healthy
from tests.fakes.discord_api import CHANNEL_ID, FakeDiscord
from tests.fakes.slack_api import FakeSlack, signed_slash_command

MANAGE_CHANNELS = 1 << 4
FAST = CONFIG + "interval = 0.5\nfailure_threshold = 1\nsuccess_threshold = 1\n"


async def test_one_outage_reaches_slack_and_discord_from_one_process(tmp_path: Path) -> None:
    async with FakeSlack() as slack, FakeDiscord() as discord, \
            SimRelay(models=("sora-2",), api_key=KEY) as relay, httpx2.AsyncClient() as http:
        slack.users[ADMIN] = {"is_admin": True}
        port = free_port()
        env = bot_env(tmp_path, slack, relay, port, slack.bot_token)
        (tmp_path / "bot.toml").write_text(FAST, encoding="utf-8")
        env.update(DISCORD_TOKEN=discord.token, DISCORD_API_URL=discord.api_url)
        bot = await start_bot(env)
        base = f"http://127.0.0.1:{port}"
        try:
            await asyncio.wait_for(discord.connected.wait(), 20)  # the gateway is up
            await wait_healthy(http, base)

            url = slack.response_url()
            body, headers = signed_slash_command(SECRET, "subscribe", user_id=ADMIN,
                                                 channel_id=CHANNEL, response_url=url)
            assert (await http.post(f"{base}/slack/events", content=body,
                                    headers=headers)).status_code == 200
            assert "Alerts on in this channel" in (await reply_at(slack, url))["text"]
            payload = discord.command_payload("subscribe", permissions=MANAGE_CHANNELS)
            await discord.push("INTERACTION_CREATE", payload)
            await discord.wait_for(lambda: discord.answers(payload["id"]), within=10)
            assert "Alerts on in this channel" in discord.answers(payload["id"])[0].content

            relay.set("sora-2", Behaviour.UNAVAILABLE)
            await discord.wait_for(lambda: any(
                m.channel_id == CHANNEL_ID and "Reverse relay" in m.content
                for m in discord.messages), within=20)
            for _ in range(400):
                if any(m.channel == CHANNEL and "Reverse relay" in m.text
                       for m in slack.messages):
                    break
                await asyncio.sleep(0.05)
        finally:
            bot.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(bot.communicate(), 20)
        log = (out + err).decode()
        assert bot.returncode == 0, log
        [on_slack] = [m for m in slack.messages if "Reverse relay" in m.text]
        [on_discord] = [m for m in discord.messages if "Reverse relay" in m.content]
        assert "suspended" in on_slack.text and "suspended" in on_discord.content
        assert "Slack: connected to" in log and "Discord: connected as" in log
        assert discord.token not in log and slack.bot_token not in log and KEY not in log


async def test_run_with_a_token_discord_refuses_exits_2_saying_which(tmp_path: Path) -> None:
    async with FakeSlack() as slack, FakeDiscord() as discord, \
            SimRelay(models=("sora-2",), api_key=KEY) as relay:
        env = bot_env(tmp_path, slack, relay, free_port(), slack.bot_token)
        wrong = "MTIz.wrong.token"
        env.update(DISCORD_TOKEN=wrong, DISCORD_API_URL=discord.api_url)
        bot = await start_bot(env)
        out, err = await asyncio.wait_for(bot.communicate(), 20)
    assert bot.returncode == 2
    assert "sora-bot: Discord refused DISCORD_TOKEN (401 Unauthorized)" in err.decode()
    assert wrong not in (out + err).decode()
