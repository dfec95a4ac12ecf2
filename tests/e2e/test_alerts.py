"""Alerts people trust: the real monitor, store, alert fan-out and outbox, with scripted probe
results, a hand-driven clock and a recording chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bot.config import ServiceConfig, Settings, load_settings
from bot.models import Observation, State
from bot.monitor import Monitor
from bot.outbox import Outbox
from bot.redact import Redactor
from bot.store import Store
from bot.subscriptions import ALL
from tests.fakes.chat import FakeChat, FakeClock

OK = Observation(latency_ms=40.0, http_status=200, detail="model listed")
DOWN = Observation(latency_ms=40.0, http_status=503, error_message="upstream unavailable")
IDS = ("sora-a", "sora-b", "sora-c", "veo-a", "veo-b")


@dataclass
class Script:
    """What each service answers; ``plan[id]`` is consumed one result per probe."""

    default: Observation = OK
    now: dict[str, Observation] = field(default_factory=dict)
    plan: dict[str, list[Observation]] = field(default_factory=dict)

    async def __call__(self, svc: ServiceConfig, *, client: Any, now: datetime) -> Observation:
        queued = self.plan.get(svc.id)
        if queued:
            return queued.pop(0)
        return self.now.get(svc.id, self.default)

    def set(self, obs: Observation, *ids: str) -> None:
        for i in ids:
            self.now[i] = obs


def settings_for(tmp_path: Path, *, thresholds: int = 2, extra: str = "") -> Settings:
    blocks = [f'[[service]]\nid = "{i}"\nname = "{i.upper()}"\nkind = "openai_compat"\n'
              f'model = "m"\nbase_url = "http://127.0.0.1:9/v1"\ninterval = 60\n'
              f"failure_threshold = {thresholds}\nsuccess_threshold = {thresholds}\n"
              for i in IDS]
    cfg = tmp_path / "bot.toml"
    cfg.write_text("[bot]\nbuiltin_catalog = false\n" + extra + "\n" + "\n".join(blocks),
                   encoding="utf-8")
    return load_settings(cfg, {"SORA_BOT_DB": str(tmp_path / "bot.db")})


@dataclass
class Rig:
    monitor: Monitor
    store: Store
    chat: FakeChat
    clock: FakeClock
    script: Script

    async def cycles(self, n: int = 1, every: float = 60.0) -> None:
        for _ in range(n):
            await self.monitor.run_cycle()
            self.clock.advance(every)

    def subscribe(self, channel: str, services: tuple[str, ...] = (ALL,),
                  min_state: State = State.DEGRADED) -> None:
        self.store.subscribe("fake", "T1", channel, services=services, min_state=min_state,
                             by="U1", now=self.clock())


@asynccontextmanager
async def rig(tmp_path: Path, *, thresholds: int = 2, remind: timedelta | None = None,
              channels: tuple[str, ...] = ("#ops",)) -> AsyncIterator[Rig]:
    settings = settings_for(tmp_path, thresholds=thresholds)
    clock = FakeClock()
    store = Store(settings.db_path)
    chat = FakeChat()
    script = Script()
    async with httpx2.AsyncClient() as client:
        outbox = Outbox(store=store, chats={"fake": chat}, clock=clock)
        monitor = Monitor(settings=settings, store=store, client=client, outbox=outbox,
                          clock=clock, redactor=Redactor(), probe=script, remind_every=remind)
        r = Rig(monitor, store, chat, clock, script)
        for ch in channels:
            r.subscribe(ch)
        try:
            yield r
        finally:
            store.close()


async def test_flapping_with_thresholds_2_2_posts_nothing(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.cycles(3)  # operational first (unknown → operational is not announced)
        # fails every other probe for 7 probes, then every fourth probe for an hour
        r.script.plan["sora-a"] = [DOWN, OK] * 3 + [DOWN] + [OK, OK, OK, DOWN] * 16
        await r.cycles(70)
        assert r.chat.posts == []
        assert [t.to_state for t in r.store.transitions("sora-a")] == [State.OPERATIONAL]


async def test_sustained_half_failure_is_one_risk_control_alert_not_a_storm(
        tmp_path: Path) -> None:
    """Decided on purpose: failing every other probe for a whole window (10) *is* the
    reverse-relay "risk control" signal; it is announced once, never as a flap storm."""
    async with rig(tmp_path) as r:
        await r.cycles(3)
        r.script.plan["sora-a"] = [DOWN, OK] * 30
        await r.cycles(60)
        assert r.chat.titles == ["🟠 SORA-A is in risk control"]


async def test_an_outage_is_one_alert_and_one_threaded_recovery(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.cycles(3)
        r.script.set(DOWN, "sora-a")
        await r.cycles(10)
        r.script.set(OK, "sora-a")
        await r.cycles(5)

        assert len(r.chat.posts) == 2
        outage, recovery = r.chat.posts
        assert outage.message.title == "🔴 SORA-A is suspended" and outage.reply_to is None
        assert recovery.reply_to == outage.ref  # in the outage's thread
        # failed at 09:03 and 09:04 (suspended), answered at 09:13 and 09:14 (recovered)
        assert recovery.message.title == "🟢 SORA-A recovered after 10m"
        assert outage.key and recovery.key and outage.key != recovery.key


async def test_five_services_failing_in_one_cycle_make_one_post_per_channel(
        tmp_path: Path) -> None:
    async with rig(tmp_path, channels=("#all",)) as r:
        r.subscribe("#sora", services=("sora-*",))
        r.subscribe("#veo-only-bad", services=("veo-*",), min_state=State.SUSPENDED)
        await r.cycles(3)
        r.script.set(DOWN, *IDS)
        await r.cycles(3)
        by_channel = {ch: [p for p in r.chat.posts if p.channel == ch]
                      for ch in ("#all", "#sora", "#veo-only-bad")}
        assert [p.message.title for p in by_channel["#all"]] == ["🔴 5 services in trouble"]
        assert [p.message.title for p in by_channel["#sora"]] == ["🔴 3 services in trouble"]
        assert [p.message.title for p in by_channel["#veo-only-bad"]] == [
            "🔴 2 services in trouble"]
        table = by_channel["#sora"][0].message.table
        assert table is not None and {row[1] for row in table.rows} == {
            "SORA-A", "SORA-B", "SORA-C"}

        r.script.set(OK, *IDS)
        await r.cycles(3)
        for ch, posts in by_channel.items():
            replies = [p for p in r.chat.posts if p.channel == ch][1:]
            assert len(replies) == 1, ch  # the recoveries, batched, in the batch's thread
            assert replies[0].reply_to == posts[0].ref
            assert "recovered" in replies[0].message.title


async def test_min_severity_filters_what_a_channel_hears(tmp_path: Path) -> None:
    slow = Observation(latency_ms=9000.0, http_status=200, detail="slow")
    async with rig(tmp_path, channels=()) as r:
        r.subscribe("#pager", min_state=State.SUSPENDED)
        r.subscribe("#all")
        await r.cycles(3)
        r.script.set(slow, "sora-a")  # degraded only
        await r.cycles(3)
        r.script.set(OK, "sora-a")
        await r.cycles(3)
        assert [p.channel for p in r.chat.posts] == ["#all", "#all"]


async def test_maintenance_mutes_and_is_announced_once_at_each_end(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.cycles(3)
        start = r.clock()
        r.store.add_maintenance("sora-a", start, start + timedelta(minutes=30), "db upgrade",
                                "admin")
        r.script.set(DOWN, "sora-a")
        await r.cycles(25)  # failing inside the window: muted
        assert r.chat.titles == ["🔧 Maintenance started: db upgrade"]
        assert "SORA-A" in r.chat.posts[0].message.text
        await r.cycles(10)  # the window ended, and sora-a is still down
        assert r.chat.titles == ["🔧 Maintenance started: db upgrade",
                                 "🔧 Maintenance over: db upgrade",
                                 "🔴 SORA-A is suspended"]
        assert r.store.transitions("sora-a")[-1].from_state is State.MAINTENANCE


async def test_not_configured_services_are_never_announced(tmp_path: Path) -> None:
    missing = Observation(latency_ms=0.0, not_configured="set SORA_RELAY_BASE_URL")
    async with rig(tmp_path) as r:
        r.script.set(missing, "sora-a")
        await r.cycles(3)
        r.script.set(DOWN, "sora-a")  # configured now, and down
        await r.cycles(3)
        r.script.set(missing, "sora-a")
        await r.cycles(3)
        r.script.set(OK, "sora-a")
        await r.cycles(3)
        states = [t.to_state for t in r.store.transitions("sora-a")]
        assert states == [State.SUSPENDED, State.UNKNOWN, State.OPERATIONAL]
        assert r.chat.posts == []  # nothing to or from "unknown — not configured"


async def test_reminders_while_bad_are_threaded_and_never_repeated(tmp_path: Path) -> None:
    async with rig(tmp_path, remind=timedelta(minutes=30)) as r:
        await r.cycles(3)
        r.script.set(DOWN, "sora-b")
        await r.cycles(100)  # suspended for about 98 minutes
        outage, *reminders = r.chat.posts
        assert outage.message.title == "🔴 SORA-B is suspended"
        assert [p.message.title for p in reminders] == [
            "🔴 SORA-B still suspended after 30m", "🔴 SORA-B still suspended after 1h 0m",
            "🔴 SORA-B still suspended after 1h 30m"]
        assert all(p.reply_to == outage.ref for p in reminders)
        assert r.monitor.alerts.enqueue(r.clock()) == 0  # asked again: nothing new


async def test_fan_out_is_idempotent_and_keeps_order_when_the_platform_refuses(
        tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        await r.cycles(3)
        r.chat.refuse = True
        r.script.set(DOWN, "sora-a")
        await r.cycles(3)
        r.script.set(OK, "sora-a")
        await r.cycles(3)
        assert r.chat.posts == [] and r.chat.attempts >= 2
        assert len(r.store.pending_posts()) == 2
        r.chat.refuse = False
        await r.cycles(10)
        assert [p.message.title.split(" recovered")[0] for p in r.chat.posts] == [
            "🔴 SORA-A is suspended", "🟢 SORA-A"]
        assert r.chat.posts[1].reply_to == r.chat.posts[0].ref
        assert r.store.pending_posts() == []


@pytest.mark.parametrize("remind", [None, timedelta(minutes=30)])
async def test_a_restart_mid_episode_neither_repeats_nor_loses_alerts(
        tmp_path: Path, remind: timedelta | None) -> None:
    async with rig(tmp_path, remind=remind) as r:
        await r.cycles(3)
        r.script.set(DOWN, "sora-a")
        await r.cycles(4)
        clock, posts = r.clock, list(r.chat.posts)
    # a new process: same database, fresh monitor, outbox and chat
    async with rig(tmp_path, remind=remind, channels=()) as again:
        again.clock.now = clock.now
        again.script.set(DOWN, "sora-a")
        await again.cycles(2)
        again.script.set(OK, "sora-a")
        await again.cycles(3)
        assert [p.message.title for p in posts] == ["🔴 SORA-A is suspended"]
        titles = again.chat.titles
        assert len(titles) == 1 and titles[0].startswith("🟢 SORA-A recovered after")
        # the thread survives the restart: the reply names the first process's post id
        assert again.chat.posts[0].reply_to is not None
        assert again.chat.posts[0].reply_to.id == posts[0].ref.id


def test_transition_messages_neutralise_upstream_text() -> None:
    from bot.alerts import transition_message
    from bot.models import Transition

    t = Transition(service="x", from_state=State.OPERATIONAL, to_state=State.SUSPENDED,
                   at=FakeClock().now, reason="<!channel> @everyone down <@U123>", id=1)
    m = transition_message(t, name="<!here> relay")
    for text in (m.title, m.text):
        for raw in ("<!channel>", "@everyone", "<@U123>", "<!here>"):
            assert raw not in text


