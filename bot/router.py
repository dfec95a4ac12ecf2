"""Which services may serve a generation, in what order, and the executor that tries them.

``plan_routes`` is pure: it orders the routes of a requested model (its own services, official
or reverse first as preferred, then its successors) and skips what cannot serve right now —
suspended, retired, in risk control, under maintenance, not configured, or cooling down after a
failure. ``Router.submit`` tries the candidates in order and falls back only when the failure
proves the request was not accepted (``SubmitError.kind == "retryable"``); a refusal by the
provider or an uncertain submit ends the attempt, so nothing is ever billed twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import GenerateSettings, ServiceConfig
from bot.messages import format_duration
from bot.models import Health, Observation, Outcome, State
from bot.providers import SubmitError, Submitted, VideoProvider, VideoRequest

log = logging.getLogger(__name__)

# States a route is skipped in ("degraded" still serves, just slower).
SKIP_STATES = {
    State.SUSPENDED: "suspended",
    State.RETIRED: "retired",
    State.RISK_CONTROL: "in risk control",
    State.MAINTENANCE: "under maintenance",
}


@dataclass(frozen=True, slots=True)
class Skip:
    service: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    """The routes to try for ``model``, best first, and why the others are not tried."""

    model: str
    candidates: tuple[ServiceConfig, ...]
    skipped: tuple[Skip, ...]
    successors: frozenset[str] = frozenset()  # candidate ids that serve another model

    def note(self, chosen: ServiceConfig) -> str | None:
        """"sora-2 retired → routed to Seedance" when a successor serves the request."""
        if chosen.id not in self.successors:
            return None
        retired = [s for s in self.skipped if "retired" in s.reason]
        why = "retired" if retired else "not available"
        return f"{self.model} {why} → routed to {chosen.name}"


def video_models(services: Sequence[ServiceConfig]) -> list[str]:
    """Every model a generation can ask for, in catalog order."""
    seen: dict[str, None] = {}
    for s in services:
        if s.enabled and s.can_generate_video and s.model:
            seen.setdefault(s.model, None)
            for old in s.successor_of:
                seen.setdefault(old, None)
    return list(seen)


def routes_for(model: str, services: Sequence[ServiceConfig], gen: GenerateSettings,
               prefer: str) -> tuple[list[ServiceConfig], set[str]]:
    """The ordered routes of ``model`` (configured, or own services then successors) and the
    ids among them that are successors."""
    video = [s for s in services if s.enabled and s.can_generate_video]
    by_id = {s.id: s for s in video}
    if model in gen.routes:
        ordered = [by_id[i] for i in gen.routes[model] if i in by_id]
        return ordered, {s.id for s in ordered if s.model != model}
    own = _preferred([s for s in video if s.model == model], prefer)
    successors = _preferred([s for s in video if model in s.successor_of and s.model != model],
                            prefer)
    return own + successors, {s.id for s in successors}


def _preferred(services: list[ServiceConfig], prefer: str) -> list[ServiceConfig]:
    """Stable: the preferred access first, then the rest in catalog order."""
    return sorted(services, key=lambda s: 0 if (s.access or "official") == prefer else 1)


def plan_routes(model: str, *, prefer: str, services: Sequence[ServiceConfig],
                gen: GenerateSettings, health: Mapping[str, Health],
                cooldown_until: Mapping[str, datetime], now: datetime) -> Plan:
    """Pure: order the routes of ``model`` and drop the ones that cannot serve now."""
    ordered, successors = routes_for(model, services, gen, prefer)
    candidates: list[ServiceConfig] = []
    skipped: list[Skip] = []
    for svc in ordered:
        reason = skip_reason(svc, health.get(svc.id), cooldown_until.get(svc.id), now)
        if reason is None:
            candidates.append(svc)
        else:
            skipped.append(Skip(svc.id, svc.name, reason))
    return Plan(model, tuple(candidates), tuple(skipped), frozenset(successors))


def skip_reason(svc: ServiceConfig, health: Health | None, cooling_until: datetime | None,
                now: datetime) -> str | None:
    """Why ``svc`` cannot serve a generation now, or None when it may be tried."""
    if svc.missing is not None:
        return f"not configured ({svc.missing})"
    if svc.api_key is None:
        return f"not configured (set {svc.api_key_env or 'an API key'})"
    if svc.shutdown_date is not None and svc.shutdown_date <= now.date():
        return f"retired (shut down {svc.shutdown_date.isoformat()})"
    if health is not None:
        if health.state in SKIP_STATES:
            return SKIP_STATES[health.state]
        if health.state is State.UNKNOWN and health.cause in (Outcome.NOT_CONFIGURED,
                                                              Outcome.MISCONFIGURED):
            return f"unknown — {health.reason}"
    if cooling_until is not None and cooling_until > now:
        left = format_duration((cooling_until - now).total_seconds())
        return f"cooling down after a failure ({left} left)"
    return None


@dataclass(frozen=True, slots=True)
class Attempt:
    service: str
    result: str  # "accepted", "retryable", "final", "uncertain", "submitting"
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"service": self.service, "result": self.result, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Routed:
    """How a submit ended: ``submitted`` on ``service``, or ``error`` (the last failure)."""

    attempts: tuple[Attempt, ...]
    service: ServiceConfig | None = None
    submitted: Submitted | None = None
    error: SubmitError | None = None


Feed = Callable[[str, Observation], object]
OnAttempt = Callable[[Attempt], None]


class Router:
    """Tries planned routes; keeps each route's cooldown (an in-memory circuit breaker)."""

    def __init__(self, *, gen: GenerateSettings, clock: Callable[[], datetime],
                 feed: Feed | None = None) -> None:
        """``feed``: where each attempt's observation goes (the state machine, passively)."""
        self._cooldown = timedelta(seconds=gen.cooldown_seconds)
        self._clock = clock
        self._feed = feed
        self.cooldown_until: dict[str, datetime] = {}

    async def submit(self, plan: Plan, request: VideoRequest,
                     providers: Callable[[ServiceConfig], VideoProvider],
                     on_attempt: OnAttempt | None = None) -> Routed:
        """Try ``plan``'s candidates in order. ``on_attempt`` hears of each attempt before the
        request is sent ("submitting") and after, so a crash in between is known later."""
        attempts: list[Attempt] = []
        error: SubmitError | None = None
        for svc in plan.candidates:
            until = self.cooldown_until.get(svc.id)
            if until is not None and until > self._clock():
                continue  # another job's failure put it to rest since the plan was made
            if on_attempt is not None:
                on_attempt(Attempt(svc.id, "submitting"))
            try:
                submitted = await providers(svc).submit(request)
            except SubmitError as e:
                error = e
                attempt = Attempt(svc.id, e.kind, e.reason)
                attempts.append(attempt)
                if on_attempt is not None:
                    on_attempt(attempt)
                self._observe(svc.id, e.observation)
                if e.kind != "retryable":
                    return Routed(tuple(attempts), svc, None, e)
                self.cooldown_until[svc.id] = self._clock() + self._cooldown
                log.info("generate: %s failed (%s), trying the next route", svc.id, e.reason)
                continue
            attempt = Attempt(svc.id, "accepted")
            attempts.append(attempt)
            if on_attempt is not None:
                on_attempt(attempt)
            self.cooldown_until.pop(svc.id, None)
            self._observe(svc.id, Observation(latency_ms=submitted.latency_ms, http_status=200,
                                              detail="generation accepted"))
            return Routed(tuple(attempts), svc, submitted)
        return Routed(tuple(attempts), None, None, error)

    def _observe(self, service: str, observation: Observation | None) -> None:
        if self._feed is None or observation is None:
            return
        try:
            self._feed(service, observation)
        except Exception:  # the state feed must never break a generation
            log.exception("passive probe of %s could not be recorded", service)
