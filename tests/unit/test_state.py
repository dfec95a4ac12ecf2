"""The pure state step, driven by a fake clock."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from bot.models import Health, Outcome, Policy, ProbeResult, State, Transition
from bot.state import step

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
POLICY = Policy(failure_threshold=2, success_threshold=2, window=10)


def run(outcomes: Iterable[Outcome], *, health: Health | None = None, policy: Policy = POLICY,
        start: datetime = T0) -> tuple[Health, list[Transition]]:
    h = health or Health(service="svc")
    transitions = []
    for i, outcome in enumerate(outcomes):
        now = start + timedelta(minutes=i)
        h, t = step(h, ProbeResult("svc", now, outcome, 100.0, error=outcome.value), policy, now)
        if t:
            transitions.append(t)
    return h, transitions


def states(ts: list[Transition]) -> list[str]:
    return [t.to_state.value for t in ts]


OK, BAD = Outcome.OK, Outcome.UNAVAILABLE


def test_two_successes_make_a_new_service_operational() -> None:
    h, ts = run([OK])
    assert ts == [] and h.state is State.UNKNOWN
    h, ts = run([OK, OK])
    assert states(ts) == ["operational"] and h.since == T0 + timedelta(minutes=1)


def test_single_failure_is_absorbed_by_hysteresis() -> None:
    _, ts = run([OK, OK, BAD, OK, OK, BAD, OK])
    assert states(ts) == ["operational"]


def test_sustained_unavailability_is_suspended_then_recovers() -> None:
    h, ts = run([OK, OK, BAD, BAD, BAD, OK, OK])
    assert states(ts) == ["operational", "suspended", "operational"]
    assert ts[1].at == T0 + timedelta(minutes=3)
    assert ts[1].from_state is State.OPERATIONAL
    assert ts[1].evidence["outcome"] == "unavailable"
    assert ts[1].evidence["first_bad_at"] == (T0 + timedelta(minutes=2)).isoformat()
    assert h.first_bad_at is None  # the episode is over


def test_one_success_does_not_end_an_outage() -> None:
    h, ts = run([OK, OK, BAD, BAD, OK, BAD, OK])
    assert states(ts) == ["operational", "suspended"] and h.state is State.SUSPENDED


def test_collapsed_success_rate_reads_as_risk_control() -> None:
    # A reverse relay succeeding 40 % of the time: never two failures in a row stays rare,
    # but the full window shows the collapse.
    pattern = [OK, BAD, OK, BAD, BAD, OK, BAD, OK, BAD, BAD] * 2
    h, ts = run([OK, OK, *pattern])
    assert "risk_control" in states(ts)
    assert h.state in (State.RISK_CONTROL, State.SUSPENDED)
    risk = next(t for t in ts if t.to_state is State.RISK_CONTROL)
    assert "success rate" in risk.reason


def test_rate_limit_and_captcha_streak_is_risk_control() -> None:
    _, ts = run([OK, OK, Outcome.THROTTLED, Outcome.RISK_CONTROL])
    assert states(ts) == ["operational", "risk_control"]


def test_model_gone_is_retired_never_suspended() -> None:
    h, ts = run([OK, OK, Outcome.GONE, Outcome.GONE, Outcome.GONE])
    assert states(ts) == ["operational", "retired"] and h.state is State.RETIRED


def test_credentials_rejected_is_unknown_and_says_so() -> None:
    h, ts = run([Outcome.MISCONFIGURED, Outcome.MISCONFIGURED])
    assert h.state is State.UNKNOWN and ts == []  # already unknown: no transition
    h, ts = run([OK, OK, Outcome.MISCONFIGURED, Outcome.MISCONFIGURED])
    assert states(ts) == ["operational", "unknown"]
    assert ts[-1].reason.startswith("credentials rejected")
    assert False not in h.window  # credential failures say nothing about the service


def test_not_configured_is_unknown_immediately_and_not_an_outage() -> None:
    h, ts = run([OK, OK, Outcome.NOT_CONFIGURED])
    assert states(ts) == ["operational", "unknown"]
    assert h.first_bad_at is None


def test_maintenance_is_immediate() -> None:
    _, ts = run([OK, OK, Outcome.MAINTENANCE, OK, OK])
    assert states(ts) == ["operational", "maintenance", "operational"]


def test_slow_successes_degrade() -> None:
    _h, ts = run([OK, OK, Outcome.SLOW, Outcome.SLOW, Outcome.SLOW, OK, OK])
    assert states(ts) == ["operational", "degraded", "operational"]


def test_mixed_errors_degrade() -> None:
    _, ts = run([OK, OK, Outcome.BAD_RESPONSE, Outcome.THROTTLED])
    assert states(ts) == ["operational", "degraded"]


def test_status_page_degraded_with_threshold_one() -> None:
    p = Policy(failure_threshold=1, success_threshold=1)
    _, ts = run([OK, Outcome.DEGRADED, Outcome.UNAVAILABLE, OK], policy=p)
    assert states(ts) == ["operational", "degraded", "suspended", "operational"]


def test_bot_network_failure_does_not_count_as_an_outage() -> None:
    h, ts = run([OK, OK, Outcome.NETWORK, Outcome.NETWORK])
    assert states(ts) == ["operational", "unknown"]
    assert ts[-1].reason.startswith("no data")
    assert False not in h.window


def test_step_is_pure() -> None:
    h = Health(service="svc")
    r = ProbeResult("svc", T0, BAD, 5.0)
    assert step(h, r, POLICY, T0) == step(h, r, POLICY, T0)
    assert h == Health(service="svc")  # input untouched


def test_thresholds_are_data() -> None:
    p = Policy(failure_threshold=4, success_threshold=3)
    _, ts = run([OK, OK, OK, BAD, BAD, BAD], policy=p)
    assert states(ts) == ["operational"]
    _, ts = run([OK, OK, OK, BAD, BAD, BAD, BAD], policy=p)
    assert states(ts) == ["operational", "suspended"]


def test_unknown_explains_itself_without_a_transition() -> None:
    h, ts = run([Outcome.NOT_CONFIGURED])
    assert ts == [] and h.state is State.UNKNOWN
    assert h.reason == "not_configured"  # the result's error text, refreshed in place


def test_recovery_after_a_hard_outage_is_not_mistaken_for_risk_control() -> None:
    h, ts = run([OK, OK, *[BAD] * 12, OK, OK, OK])
    assert states(ts) == ["operational", "suspended", "operational"]
    assert h.window == (True,)  # the new episode's window


def test_sliding_from_risk_control_to_refusal_skips_a_false_degraded() -> None:
    _, ts = run([OK, OK, Outcome.RISK_CONTROL, Outcome.RISK_CONTROL, BAD, BAD])
    assert states(ts) == ["operational", "risk_control", "suspended"]


def test_partial_recovery_from_suspension_reads_as_risk_control() -> None:
    partial = [OK, BAD, BAD, OK, BAD, OK, BAD, BAD, OK, BAD]  # 40 % success, never 2 in a row
    _h, ts = run([OK, OK, BAD, BAD, *partial])
    assert states(ts) == ["operational", "suspended", "risk_control"]


def test_status_pages_do_not_use_a_success_rate_window() -> None:
    p = Policy(failure_threshold=1, success_threshold=1, use_window=False)
    h, ts = run([OK, *[Outcome.DEGRADED, OK] * 10], policy=p)
    assert "risk_control" not in states(ts) and h.window == ()
