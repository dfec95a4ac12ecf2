"""The pure state step: ``step(health, result, policy, now) -> (health, transition | None)``.

Gatus-style hysteresis with thresholds as data. Counters live in the returned ``Health``, so the
function has no hidden state and ``now`` is always passed in. Decision table, first match wins:

1. not configured → ``unknown`` at once (never an outage); announced maintenance → ``maintenance``.
2. ``failure_threshold`` failures in a row, judged by their kinds: all ``gone`` → ``retired``;
   all credential rejections → ``unknown`` (say so); all the bot's own network → ``unknown``;
   all throttled / risk-control wording → ``risk_control``; all unavailable / refused →
   ``suspended``; all status-page degraded → ``degraded``; a mix → ``degraded`` (or, when
   already in a bad state and the mix is all severe, hold until the kinds agree).
3. A full success-rate window under ``suspended_below`` → ``suspended``; under
   ``risk_control_below`` → ``risk_control`` (the reverse-relay mode: 30–50 % of requests fail).
   The window restarts when entering or leaving suspended/retired/unknown/maintenance, so it
   measures the current episode, and status pages (``use_window=False``) skip this rule.
4. ``failure_threshold`` slow successes in a row → ``degraded``.
5. ``success_threshold`` successes in a row → ``operational`` (checked before rule 3 when leaving
   suspended/retired/unknown/maintenance, whose window is fresh).
Otherwise the state holds.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.models import Health, Outcome, Policy, ProbeResult, State, Transition

_STREAK_CAP = 50
_SEVERE = frozenset({Outcome.THROTTLED, Outcome.RISK_CONTROL, Outcome.UNAVAILABLE,
                     Outcome.REFUSED})
# Say nothing of the service, so they end a run of failures rather than join it (a failure
# after maintenance or after the service was configured starts a fresh count).
_ENDS_STREAK = frozenset({Outcome.MAINTENANCE, Outcome.NOT_CONFIGURED})
# Entering or leaving these starts the success-rate window afresh: a hard outage's failures must
# not read as "risk control" once the service answers again.
_FRESH_WINDOW = frozenset({State.SUSPENDED, State.RETIRED, State.UNKNOWN, State.MAINTENANCE})

_STREAK_STATES: tuple[tuple[frozenset[Outcome], State, str], ...] = (
    (frozenset({Outcome.GONE}), State.RETIRED, "model gone"),
    (frozenset({Outcome.MISCONFIGURED}), State.UNKNOWN, "credentials rejected"),
    (frozenset({Outcome.NETWORK}), State.UNKNOWN, "no data"),
    (frozenset({Outcome.THROTTLED, Outcome.RISK_CONTROL}), State.RISK_CONTROL, "throttled"),
    (frozenset({Outcome.UNAVAILABLE, Outcome.REFUSED}), State.SUSPENDED, "unavailable"),
    (frozenset({Outcome.DEGRADED}), State.DEGRADED, "degraded"),
)


def step(health: Health, result: ProbeResult, policy: Policy, now: datetime
         ) -> tuple[Health, Transition | None]:
    """Fold one classified result into ``health``; return the new health and any transition."""
    outcome = result.outcome
    success = outcome.is_success
    window = health.window
    if policy.use_window and (success or outcome.is_failure):  # only what speaks of the service
        window = (*window, success)[-policy.window:]
    folded = replace(
        health,
        window=window,
        ok_streak=health.ok_streak + 1 if success else 0,
        slow_streak=health.slow_streak + 1 if outcome is Outcome.SLOW else 0,
        fail_streak=() if success or outcome in _ENDS_STREAK else (
            *health.fail_streak, outcome.value)[-_STREAK_CAP:],
        last_checked=now,
        last_outcome=outcome,
        first_bad_at=health.first_bad_at or (now if outcome.is_failure else None),
    )
    target = _target(folded, outcome, result, policy)
    if target is None:
        return _settle(folded), None
    if target[0] is health.state:  # no change: keep ``since``, refresh the explanation
        return _settle(replace(folded, reason=target[1], cause=outcome)), None
    to_state, reason = target
    transition = Transition(
        service=health.service, from_state=health.state, to_state=to_state, at=now,
        reason=reason, evidence=_evidence(folded, result, health.cause))
    if to_state in _FRESH_WINDOW or health.state in _FRESH_WINDOW:
        folded = replace(folded, window=())  # a new episode: old results say nothing about it
    return _settle(replace(folded, state=to_state, since=now, reason=reason,
                           cause=outcome)), transition


def _target(h: Health, outcome: Outcome, result: ProbeResult, policy: Policy
            ) -> tuple[State, str] | None:
    why = result.error or result.detail or outcome.value
    if outcome is Outcome.NOT_CONFIGURED:
        return State.UNKNOWN, why
    if outcome is Outcome.MAINTENANCE:
        return State.MAINTENANCE, why
    streak = h.fail_streak[-policy.failure_threshold:]
    if not outcome.is_success and len(streak) >= policy.failure_threshold:
        kinds = {Outcome(k) for k in streak}
        for allowed, state, label in _STREAK_STATES:
            if kinds <= allowed:
                if state is State.UNKNOWN:
                    return state, f"{label}: {why}"
                run = _trailing(h.fail_streak, allowed)
                return state, f"{why} ({run}× in a row)" if run > 1 else why
        if h.state.is_bad and kinds <= _SEVERE:
            return None  # sliding from one bad state to another: wait for a clear verdict
        return State.DEGRADED, f"mixed errors, latest: {why}"
    if outcome.is_success and h.ok_streak >= policy.success_threshold and \
            h.state in _FRESH_WINDOW:
        return State.OPERATIONAL, why if outcome is Outcome.REACHABLE else "answering normally"
    rate = h.success_rate
    if rate is not None and len(h.window) >= policy.window:
        pct = f"success rate {rate:.0%} over the last {len(h.window)} checks"
        if rate < policy.suspended_below:
            return State.SUSPENDED, pct
        if rate < policy.risk_control_below:
            return State.RISK_CONTROL, pct + (f"; latest: {why}" if not outcome.is_success else "")
    if outcome is Outcome.SLOW and h.slow_streak >= policy.failure_threshold:
        return State.DEGRADED, why
    if outcome.is_success and h.ok_streak >= policy.success_threshold:
        if outcome is Outcome.SLOW and h.state is State.DEGRADED:
            return None
        return State.OPERATIONAL, why if outcome is Outcome.REACHABLE else "answering normally"
    return None


def _trailing(streak: tuple[str, ...], allowed: frozenset[Outcome]) -> int:
    n = 0
    for kind in reversed(streak):
        if Outcome(kind) not in allowed:
            break
        n += 1
    return n


def _settle(h: Health) -> Health:
    """A bad episode ends when the service is operational again and answering."""
    if h.state is State.OPERATIONAL and h.last_outcome is not None and h.last_outcome.is_success:
        return replace(h, first_bad_at=None)
    return h


def _evidence(h: Health, result: ProbeResult, from_cause: Outcome | None
              ) -> dict[str, object]:
    evidence: dict[str, object] = {"outcome": result.outcome.value}
    if from_cause is not None:
        evidence["from_cause"] = from_cause.value
    if result.http_status is not None:
        evidence["http_status"] = result.http_status
    if result.latency_ms is not None:
        evidence["latency_ms"] = round(result.latency_ms, 1)
    if result.error:
        evidence["error"] = result.error
    if h.success_rate is not None:
        evidence["success_rate"] = round(h.success_rate, 3)
    if h.fail_streak:
        evidence["fail_streak"] = len(h.fail_streak)
    if h.first_bad_at is not None:
        evidence["first_bad_at"] = h.first_bad_at.isoformat()
    if result.passive:
        evidence["passive"] = True
    return evidence
