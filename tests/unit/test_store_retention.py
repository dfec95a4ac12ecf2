"""Latency percentiles, hourly rollups and pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.store import Store

NOW = datetime(2026, 11, 3, 12, 30, tzinfo=UTC)
HOUR_START = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
H = timedelta(hours=1)
SVC = "sora-relay"


def probe(store: Store, at: datetime, latency_ms: float | None, outcome: Outcome = Outcome.OK,
          *, passive: bool = False, service: str = SVC) -> None:
    result = ProbeResult(service, at, outcome, latency_ms, passive=passive)
    store.record(result, Health(service, last_checked=at), None)


def test_latency_nearest_rank_percentiles(store: Store) -> None:
    for i in range(1, 101):  # 1..100 ms, one a minute, shuffled by arrival order
        probe(store, NOW - timedelta(minutes=(i * 37) % 100 + 1), float((i * 37) % 100 + 1))
    assert store.latency(SVC, DAY, NOW) == (50.0, 95.0)


def test_latency_small_sample(store: Store) -> None:
    for ms in (30.0, 10.0, 20.0):
        probe(store, NOW - timedelta(minutes=ms), ms)
    assert store.latency(SVC, DAY, NOW) == (20.0, 30.0)


def test_latency_ignores_failures_passive_results_and_older_rows(store: Store) -> None:
    probe(store, NOW - H, 100.0)
    probe(store, NOW - H, 200.0, Outcome.SLOW)
    probe(store, NOW - H, 9_000.0, Outcome.UNAVAILABLE)
    probe(store, NOW - H, 60_000.0, passive=True)
    probe(store, NOW - 2 * DAY, 5_000.0)
    probe(store, NOW - H, 7_000.0, service="veo")
    probe(store, NOW - H, None, Outcome.REACHABLE)
    assert store.latency(SVC, DAY, NOW) == (100.0, 200.0)


def test_latency_without_samples(store: Store) -> None:
    assert store.latency(SVC, DAY, NOW) == (None, None)
    assert store.latency(SVC, timedelta(days=30), NOW) == (None, None)
    probe(store, NOW - H, 9_000.0, Outcome.UNAVAILABLE)
    assert store.latency(SVC, DAY, NOW) == (None, None)


def test_rollup_aggregates_completed_hours_only(store: Store) -> None:
    for minute in range(0, 60, 10):  # 10:00 … 10:50, latencies 10 … 60
        probe(store, HOUR_START - 2 * H + timedelta(minutes=minute), float(minute + 10))
    probe(store, HOUR_START - 2 * H + timedelta(minutes=55), 5.0, Outcome.UNAVAILABLE)
    probe(store, HOUR_START - 2 * H + timedelta(minutes=56), None, Outcome.NETWORK)
    probe(store, HOUR_START + timedelta(minutes=5), 10.0)  # current hour: not complete

    assert store.rollup(NOW) == 1
    [hour] = store.rollups(SVC, NOW - DAY)

    assert hour.hour == HOUR_START - 2 * H
    assert (hour.count, hour.successes, hour.failures) == (8, 6, 1)
    assert hour.outcomes == {"network": 1, "ok": 6, "unavailable": 1}
    assert (hour.latency_count, hour.latency_sum) == (6, 210.0)
    assert (hour.latency_p50, hour.latency_p95) == (30.0, 60.0)


def test_rollup_is_idempotent(store: Store) -> None:
    for minute in range(0, 180, 5):
        probe(store, HOUR_START - 3 * H + timedelta(minutes=minute), 100.0 + minute)
    store.rollup(NOW)
    first = store.rollups(SVC, NOW - DAY)

    store.rollup(NOW)
    store.rollup(NOW + timedelta(minutes=10))

    assert store.rollups(SVC, NOW - DAY) == first
    assert [r.count for r in first] == [12, 12, 12]


def test_rollup_recounts_a_late_result_without_double_counting(store: Store) -> None:
    probe(store, HOUR_START - H + timedelta(minutes=10), 100.0)
    store.rollup(NOW)
    probe(store, HOUR_START - H + timedelta(minutes=50), 300.0)  # arrives after the rollup

    store.rollup(NOW + H)

    [hour] = store.rollups(SVC, NOW - DAY)
    assert (hour.count, hour.latency_sum) == (2, 400.0)


def test_long_windows_use_rollups(store: Store) -> None:
    # Two hours: 4 samples at p50 100 / p95 200, 1 sample of 400 → weighted (4·100+400)/5 = 160.
    for ms in (100.0, 100.0, 200.0, 200.0):
        probe(store, HOUR_START - 5 * DAY + timedelta(minutes=ms / 10), ms)
    probe(store, HOUR_START - 20 * DAY, 400.0)
    store.rollup(NOW)

    assert store.latency(SVC, timedelta(days=30), NOW) == pytest.approx((160.0, 240.0))
    assert store.latency(SVC, timedelta(days=10), NOW) == (100.0, 200.0)  # raw, within 14 days


def test_prune_keeps_rollups_so_long_windows_still_answer(store: Store) -> None:
    for hours_ago in range(1, 20 * 24):
        probe(store, HOUR_START - hours_ago * H, 100.0 + hours_ago % 3)
    before = store.latency(SVC, timedelta(days=30), NOW)
    store.rollup(NOW)
    assert store.latency(SVC, timedelta(days=30), NOW) != before  # rollups answer, not raw

    deleted, _ = store.prune(NOW)

    remaining = list(store.probes(SVC))
    assert deleted == 20 * 24 - 1 - len(remaining)
    assert min(p.at for p in remaining) >= NOW - timedelta(days=14, hours=1)
    assert len(store.rollups(SVC, NOW - timedelta(days=30))) == 20 * 24 - 1
    assert store.latency(SVC, timedelta(days=30), NOW) == pytest.approx((101.0, 101.0), abs=0.01)
    assert store.latency(SVC, DAY, NOW) == (101.0, 102.0)


def test_prune_drops_old_rollups_and_keeps_transitions(store: Store) -> None:
    old = NOW - 30 * DAY
    store.record(ProbeResult(SVC, old, Outcome.OK, 100.0), Health(SVC),
                 Transition(SVC, State.UNKNOWN, State.OPERATIONAL, old, "first"))
    probe(store, NOW - 2 * DAY, 100.0)

    deleted = store.prune(NOW, raw_days=14, rollup_days=7)

    assert deleted == (1, 1)
    assert [t.at for t in store.transitions(SVC)] == [old]
    assert [r.hour for r in store.rollups(SVC, NOW - 90 * DAY)] == [HOUR_START - 2 * DAY]
    assert [p.at for p in store.probes(SVC)] == [NOW - 2 * DAY]


def test_prune_deletes_only_rolled_up_probes(store: Store) -> None:
    probe(store, HOUR_START - 20 * DAY, 100.0)
    store.prune(NOW, raw_days=14)
    assert store.rollups(SVC, NOW - 30 * DAY)[0].count == 1
    assert list(store.probes(SVC)) == []
