"""Value types shared by the whole core: states, probe observations, outcomes, health, transitions.

Everything here is immutable data. Probes produce an ``Observation``; ``classify`` turns it into an
``Outcome``; ``state.step`` folds outcomes into ``Health`` and emits ``Transition`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class State(StrEnum):
    """What a service looks like to its users right now."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    RISK_CONTROL = "risk_control"
    SUSPENDED = "suspended"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"
    UNKNOWN = "unknown"

    @property
    def emoji(self) -> str:
        return _EMOJI[self]

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")

    @property
    def phrase(self) -> str:
        """``"Sora 2 " + phrase``: "is suspended", "is in risk control", …"""
        return _PHRASE.get(self, f"is {self.label}")

    @property
    def is_bad(self) -> bool:
        """A state users should hear about (something they depend on is not working)."""
        return self in (State.DEGRADED, State.RISK_CONTROL, State.SUSPENDED, State.RETIRED)


_EMOJI = {
    State.OPERATIONAL: "🟢",
    State.DEGRADED: "🟡",
    State.RISK_CONTROL: "🟠",
    State.SUSPENDED: "🔴",
    State.MAINTENANCE: "🔧",
    State.RETIRED: "⚫",
    State.UNKNOWN: "⚪",
}


_PHRASE = {
    State.RISK_CONTROL: "is in risk control",
    State.MAINTENANCE: "is under maintenance",
    State.UNKNOWN: "has no data (unknown)",
}


class Outcome(StrEnum):
    """The classified result of one probe (or one real generation, fed back passively)."""

    OK = "ok"  # answered correctly in time
    REACHABLE = "reachable"  # no key configured; server answered 401, so it is alive
    SLOW = "slow"  # answered correctly, over the service's slow threshold
    THROTTLED = "throttled"  # 429 / rate-limit wording
    RISK_CONTROL = "risk_control"  # captcha / risk-control / 风控 wording
    UNAVAILABLE = "unavailable"  # 5xx, connection refused, timeout, status page outage
    DEGRADED = "degraded"  # status page: degraded performance / partial outage
    BAD_RESPONSE = "bad_response"  # answered, but garbage (HTML on 200, truncated JSON, too big)
    REFUSED = "refused"  # refused for the account (suspended/banned wording, 402 payment)
    GONE = "gone"  # model_not_found, or past its shutdown_date
    MISCONFIGURED = "misconfigured"  # 401/403: our credentials were rejected
    NOT_CONFIGURED = "not_configured"  # no base URL / key set: never probed
    NETWORK = "network"  # the bot's own network failed (DNS): says nothing about the service
    MAINTENANCE = "maintenance"  # announced maintenance covers the service

    @property
    def is_success(self) -> bool:
        return self in (Outcome.OK, Outcome.REACHABLE, Outcome.SLOW)

    @property
    def is_failure(self) -> bool:
        """A failure of the service itself (not our config, our network, or maintenance)."""
        return not self.is_success and self not in _NO_SIGNAL


# Outcomes that say nothing about the service's own health.
_NO_SIGNAL = frozenset({Outcome.NOT_CONFIGURED, Outcome.MAINTENANCE, Outcome.NETWORK,
                        Outcome.MISCONFIGURED})


@dataclass(frozen=True, slots=True)
class IncidentRef:
    """An incident or maintenance announced on a status page."""

    id: str
    name: str
    status: str
    started_at: datetime | None = None
    ends_at: datetime | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """What a probe saw, before any judgement. Every field is optional but ``latency_ms``."""

    latency_ms: float
    http_status: int | None = None
    exception: str | None = None  # exception class name (httpx2 or SDK), e.g. "ReadTimeout"
    error_code: str | None = None  # e.g. "model_not_found", "rate_limit_exceeded"
    error_message: str | None = None  # short, already scrubbed of secrets
    body_excerpt: str = ""  # first bytes of the body, for wording markers (captcha, 风控, …)
    authenticated: bool = True  # False when no key was configured and none was sent
    not_configured: str | None = None  # why the probe was not run, e.g. "set SORA_RELAY_API_KEY"
    component_status: str | None = None  # status pages: the component's status string
    component_name: str | None = None
    shutdown_date: datetime | None = None  # OpenAI-compatible model metadata
    maintenance: IncidentRef | None = None  # status pages: active maintenance for the component
    incident: IncidentRef | None = None  # status pages: active incident for the component
    upcoming_maintenance: tuple[IncidentRef, ...] = ()  # scheduled, not started yet
    detail: str | None = None  # free text for humans ("model sora-2 listed", "Sora: operational")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """A classified observation of one service at one time; what the store keeps."""

    service: str
    at: datetime
    outcome: Outcome
    latency_ms: float | None
    http_status: int | None = None
    error: str | None = None
    detail: str | None = None
    passive: bool = False  # True when it came from a real generation, not a probe


@dataclass(frozen=True, slots=True)
class Policy:
    """Thresholds of the state step, as data (one per service)."""

    failure_threshold: int = 2
    success_threshold: int = 2
    window: int = 10  # results in the sliding success-rate window
    risk_control_below: float = 0.6  # full-window success rate under this ⇒ risk_control
    suspended_below: float = 0.2  # full-window success rate under this ⇒ suspended
    use_window: bool = True  # False for status pages: they report a state, not a success rate


@dataclass(frozen=True, slots=True)
class Health:
    """The folded state of one service. Counters live here, so ``step`` stays pure."""

    service: str
    state: State = State.UNKNOWN
    since: datetime | None = None
    reason: str = "no data yet"
    fail_streak: tuple[str, ...] = ()  # outcomes of the current run of failures, oldest first
    ok_streak: int = 0
    slow_streak: int = 0
    window: tuple[bool, ...] = ()  # last results, True = success; newest last
    last_checked: datetime | None = None
    last_outcome: Outcome | None = None
    first_bad_at: datetime | None = None  # first failure of the current bad episode
    cause: Outcome | None = None  # the outcome that put the service in ``state``

    @property
    def success_rate(self) -> float | None:
        return sum(self.window) / len(self.window) if self.window else None


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of state. Persisted once; every alert derives from transitions."""

    service: str
    from_state: State
    to_state: State
    at: datetime
    reason: str
    evidence: dict[str, object] = field(default_factory=dict)
    id: int | None = None  # set by the store
