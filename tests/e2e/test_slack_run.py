"""``sora-bot run`` with Slack configured, as a user starts it: a real process, env variables
only, the loopback fake Slack as the Web API. HTTP mode serves ``/slack/events`` on the same
port as ``/healthz``; a wrong token stops it at once with a clear message."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import httpx2

from bot.sim import SimRelay
from tests.e2e.test_slack import ADMIN, CHANNEL, KEY, SECRET, reply_at
from tests.fakes.slack_api import FakeSlack, signed_slash_command

CONFIG = """[bot]
builtin_catalog = false
tick_seconds = 0.5

[[service]]
id = "rev"
name = "Reverse relay"
kind = "openai_compat"
model = "sora-2"
base_url_env = "REV_URL"
api_key_env = "REV_KEY"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bot_env(tmp_path: Path, slack: FakeSlack, relay: SimRelay, port: int, token: str
            ) -> dict[str, str]:
    config = tmp_path / "bot.toml"
    config.write_text(CONFIG, encoding="utf-8")
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
            "SORA_BOT_CONFIG": str(config), "SORA_BOT_DB": str(tmp_path / "bot.db"),
            "PORT": str(port), "REV_URL": relay.url, "REV_KEY": KEY,
            "SLACK_BOT_TOKEN": token, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url}


async def start_bot(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from bot.cli import main; raise SystemExit(main())", "run",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def wait_healthy(http: httpx2.AsyncClient, base: str) -> None:
    """Until the started bot answers ``GET /healthz`` 200 (up to 15 s)."""
    for _ in range(300):
        try:
            if (await http.get(f"{base}/healthz")).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the bot never answered /healthz")


async def test_run_in_http_mode_serves_slack_events_next_to_healthz(tmp_path: Path) -> None:
    async with FakeSlack() as slack, SimRelay(models=("sora-2",), api_key=KEY) as relay, \
            httpx2.AsyncClient() as http:
        slack.users[ADMIN] = {"is_admin": True}
        port = free_port()
        bot = await start_bot(bot_env(tmp_path, slack, relay, port, slack.bot_token))
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_healthy(http, base)

            url = slack.response_url()
            body, headers = signed_slash_command(SECRET, "subscribe", user_id=ADMIN,
                                                 channel_id=CHANNEL, response_url=url)
            answer = await http.post(f"{base}/slack/events", content=body, headers=headers)
            assert answer.status_code == 200
            reply = await reply_at(slack, url)
            assert reply["response_type"] == "in_channel"
            assert "Alerts on in this channel" in reply["text"]
            assert (await http.get(f"{base}/metrics")).status_code == 200
        finally:
            bot.send_signal(signal.SIGINT)
            out, err = await asyncio.wait_for(bot.communicate(), 20)
        log = (out + err).decode()
        assert bot.returncode == 0, log
        assert "POST /slack/events" in log and "Slack: connected to" in log
        assert slack.bot_token not in log and SECRET not in log and KEY not in log
        assert slack.calls[0].method == "auth.test"  # the token is checked before serving


async def test_run_with_a_wrong_bot_token_exits_2_saying_which(tmp_path: Path) -> None:
    async with FakeSlack() as slack, SimRelay(models=("sora-2",), api_key=KEY) as relay:
        wrong = "xoxb-revoked-0000000000"
        bot = await start_bot(bot_env(tmp_path, slack, relay, free_port(), wrong))
        out, err = await asyncio.wait_for(bot.communicate(), 20)
        assert bot.returncode == 2
        message = err.decode()
        assert "Slack refused SLACK_BOT_TOKEN" in message and "invalid_auth" in message
        assert wrong not in (out + err).decode()
