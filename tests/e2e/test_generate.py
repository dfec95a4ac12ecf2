"""``/sora generate`` end to end: the real ``AsyncOpenAI`` against loopback relays, a real SQLite
store, the bot's own runtime (router, generator, outbox) and a recording chat.

Time is a fake clock that the generator's poll sleeps advance, so the ~10 s edit pacing and
poll backoff are checked without waiting."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime, open_runtime
from bot.commands import Incoming
from bot.config import Settings, load_settings
from bot.messages import Message
from bot.models import Health, State
from bot.sim.gemini import SimGemini
from bot.sim.relay import FAKE_MP4, Behaviour, SimRelay
from bot.store import Job, Store
from tests.fakes.chat import FakeChat, FakeClock

OFF_KEY = "sk-official-0123456789abcdef"
REV_KEY = "sk-reverse-0123456789abcdef"
CHANNEL = "C-gen"
OFFICIAL, REVERSE, SUCCESSOR = "sora-2-relay", "sora-2-reverse", "seedance-relay"


GENERATE = {"allow_channels": [CHANNEL], "poll_min_seconds": 1, "poll_max_seconds": 30,
            "edit_every_seconds": 10, "submit_timeout": 1, "user_daily_quota": 0}


def config(official: SimRelay, reverse: SimRelay, *, generate: dict[str, Any] | None = None,
           retired: bool = False, successor: bool = False) -> str:
    shutdown = 'shutdown_date = "2026-09-24"\n' if retired else ""
    section = "".join(f"{k} = {json.dumps(v)}\n" for k, v in {**GENERATE, **(generate or {})}
                      .items())
    text = (
        "[bot]\nbuiltin_catalog = false\n\n"
        f"[generate]\n{section}\n"
        f'[[service]]\nid = "{OFFICIAL}"\nname = "Sora 2 · official relay"\n'
        f'kind = "openai_compat"\nmodel = "sora-2"\naccess = "official"\n'
        f'base_url = "{official.url}"\napi_key_env = "OFF_KEY"\nprice_per_second = 0.10\n'
        f"{shutdown}\n"
        f'[[service]]\nid = "{REVERSE}"\nname = "Sora 2 · reverse relay"\n'
        f'kind = "openai_compat"\nmodel = "sora-2"\naccess = "reverse"\n'
        f'base_url = "{reverse.url}"\napi_key_env = "REV_KEY"\nprice_per_request = 0.08\n\n')
    if successor:
        text += (f'[[service]]\nid = "{SUCCESSOR}"\nname = "Seedance 1.0 Pro · official relay"\n'
                 f'kind = "openai_compat"\nmodel = "seedance-1.0-pro"\naccess = "official"\n'
                 f'successor_of = ["sora-2"]\nvideo_seconds = [5, 10]\n'
                 f'base_url = "{official.url}"\napi_key_env = "OFF_KEY"\n'
                 f"price_per_second = 0.05\n\n")
    return text


@dataclass
class Rig:
    tmp: Path
    official: SimRelay
    reverse: SimRelay
    clock: FakeClock = field(default_factory=FakeClock)
    chat: FakeChat = field(default_factory=lambda: FakeChat("slack"))
    settings: Settings | None = None

    def configure(self, **kw: Any) -> Settings:
        cfg = self.tmp / "bot.toml"
        cfg.write_text(config(self.official, self.reverse, **kw), encoding="utf-8")
        self.settings = load_settings(cfg, {"SORA_BOT_DB": str(self.tmp / "bot.db"),
                                            "OFF_KEY": OFF_KEY, "REV_KEY": REV_KEY})
        return self.settings

    async def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await asyncio.sleep(0.002)

    @contextlib.asynccontextmanager
    async def runtime(self) -> AsyncIterator[Runtime]:
        settings = self.settings or self.configure()
        async with open_runtime(settings, chats=[self.chat], clock=self.clock,
                                sleep=self.sleep) as rt:
            yield rt

    @staticmethod
    async def ask(rt: Runtime, text: str, *, user: str = "U-alice", channel: str = CHANNEL,
                  admin: bool = False) -> Message:
        async def is_admin() -> bool:
            return admin
        return await rt.commands.handle(Incoming("slack", "T1", channel, user, text,
                                                 is_admin=is_admin))

    @staticmethod
    async def finish(rt: Runtime) -> list[Job]:
        jobs = rt.store.jobs()
        return [await rt.generator.wait(j.id) for j in jobs]

    @property
    def creates(self) -> int:
        return self.official.billable_calls + self.reverse.billable_calls

    def results(self) -> list[Message]:
        return [m for _, m in self.chat.sent if m.attachments or "done on" in m.title]

    def progress(self) -> list[Message]:
        """The progress message as posted, then each edit in order."""
        first = [p.message for p in self.chat.posts if "Test generation" in p.message.title
                 and not p.message.attachments and "done on" not in p.message.title]
        return first[:1] + [m for _, m in self.chat.edits]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    official, reverse = SimRelay(models=("sora-2", "seedance-1.0-pro"), api_key=OFF_KEY,
                                 polls_to_complete=3), SimRelay(api_key=REV_KEY)
    await official.start()
    await reverse.start()
    try:
        yield Rig(tmp_path, official, reverse)
    finally:
        await official.stop()
        await reverse.stop()


# --- the happy path ----------------------------------------------------------------------------

async def test_a_generation_is_queued_edited_in_place_and_posted_once(rig: Rig) -> None:
    rig.configure(generate={"poll_min_seconds": 5})  # polls at 5, 10, 15 s; edits ≥ 10 s apart
    async with rig.runtime() as rt:
        reply = await rig.ask(rt, "generate a red fox running through snow --seconds 8 "
                                  "--size 1280x720")
        assert reply.ephemeral and "started" in reply.title, reply.plain()
        assert "$0.80" in reply.text  # held from the budget up front
        [job] = await rig.finish(rt)

    assert job.status == "completed" and job.service == OFFICIAL
    assert (job.estimate, job.cost) == (0.80, 0.80)
    assert rig.official.billable_calls == 1 and rig.reverse.requests == []
    # One progress message, edited in place: queued with the estimate → in progress → done.
    progress = [m.title for m in rig.progress()]
    assert progress[0] == "⏳ Test generation routing…"
    assert "⏳ Test generation queued on Sora 2 · official relay (est. $0.80)" in progress
    assert "🎞️ Test generation in progress 66 % on Sora 2 · official relay (est. $0.80)" \
        in progress, progress
    assert progress[-1] == "✅ Test generation done on Sora 2 · official relay"
    assert {ref for ref, _ in rig.chat.edits} == {rig.chat.posts[0].ref}
    # The video arrives in the channel once, saying which route served it.
    [result] = rig.results()
    assert result.attachments[0].content == FAKE_MP4
    assert result.attachments[0].mime == "video/mp4"
    assert "served by Sora 2 · official relay" in result.context and "$0.80" in result.context
    assert rig.chat.posts[-1].key == f"gen:{job.id}:result@slack"


async def test_progress_edits_come_at_most_every_ten_seconds(rig: Rig) -> None:
    rig.official.polls_to_complete = 40  # a long job: progress changes on every poll
    rig.configure(generate={"poll_min_seconds": 2, "poll_max_seconds": 2})
    stamps: list[float] = []
    edit = rig.chat.edit

    async def timed_edit(ref: Any, message: Message) -> None:
        stamps.append(rig.clock().timestamp())
        await edit(ref, message)

    rig.chat.edit = timed_edit  # type: ignore[method-assign]
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate slow clouds")
        [job] = await rig.finish(rt)
    assert job.status == "completed"
    # 40 polls 2 s apart change the progress every time; the message changes every ~10 s.
    assert 6 <= len(stamps) <= 12, stamps
    between = stamps[1:-1]  # the first (accepted) and last (done) edits are never held back
    assert all(b - a >= 10 for a, b in itertools.pairwise(between)), stamps


# --- fallback that never double-bills ---------------------------------------------------------

async def test_official_503_falls_back_to_the_reverse_relay_and_says_so(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.UNAVAILABLE)
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a red fox --seconds 8")
        [job] = await rig.finish(rt)
        metrics = rt.metrics.render().decode()
        cooling = dict(rt.generator._router.cooldown_until)
        passive = [p for p in rt.store.probes(OFFICIAL) if p.passive]

    assert job.status == "completed" and job.service == REVERSE
    assert job.cost == 0.08  # the reverse relay bills per request
    assert [a["result"] for a in job.attempts] == ["retryable", "accepted"]
    assert rig.official.billable_calls == 1 and rig.reverse.billable_calls == 1
    [result] = rig.results()
    assert "served by Sora 2 · reverse relay" in result.context
    assert "skipped Sora 2 · official relay: 503" in result.context
    done = rig.progress()[-1]
    assert any(f.name == "Fell back from" and "503" in f.value for f in done.fields)
    # The failed route rests, and its failure fed the state machine as a passive probe.
    assert OFFICIAL in cooling
    assert [p.outcome.value for p in passive] == ["unavailable"]
    assert 'sora_generations_total{service="sora-2-reverse",status="completed"} 1.0' in metrics
    assert "sora_generation_spend_usd_total 0.08" in metrics


async def test_a_service_id_as_model_puts_that_route_first(rig: Rig) -> None:
    async with rig.runtime() as rt:
        await rig.ask(rt, f"generate a fox --model {REVERSE}")
        [job] = await rig.finish(rt)
    assert job.service == REVERSE and job.model == "sora-2"
    assert rig.official.requests == []


async def test_a_failed_route_is_skipped_while_it_cools_down(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.RATE_LIMITED)
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate one")
        await rig.finish(rt)
        rig.official.set("sora-2", Behaviour.OK)
        await rig.ask(rt, "generate two")
        jobs = await rig.finish(rt)
    assert [j.service for j in jobs] == [REVERSE, REVERSE]
    assert rig.official.billable_calls == 1  # the second job did not knock on the resting route
    assert "cooling down" in rig.progress()[-1].context


async def test_moderation_is_surfaced_and_never_retried_elsewhere(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.MODERATION)
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate something the safety system refuses")
        [job] = await rig.finish(rt)
        spent = rt.store.spent_today("slack", "T1", rig.clock())
    assert job.status == "refused" and job.cost == 0.0 and spent == 0.0
    assert rig.creates == 1 and rig.reverse.requests == []
    done = rig.progress()[-1]
    assert done.title == "🚫 Test generation refused by Sora 2 · official relay (moderation)"
    assert "moderation_blocked" in done.text and "not retried on another route" in done.text
    assert rig.results() == []


async def test_a_timeout_after_the_post_is_uncertain_and_nothing_is_resubmitted(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.HANG)
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a slow relay", admin=False)
        [job] = await rig.finish(rt)
    assert job.status == "uncertain"
    assert rig.official.billable_calls == 1 and rig.reverse.requests == []  # no second create
    assert job.cost == 0.40  # it may have been billed: the budget keeps it
    done = rig.progress()[-1]
    assert done.title.startswith("⚠️ Test generation may have been accepted by Sora 2")
    assert "was not sent anywhere else" in done.text


async def test_all_routes_failing_releases_the_money_and_lists_each_failure(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.UNAVAILABLE)
    rig.reverse.set("sora-2", Behaviour.RISK_CONTROL)
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate nothing works")
        [job] = await rig.finish(rt)
        spent = rt.store.spent_today("slack", "T1", rig.clock())
    assert job.status == "unrouted" and job.cost == 0.0 and spent == 0.0
    assert rig.creates == 2
    done = rig.progress()[-1]
    assert "Sora 2 · official relay: 503" in done.text
    assert "Sora 2 · reverse relay: 403 risk_control" in done.text
    assert "Nothing was charged" in done.text


async def test_all_routes_down_is_answered_at_once_with_why_and_sends_nothing(rig: Rig) -> None:
    with Store(rig.tmp / "bot.db") as store:
        for sid, state, reason in ((OFFICIAL, State.SUSPENDED, "503 for 10 minutes"),
                                   (REVERSE, State.RISK_CONTROL, "captcha required")):
            store.save_health(Health(service=sid, state=state, since=rig.clock(),
                                     reason=reason))
    async with rig.runtime() as rt:
        reply = await rig.ask(rt, "generate anything --seconds 8")
        assert rt.store.jobs() == []
    assert reply.ephemeral and reply.title == "🔴 No route can generate sora-2 right now"
    assert reply.table is not None
    assert set(reply.table.rows) == {("Sora 2 · official relay", "suspended"),
                                     ("Sora 2 · reverse relay", "in risk control")}
    assert rig.official.requests == [] and rig.reverse.requests == []
    assert rig.chat.posts == []


async def test_a_retired_model_is_routed_to_its_successor(rig: Rig) -> None:
    rig.configure(retired=True, successor=True)
    rig.reverse.set("sora-2", Behaviour.NOT_FOUND)  # the reverse relay lost sora-2 too
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a lighthouse at dusk --seconds 8")
        [job] = await rig.finish(rt)
    assert job.status == "completed" and job.service == SUCCESSOR
    assert rig.reverse.billable_calls == 1  # 404 model_not_found: not accepted, so fall back
    creates = [r for r in rig.official.requests if r == ("POST", "/v1/videos")]
    assert len(creates) == 1  # only the successor; the retired official route was never tried
    assert "sora-2 retired → routed to Seedance 1.0 Pro · official relay" in job.notes
    assert "makes 5/10 s: 8 s → 5 s" in " ".join(job.notes)
    assert job.cost == 0.25  # 5 s at $0.05
    [result] = rig.results()
    assert "sora-2 retired → routed to Seedance" in result.context
    first = rig.progress()[0]
    assert "Sora 2 · official relay retired (shut down 2026-09-24)" in first.context


# --- money and permission ---------------------------------------------------------------------

async def test_fifty_concurrent_requests_against_a_budget_for_ten(rig: Rig) -> None:
    rig.configure(generate={"daily_budget_usd": 8.0})  # 8 s on the official relay: $0.80 each
    async with rig.runtime() as rt:
        replies = await asyncio.gather(*(
            rig.ask(rt, f"generate fox number {i} --seconds 8", user=f"U{i}")
            for i in range(50)))
        jobs = await rig.finish(rt)
        spent = rt.store.spent_today("slack", "T1", rig.clock())
    started = [r for r in replies if "started" in r.title]
    refused = [r for r in replies if r.title == "🚫 Today's generation budget is used up"]
    assert len(started) == 10 and len(refused) == 40
    assert all("$0.00 of $8.00 left today" in r.text for r in refused)
    assert rig.official.billable_calls == 10 and rig.reverse.requests == []
    assert len(jobs) == 10 and {j.status for j in jobs} == {"completed"}
    assert spent == pytest.approx(8.0)


async def test_an_unauthorised_user_sends_nothing_upstream(rig: Rig) -> None:
    async with rig.runtime() as rt:
        reply = await rig.ask(rt, "generate a fox", channel="C-elsewhere", admin=False)
        admin = await rig.ask(rt, "generate a fox", channel="C-elsewhere", admin=True)
        await rig.finish(rt)
    assert reply.ephemeral and reply.title.startswith("🚫 You are not allowed")
    assert "started" in admin.title  # admins may generate anywhere
    assert rig.official.billable_calls == 1


async def test_an_over_quota_user_sends_nothing_upstream(rig: Rig) -> None:
    rig.configure(generate={"user_daily_quota": 2})
    async with rig.runtime() as rt:
        for _ in range(2):
            assert "started" in (await rig.ask(rt, "generate a fox")).title
        await rig.finish(rt)
        before = list(rig.official.requests)
        third = await rig.ask(rt, "generate a fox")
        other = await rig.ask(rt, "generate a fox", user="U-bob")
        await rig.finish(rt)
    assert third.title == "🚫 You have used your 2 test generations for today"
    assert "started" in other.title  # the quota is per user
    assert rig.official.billable_calls == 3
    assert len(rig.official.requests) > len(before)


@pytest.mark.parametrize(("text", "error"), [
    ("generate", "say what to generate"),
    ("generate '  \t '", "say what to generate"),
    ("generate a fox --seconds 7", "--seconds is one of 4, 8, 12"),
    ("generate a fox --seconds ten", "--seconds is one of"),
    ("generate a fox --size 640x480", "--size is one of 1280x720"),
    ("generate a fox --model dall-e", "'dall-e' is not a video model here"),
    ("generate a fox --prefer cheapest", "--prefer is `official` or `reverse`"),
    ("generate " + "x" * 1001, "the prompt is too long (1001 characters, at most 1000)"),
    ("generate a fox --colour red", "is not an option of generate"),
])
async def test_bad_input_is_a_usage_error_with_zero_upstream_calls(rig: Rig, text: str,
                                                                   error: str) -> None:
    async with rig.runtime() as rt:
        reply = await rig.ask(rt, text)
        assert rt.store.jobs() == []
    assert reply.ephemeral and error in reply.title, reply.plain()
    assert "Usage: `/sora generate PROMPT" in reply.text
    assert rig.official.requests == [] and rig.reverse.requests == []


async def test_control_characters_are_stripped_and_mentions_defused(rig: Rig) -> None:
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate '<!channel> @everyone a\x00 fox\x1b[31m in\u200b snow'")
        [job] = await rig.finish(rt)
    assert job.preview == "<\u200b!channel> @\u200beveryone a fox[31m in snow"
    shown = "\n".join(m.plain() for m in [*rig.progress(), *rig.results()])
    assert "<!channel>" not in shown and "@everyone" not in shown
    assert "\x00" not in shown and "\x1b" not in shown


# --- restarts and secrets ---------------------------------------------------------------------

async def test_a_restart_mid_job_resumes_polling_and_posts_the_result_once(rig: Rig) -> None:
    rig.official.polls_to_complete = 6
    polled = asyncio.Event()
    sleep = rig.sleep

    async def sleep_until_stopped(seconds: float) -> None:
        await sleep(seconds)
        if sum(1 for r in rig.official.requests if r[0] == "GET") >= 2:
            polled.set()

    rig.sleep = sleep_until_stopped  # type: ignore[method-assign]
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a long one")
        await asyncio.wait_for(polled.wait(), 10)
    # The bot stopped mid-job: the job is still open in the database.
    with Store(rig.tmp / "bot.db") as store:
        [open_job] = store.active_jobs()
    assert open_job.status == "in_progress" and open_job.upstream_id

    rig.sleep = sleep  # type: ignore[method-assign]
    async with rig.runtime() as rt:
        assert rt.generator.resume() == 1
        [job] = await rig.finish(rt)
        assert rt.generator.resume() == 0  # nothing left to resume
    assert job.status == "completed" and job.id == open_job.id
    assert rig.official.billable_calls == 1  # resumed, never resubmitted
    assert len(rig.results()) == 1
    assert [p.key for p in rig.chat.posts].count(f"gen:{job.id}:result@slack") == 1


async def test_a_job_caught_mid_submit_by_a_restart_is_uncertain_not_resent(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.HANG)
    rig.configure(generate={"submit_timeout": 30})
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate interrupted")
        for _ in range(200):
            if rig.official.billable_calls:
                break
            await asyncio.sleep(0.01)
    rig.official.set("sora-2", Behaviour.OK)
    async with rig.runtime() as rt:
        rt.generator.resume()
        [job] = await rig.finish(rt)
    assert job.status == "uncertain" and "restarted while sending it" in (job.error or "")
    assert rig.creates == 1


async def test_secrets_and_prompts_never_reach_the_log_and_secrets_nowhere(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig.official.set("sora-2", Behaviour.UNAUTHORIZED)  # echoes the key it was sent
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a secretive purple walrus")
        [job] = await rig.finish(rt)
    assert job.status == "completed"  # through the reverse relay
    assert "walrus" not in caplog.text  # the prompt is not logged (its hash is)
    assert job.prompt_hash[:12] in caplog.text
    dump = "\n".join(sqlite3.connect(rig.tmp / "bot.db").iterdump())
    shown = "\n".join(m.plain() for m in [*rig.progress(), *rig.results()])
    for key in (OFF_KEY, REV_KEY):
        assert key not in dump and key not in shown and key not in caplog.text
    assert "401" in shown  # the failure is still explained


# --- Veo through google-genai ------------------------------------------------------------------

async def test_a_veo_generation_maps_the_duration_and_says_so(tmp_path: Path) -> None:
    gemini_key = "AIzaSyGenerateLoopback0123456789abcdefg"
    async with SimGemini(api_key=gemini_key, polls_to_complete=2) as gemini:
        cfg = tmp_path / "bot.toml"
        cfg.write_text(
            "[bot]\nbuiltin_catalog = false\n\n[generate]\nallow_channels = [\"C-gen\"]\n"
            "poll_min_seconds = 1\ndefault_model = \"veo-3.1-generate-preview\"\n\n"
            '[[service]]\nid = "veo-3.1"\nname = "Veo 3.1 · Gemini API"\nkind = "gemini"\n'
            f'model = "veo-3.1-generate-preview"\nbase_url = "{gemini.url}"\n'
            'api_key_env = "GEMINI_API_KEY"\nprice_per_second = 0.40\n'
            "video_seconds = [4, 6, 8]\n", encoding="utf-8")
        settings = load_settings(cfg, {"SORA_BOT_DB": str(tmp_path / "bot.db"),
                                       "GEMINI_API_KEY": gemini_key})
        rig = Rig(tmp_path, None, None, settings=settings)  # type: ignore[arg-type]
        async with rig.runtime() as rt:
            reply = await rig.ask(rt, "generate a paper boat on a rainy street --seconds 12")
            assert "$3.20" in reply.text  # reserved for what Veo makes: 8 s × $0.40
            [job] = await rig.finish(rt)
        assert job.status == "completed" and job.service == "veo-3.1"
        assert job.cost == pytest.approx(3.20)  # Veo made 8 s
        assert "Veo 3.1 makes at most 8 s: 12 s → 8 s" in job.notes
        assert gemini.billable_calls == 1
        [result] = rig.results()
        assert result.attachments[0].content == gemini.video
        assert "12 s → 8 s" in result.context


async def test_a_progress_message_the_platform_refused_does_not_stop_the_job(rig: Rig) -> None:
    async with rig.runtime() as rt:
        rig.chat.refuse = True
        reply = await rig.ask(rt, "generate a fox")
        rig.chat.refuse = False
        [job] = await rig.finish(rt)
    assert "could not be posted here" in reply.text and "the video still comes" in reply.text
    assert job.status == "completed" and job.progress_ref is None
    assert rig.chat.edits == []
    [result] = rig.results()
    assert result.attachments[0].content == FAKE_MP4
    assert f"upstream job {job.upstream_id}" in result.context


# --- what can happen after a job was accepted ---------------------------------------------------

async def test_an_upstream_job_that_fails_is_reported_and_costs_nothing(rig: Rig) -> None:
    rig.official.set("sora-2", Behaviour.JOB_FAILED)
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a fox")
        [job] = await rig.finish(rt)
    assert job.status == "failed" and job.cost == 0.0
    assert rig.creates == 1  # accepted once: never resubmitted
    done = rig.progress()[-1]
    assert done.title == "❌ Test generation failed on Sora 2 · official relay"
    assert "reported the job failed: generation_failed" in done.text
    assert rig.results() == []


async def test_a_refused_connection_is_a_safe_fallback(rig: Rig) -> None:
    rig.configure()  # the official relay's URL is in the config …
    await rig.official.stop()  # nothing listens there any more: connection refused
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a fox")
        [job] = await rig.finish(rt)
    assert job.status == "completed" and job.service == REVERSE
    assert job.attempts[0]["result"] == "retryable"
    assert "could not connect" in job.attempts[0]["reason"]


async def test_failed_polls_back_off_and_the_job_still_finishes(rig: Rig) -> None:
    rig.official.polls_to_complete = 2
    waits: list[float] = []
    sleep = rig.sleep

    async def flaky_after_accept(seconds: float) -> None:
        waits.append(seconds)
        # The first three polls meet a 503; then the relay answers again.
        rig.official.set("sora-2", Behaviour.UNAVAILABLE if len(waits) <= 3 else Behaviour.OK)
        await sleep(seconds)

    rig.sleep = flaky_after_accept  # type: ignore[method-assign]
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a patient fox")
        [job] = await rig.finish(rt)
    assert job.status == "completed" and rig.creates == 1
    assert waits[:4] == [1, 2, 4, 8]  # backoff while the relay cannot answer
    assert len(rig.results()) == 1


async def test_polls_that_never_succeed_give_up_and_keep_the_money_held(rig: Rig) -> None:
    sleep = rig.sleep

    async def broken_after_accept(seconds: float) -> None:
        rig.official.set("sora-2", Behaviour.UNAVAILABLE)
        await sleep(seconds)

    rig.sleep = broken_after_accept  # type: ignore[method-assign]
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate an unlucky fox")
        [job] = await rig.finish(rt)
    assert job.status == "expired" and job.cost == 0.40  # it may still be billed upstream
    assert "could not ask Sora 2 · official relay for the result" in (job.error or "")
    assert rig.creates == 1


async def test_a_video_over_the_cap_is_not_downloaded_and_the_post_says_where_it_is(
        rig: Rig) -> None:
    rig.configure(generate={"max_video_mb": 0.00001})  # ~10 bytes
    async with rig.runtime() as rt:
        await rig.ask(rt, "generate a big fox")
        [job] = await rig.finish(rt)
    assert job.status == "completed"
    [result] = rig.results()
    assert result.attachments == ()
    assert "larger than the bot's 1e-05 MB cap" in result.text
    assert f"job {job.upstream_id}" in result.text
