"""The daily digest: once per local day per channel, across restarts, downtime and DST."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import load_settings
from bot.digest import enqueue_due_digests
from bot.models import State
from bot.outbox import Outbox
from bot.store import Store
from bot.subscriptions import ALL, first_claim
from tests.fakes.chat import FakeChat, FakeClock

PNG = b"\x89PNG\r\n\x1a\n-fake-chart"
SERVICES = load_settings(None, {}).services


def fake_chart(report: dict[str, Any]) -> bytes:
    return PNG


def subscribe(store: Store, channel: str, at: str, tz: str, now: datetime) -> int:
    sub = store.subscribe("fake", "T1", channel, services=(ALL,), min_state=State.DEGRADED,
                          by="U1", now=now)
    store.set_digest(sub.id, at, tz, first_claim(at, tz, now))
    return sub.id


async def test_one_digest_per_local_day_across_restarts_downtime_and_dst(tmp_path: Path
                                                                        ) -> None:
    db = tmp_path / "bot.db"
    # Europe leaves summer time on 2026-10-25, the US on 2026-11-01.
    now = datetime(2026, 10, 22, 12, 0, tzinfo=UTC)
    store = Store(db)
    eu = subscribe(store, "#eu", "09:00", "Europe/Berlin", now)
    us = subscribe(store, "#us", "01:30", "America/New_York", now)  # 01:30 happens twice 11-01
    store.close()

    end = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)
    down = (datetime(2026, 10, 27, 6, 0, tzinfo=UTC), datetime(2026, 10, 27, 14, 0, tzinfo=UTC))
    step = timedelta(minutes=10)
    restarts = 0
    while now < end:
        store = Store(db)  # a restart every simulated 6 hours
        restarts += 1
        for _ in range(36):
            if not down[0] <= now < down[1]:  # the bot is down over the EU digest time
                await enqueue_due_digests(store, SERVICES, now, draw=fake_chart)
                await enqueue_due_digests(store, SERVICES, now, draw=fake_chart)  # twice
            now += step
        store.close()

    store = Store(db)
    rows = store.posts()
    per_day: Counter[tuple[str, str]] = Counter()
    for row in rows:
        sub_id, day = row["key"].removeprefix("d").split("@")[0].split(":")
        per_day[(row["channel"], day)] += 1
        assert int(sub_id) == (eu if row["channel"] == "#eu" else us)
    assert set(per_day.values()) == {1}
    eu_days = sorted(d for ch, d in per_day if ch == "#eu")
    us_days = sorted(d for ch, d in per_day if ch == "#us")
    assert eu_days == [str(date(2026, 10, 23) + timedelta(days=i)) for i in range(13)]
    assert us_days == [str(date(2026, 10, 23) + timedelta(days=i)) for i in range(13)]
    assert restarts > 40
    store.close()


async def test_the_digest_is_posted_at_local_time_and_caught_up_once_after_downtime(
        tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 20, 6, 0, tzinfo=UTC))  # 07:00 in Berlin
    store = Store(tmp_path / "bot.db")
    subscribe(store, "#eu", "09:00", "Europe/Berlin", clock())
    chat = FakeChat()
    outbox = Outbox(store=store, chats={"fake": chat}, clock=clock)
    times = []
    for _ in range(12 * 6):  # two hours before to ten hours after, every 10 minutes
        if await enqueue_due_digests(store, SERVICES, clock(), draw=fake_chart):
            times.append(clock().astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M"))
        await outbox.deliver()
        clock.advance(600)
    assert times == ["09:00"]
    digest = chat.posts[0].message
    assert digest.title.startswith("Daily digest — Fri 20 Nov 2026")
    assert digest.attachments[0].content == PNG and digest.attachments[0].filename.endswith(
        ".png")

    clock.now = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # down for two days; back at 16:00
    assert await enqueue_due_digests(store, SERVICES, clock(), draw=fake_chart) == 1
    assert await enqueue_due_digests(store, SERVICES, clock(), draw=fake_chart) == 0
    await outbox.deliver()
    assert [p.message.title.split("—")[1].strip() for p in chat.posts] == [
        "Fri 20 Nov 2026", "Sun 22 Nov 2026"]  # today's, once; not one per missed day
    store.close()


async def test_digest_off_and_a_time_set_after_todays_has_passed(tmp_path: Path) -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    store = Store(":memory:")
    sub_id = subscribe(store, "#late", "09:00", "UTC", now)  # set at 12:00: first one tomorrow
    assert await enqueue_due_digests(store, SERVICES, now, draw=fake_chart) == 0
    assert await enqueue_due_digests(store, SERVICES, now + timedelta(days=1),
                                     draw=fake_chart) == 1
    store.set_digest(sub_id, None, "UTC", None)
    assert await enqueue_due_digests(store, SERVICES, now + timedelta(days=2),
                                     draw=fake_chart) == 0
    store.close()
