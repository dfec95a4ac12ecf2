"""Time-weighted uptime from hand-made timelines, and the star rating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.store import Store, stars

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
H = timedelta(hours=1)
SVC = "sora-relay"


def timeline(store: Store, *changes: tuple[timedelta, State], service: str = SVC) -> None:
    """Record each change (``ago`` before NOW → state), the health row following along."""
    previous = State.UNKNOWN
    for ago, state in changes:
        at = NOW - ago
        store.record(
            ProbeResult(service, at, Outcome.OK, 100.0),
            Health(service, state, since=at, reason=state.value, last_checked=at),
            Transition(service, previous, state, at, state.value),
        )
        previous = state


def test_up_23h_down_1h(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL), (H, State.SUSPENDED))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100 * 23 / 24)  # 95.83…


def test_degraded_counts_as_up_risk_control_as_down_retired_not_at_all(store: Store) -> None:
    # 6 h degraded (up), 6 h risk control (down), 6 h operational (up), 6 h retired (left out:
    # a model that is gone is not "down", and must not drag the rating for ever).
    timeline(store, (24 * H, State.DEGRADED), (18 * H, State.RISK_CONTROL),
             (12 * H, State.OPERATIONAL), (6 * H, State.RETIRED))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100 * 12 / 18)


def test_maintenance_state_is_excluded(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL), (12 * H, State.MAINTENANCE),
             (6 * H, State.SUSPENDED))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100 * 12 / 18)


def test_maintenance_window_is_excluded(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL), (3 * H, State.SUSPENDED),
             (2 * H, State.OPERATIONAL))
    store.add_maintenance(SVC, NOW - 4 * H, NOW - 2 * H, "upgrade", "statuspage:openai",
                          external_id="m1")
    # 24h, minus 2h of maintenance (1h of it up, 1h down): 22h counted, all up.
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100.0)


def test_open_ended_maintenance_runs_until_now(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL), (6 * H, State.SUSPENDED))
    store.add_maintenance(SVC, NOW - 6 * H, None, "admin says so", "admin")
    store.add_maintenance(SVC, NOW - 5 * H, NOW - 4 * H, "overlapping", "admin")
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100.0)


def test_another_services_maintenance_does_not_count(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL), (6 * H, State.SUSPENDED))
    store.add_maintenance("veo", NOW - DAY, None, "not ours", "admin")
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(75.0)


def test_time_before_the_first_transition_is_unknown(store: Store) -> None:
    timeline(store, (12 * H, State.OPERATIONAL), (3 * H, State.SUSPENDED))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100 * 9 / 12)


def test_unknown_state_is_excluded(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL), (18 * H, State.UNKNOWN),
             (6 * H, State.SUSPENDED))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(50.0)


def test_window_starting_mid_state(store: Store) -> None:
    timeline(store, (3 * DAY, State.OPERATIONAL), (2 * DAY, State.SUSPENDED),
             (12 * H, State.OPERATIONAL))
    # The state entered two days ago (before the window) holds for its first 12 hours.
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(50.0)
    assert store.uptime(SVC, 3 * DAY, NOW) == pytest.approx(100 * (24 + 12) / 72)


def test_no_data_is_none(store: Store) -> None:
    assert store.uptime(SVC, DAY, NOW) is None
    assert store.uptimes(SVC, NOW) == {"24h": None, "7d": None, "30d": None, "90d": None}


def test_only_uncountable_time_is_none(store: Store) -> None:
    timeline(store, (24 * H, State.MAINTENANCE), (H, State.UNKNOWN))
    assert store.uptime(SVC, DAY, NOW) is None


def test_later_transitions_are_ignored_for_an_earlier_now(store: Store) -> None:
    timeline(store, (48 * H, State.OPERATIONAL), (H, State.SUSPENDED))
    assert store.uptime(SVC, DAY, NOW - 2 * H) == pytest.approx(100.0)


def test_health_row_without_transitions_counts_from_its_since(store: Store) -> None:
    store.save_health(Health(SVC, State.OPERATIONAL, since=NOW - 6 * H))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(100.0)
    store.save_health(Health(SVC, State.SUSPENDED, since=NOW - 3 * H))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(0.0)  # no history kept without one


def test_health_newer_than_the_last_transition_extends_the_timeline(store: Store) -> None:
    timeline(store, (24 * H, State.OPERATIONAL))
    store.save_health(Health(SVC, State.SUSPENDED, since=NOW - 6 * H))
    assert store.uptime(SVC, DAY, NOW) == pytest.approx(75.0)


def test_uptimes_reads_every_window(store: Store) -> None:
    timeline(store, (10 * DAY, State.OPERATIONAL), (5 * DAY, State.SUSPENDED),
             (4 * DAY, State.OPERATIONAL))
    result = store.uptimes(SVC, NOW)
    assert list(result) == ["24h", "7d", "30d", "90d"]
    assert result["24h"] == pytest.approx(100.0)
    assert result["7d"] == pytest.approx(100 * 6 / 7)
    assert result["30d"] == pytest.approx(90.0)  # 10 days known, 1 down
    assert result["90d"] == result["30d"]
    assert result["7d"] == store.uptime(SVC, timedelta(days=7), NOW)
    assert store.uptimes(SVC, NOW, keys=("30d", "24h")) == {"30d": result["30d"], "24h": 100.0}
    assert store.uptimes(SVC, NOW, keys=()) == {}


def test_risk_control_episodes_in_the_last_weeks(store: Store) -> None:
    timeline(store, (10 * DAY, State.RISK_CONTROL), (9 * DAY, State.OPERATIONAL),
             (3 * DAY, State.RISK_CONTROL), (2 * DAY, State.OPERATIONAL),
             (H, State.RISK_CONTROL))
    assert store.risk_control_episodes(SVC, NOW) == 2
    assert store.risk_control_episodes(SVC, NOW, weeks=2) == 3
    assert store.risk_control_episodes("veo", NOW) == 0


@pytest.mark.parametrize(
    ("uptime", "expected"),
    [
        (None, "—"),
        (100.0, "★★★★★"),
        (99.5, "★★★★★"),
        (99.49, "★★★★☆"),
        (95.0, "★★★★☆"),
        (94.99, "★★★☆☆"),
        (90.0, "★★★☆☆"),
        (89.99, "★★☆☆☆"),
        (80.0, "★★☆☆☆"),
        (79.99, "★☆☆☆☆"),
        (0.0, "★☆☆☆☆"),
    ],
)
def test_stars(uptime: float | None, expected: str) -> None:
    assert stars(uptime) == expected
