"""``/sora generate`` in Slack, end to end: a signed slash command to the bot's own server, the
real ``AsyncWebClient`` posting, editing and uploading to the fake Slack, the real
``AsyncOpenAI`` creating and polling the job on the loopback relay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from bot.sim.relay import FAKE_MP4
from tests.e2e.test_slack import CHANNEL, OFFICIAL, PLAIN, shown, slack_bot
from tests.fakes.slack_api import Posted, Updated

MAKER = "UMAKER"
GENERATE = {"allow_users": [MAKER], "allow_channels": [CHANNEL], "poll_min_seconds": 0.05,
            "poll_max_seconds": 0.2, "edit_every_seconds": 0, "user_daily_quota": 0}
ROUTE = "Sora 2 · official relay"


def title(message: Posted | Updated) -> str:
    """The header block's text (the blocks sit in the severity-coloured attachment)."""
    found = message.blocks or message.attachments[0]["blocks"]
    header = found[0]
    assert header["type"] == "header"
    return str(header["text"]["text"])


async def test_a_generation_is_answered_privately_edited_in_place_and_uploaded(
        tmp_path: Path) -> None:
    async with slack_bot(tmp_path, generate=GENERATE) as bot:
        bot.slack.users[MAKER] = {}  # not a workspace admin: listed in allow_users

        # Not listed and not an admin: refused privately, nothing sent upstream or posted.
        refused = await bot.ask("generate a red fox running through snow", user=PLAIN)
        assert refused["response_type"] == "ephemeral"
        assert "not allowed to run test generations" in shown(refused)
        assert bot.relay.billable_calls == 0 and bot.rt.store.jobs() == []
        assert bot.in_channel() == [] and bot.slack.updates == []

        started = await bot.ask("generate <!channel> a red fox running through snow <@U999> "
                                "<!here> --seconds 8", user=MAKER)
        assert started["response_type"] == "ephemeral"  # the requester's alone
        assert "Test generation #1 started" in shown(started) and "$0.80" in shown(started)
        [job] = bot.rt.store.jobs()
        job = await asyncio.wait_for(bot.rt.generator.wait(job.id), 5)
        assert (job.status, job.service, job.user, job.channel) == (
            "completed", OFFICIAL, MAKER, CHANNEL)
        assert bot.relay.billable_calls == 1

        # One public progress message, edited in place (same ts) until it says done...
        progress, result = bot.in_channel()
        assert title(progress) == "⏳ Test generation routing…"
        assert progress.thread_ts is None
        updates = bot.slack.updates
        assert updates and {(u.channel, u.ts) for u in updates} == {(CHANNEL, progress.ts)}
        titles = [title(u) for u in updates]
        assert f"⏳ Test generation queued on {ROUTE} (est. $0.80)" in titles
        assert f"🎞️ Test generation in progress 50 % on {ROUTE} (est. $0.80)" in titles
        assert titles[-1] == f"✅ Test generation done on {ROUTE}"
        assert f"requested by <@{MAKER}>" in shown(updates[-1].attachments)

        # ...and the result is a separate post with the video uploaded into the channel.
        assert title(result) == f"🎬 Test generation done on {ROUTE}"
        [upload] = bot.slack.uploads
        assert (upload.channel, upload.thread_ts) == (CHANNEL, None)
        assert upload.filename == f"sora-bot-job-{job.id}.mp4" and upload.content == FAKE_MP4
        used = {c.method for c in bot.slack.calls}
        assert {"chat.postMessage", "chat.update", "files.getUploadURLExternal",
                "files.completeUploadExternal"} <= used

        # What the user typed was echoed (escaped), never as a mention.
        seen: list[Any] = [refused, started, upload.title, upload.alt_txt]
        seen += [[m.text, m.blocks, m.attachments] for m in bot.slack.messages]
        seen += [[u.text, u.blocks, u.attachments] for u in updates]
        dumped = json.dumps(seen, ensure_ascii=False)
        assert "<!" not in dumped and "<@U999>" not in dumped
        assert "&lt;\u200b!channel&gt; a red fox" in dumped  # shown as typed
