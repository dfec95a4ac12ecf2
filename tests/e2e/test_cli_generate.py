"""``sora-bot generate`` as a user runs it: a real process, a real config and database, the real
``AsyncOpenAI`` against loopback relays."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.sim.relay import FAKE_MP4, Behaviour, SimRelay

KEY = "sk-cli-generate-0123456789"


def write_config(tmp_path: Path, official: SimRelay, reverse: SimRelay) -> Path:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(
        "[bot]\nbuiltin_catalog = false\n\n"
        "[generate]\npoll_min_seconds = 0.05\nedit_every_seconds = 0\ndaily_budget_usd = 1.0\n\n"
        + "".join(
            f'[[service]]\nid = "{sid}"\nname = "{name}"\nkind = "openai_compat"\n'
            f'model = "sora-2"\naccess = "{access}"\nbase_url = "{relay.url}"\n'
            f'api_key_env = "RELAY_KEY"\n{price}\n\n'
            for sid, name, access, relay, price in (
                ("off", "Sora 2 · official", "official", official, "price_per_second = 0.10"),
                ("rev", "Sora 2 · reverse", "reverse", reverse, "price_per_request = 0.08"))),
        encoding="utf-8")
    return cfg


async def sora_bot(tmp_path: Path, cfg: Path, *argv: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SORA_", "SLACK_", "DISCORD_", "GEMINI_", "OPENAI_"))}
    env.update(SORA_BOT_DB=str(tmp_path / "bot.db"), RELAY_KEY=KEY)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "--config", str(cfg), *argv,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def relays() -> Any:
    official, reverse = SimRelay(api_key=KEY), SimRelay(api_key=KEY)
    await official.start()
    await reverse.start()
    yield official, reverse
    await official.stop()
    await reverse.stop()


async def test_generate_falls_back_waits_and_writes_the_video(
        tmp_path: Path, relays: tuple[SimRelay, SimRelay]) -> None:
    official, reverse = relays
    official.set("sora-2", Behaviour.UNAVAILABLE)
    cfg = write_config(tmp_path, official, reverse)
    code, out, err = await sora_bot(tmp_path, cfg, "generate", "a", "red", "fox", "--seconds", "8",
                                    "--out", "fox.mp4", "--json")
    assert code == 0, err
    job = json.loads(out)
    assert job["status"] == "completed" and job["service"] == "rev"
    assert [a["result"] for a in job["attempts"]] == ["retryable", "accepted"]
    assert job["cost_usd"] == 0.08 and job["video"] == "fox.mp4"
    assert (tmp_path / "fox.mp4").read_bytes() == FAKE_MP4
    assert "Test generation done on Sora 2 · reverse" in err  # the console shows the progress
    assert official.billable_calls == 1 and reverse.billable_calls == 1
    assert KEY not in out + err


async def test_generate_exits_2_when_nothing_is_sent(
        tmp_path: Path, relays: tuple[SimRelay, SimRelay]) -> None:
    official, reverse = relays
    cfg = write_config(tmp_path, official, reverse)
    code, _, err = await sora_bot(tmp_path, cfg, "generate", "a", "fox", "--seconds", "12")
    assert code == 2 and "budget" in err  # 12 s at $0.10 is over the $1.00 budget
    code, _, err = await sora_bot(tmp_path, cfg, "generate", "a", "fox", "--size", "640x480")
    assert code == 2 and "--size is one of" in err
    assert official.requests == [] and reverse.requests == []


async def test_generate_exits_1_when_the_provider_refuses(
        tmp_path: Path, relays: tuple[SimRelay, SimRelay]) -> None:
    official, reverse = relays
    official.set("sora-2", Behaviour.MODERATION)
    cfg = write_config(tmp_path, official, reverse)
    code, out, _ = await sora_bot(tmp_path, cfg, "generate", "something", "refused")
    assert code == 1
    assert "refused by Sora 2 · official (moderation)" in out
    assert official.billable_calls == 1 and reverse.requests == []


async def test_command_generate_waits_for_its_video_instead_of_abandoning_it(
        tmp_path: Path, relays: tuple[SimRelay, SimRelay]) -> None:
    official, reverse = relays
    cfg = write_config(tmp_path, official, reverse)
    code, text, _ = await sora_bot(tmp_path, cfg, "command", "generate", "a fox")
    assert code == 0
    assert "Test generation #1 started" in text
    assert "🎬 Test generation done on Sora 2 · official" in text
    assert "📎 sora-bot-job-1.mp4" in text
    assert official.billable_calls == 1
