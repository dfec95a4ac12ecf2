"""``/sora generate`` in Discord, end to end: the interaction pushed over the real gateway into
the real ``CommandTree``, the progress message posted and edited and the video attached through
discord.py's REST client on the fake Discord, the job created and polled on the loopback relay
by the real ``AsyncOpenAI``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.sim.relay import FAKE_MP4
from tests.e2e.test_discord import MEMBER, NO_MENTIONS, discord_bot, shown
from tests.e2e.test_slack import OFFICIAL
from tests.fakes.discord_api import CHANNEL_ID, EPHEMERAL, USER_ID

MAKERS = "1210000000000000050"  # the role allowed to generate
OTHER_ROLE = "1210000000000000051"
OTHER_CHANNEL = "1210000000000000021"
GENERATE = {"allow_roles": [MAKERS], "allow_channels": [CHANNEL_ID], "poll_min_seconds": 0.05,
            "poll_max_seconds": 0.2, "edit_every_seconds": 0, "user_daily_quota": 0}
ROUTE = "Sora 2 · official relay"


# An image model: probed and shown in status, but nothing generate can ask for.
IMAGES = ('[[service]]\nid = "sora-images"\nname = "Sora Images"\nkind = "openai_compat"\n'
          'model = "sora-image"\nmedia = "image"\nbase_url = "http://127.0.0.1:9/v1"\n\n')


async def test_a_generation_is_answered_privately_edited_in_place_and_attached(
        tmp_path: Path) -> None:
    # defer_after=0: every answer is deferred first, as a slow start (a busy channel) would be.
    async with discord_bot(tmp_path, generate=GENERATE, defer_after=0) as bot:
        # A member without the role, and one with it in a channel not allowed: refused
        # privately, nothing sent upstream, nothing posted.
        no_role = await bot.ask("generate", {"prompt": "a red fox"}, permissions=MEMBER,
                                roles=[OTHER_ROLE])
        elsewhere = await bot.ask("generate", {"prompt": "a red fox"}, permissions=MEMBER,
                                  roles=[MAKERS], channel_id=OTHER_CHANNEL)
        for refused in (no_role, elsewhere):
            assert refused.ephemeral and "not allowed to run test generations" in refused.text
        assert bot.relay.billable_calls == 0 and bot.rt.store.jobs() == []
        assert bot.fake.messages == []

        started = await bot.ask("generate", {
            "prompt": "@everyone a red fox <@&1234> running through snow @here <@99>",
            "seconds": 8}, permissions=MEMBER, roles=[OTHER_ROLE, MAKERS])
        assert started.ephemeral and "Test generation #1 started" in started.text
        assert "$0.80" in started.text
        # Its start was deferred (it posts in the channel first), privately: no public
        # "thinking…" appeared and had to be deleted. Every answer was private.
        assert len(bot.fake.callbacks) == 3 and bot.fake.callbacks[-1].type == 5
        assert all(c.data and c.data["flags"] & EPHEMERAL for c in bot.fake.callbacks)
        assert bot.fake.deleted == []

        [job] = bot.rt.store.jobs()
        job = await asyncio.wait_for(bot.rt.generator.wait(job.id), 5)
        assert (job.status, job.service, job.user, job.channel) == (
            "completed", OFFICIAL, USER_ID, CHANNEL_ID)
        assert bot.relay.billable_calls == 1

        # One public progress message, edited in place (same id) until it says done...
        progress, result = bot.in_channel()
        assert progress.content == "**⏳ Test generation routing…**"
        assert not progress.flags & EPHEMERAL
        edits = [e for e in bot.fake.edits if e.interaction_token is None]
        assert edits and {(e.channel_id, e.id) for e in edits} == {(CHANNEL_ID, progress.id)}
        titles = [e.content for e in edits]
        assert f"**⏳ Test generation queued on {ROUTE} (est. $0.80)**" in titles
        assert f"**🎞️ Test generation in progress 50 % on {ROUTE} (est. $0.80)**" in titles
        assert titles[-1] == f"**✅ Test generation done on {ROUTE}**"
        final = bot.fake.message(CHANNEL_ID, progress.id)
        assert final is not None and final.content == titles[-1] and final.edited_timestamp
        assert f"requested by <@{USER_ID}>" in shown([final])

        # ...and the result is its own post with the MP4 attached (sent once: with a nonce).
        assert result.content == f"**🎬 Test generation done on {ROUTE}**"
        [(filename, _, data)] = result.files
        assert filename == f"sora-bot-job-{job.id}.mp4" and data == FAKE_MP4
        assert result.nonce is not None
        posted = bot.fake.message(CHANNEL_ID, result.id)
        assert posted is not None and [a.content_type for a in posted.attachments] == [
            "video/mp4"]

        # Nothing a user typed pings anyone: defused by the core, mentions off on every call.
        assert all(m.allowed_mentions == NO_MENTIONS for m in bot.fake.messages)
        assert all(e.allowed_mentions == NO_MENTIONS for e in bot.fake.edits)
        seen: list[Any] = [shown(started.messages), shown(bot.fake.messages), final.embeds,
                           [e.embeds for e in edits]]
        dumped = json.dumps(seen, ensure_ascii=False)
        for typed in ("@everyone", "@here", "<@&1234>", "<@99>"):
            assert typed not in dumped
        assert "@\u200beveryone a red fox" in dumped  # shown as typed


async def test_model_autocomplete_offers_what_generate_can_route(tmp_path: Path) -> None:
    async with discord_bot(tmp_path, generate=GENERATE, extra=IMAGES) as bot:
        payload = bot.fake.autocomplete_payload("generate", {"prompt": "x", "model": ""},
                                                "model")
        await bot.fake.push("INTERACTION_CREATE", payload)
        await bot.fake.wait_for(lambda: bot.fake.callbacks, within=5)
        [callback] = bot.fake.callbacks
        assert callback.type == 8 and callback.data is not None
        offered = [c["value"] for c in callback.data["choices"]]
        assert offered == bot.rt.generator.models == ["sora-2-pro", "sora-2"]
        assert "sora-image" not in offered  # an image model: generate cannot ask for it
