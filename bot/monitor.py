"""The probe cycle: every due probe concurrently (bounded), classified, folded, persisted, emitted.

Persisting the probe row, the new health and the transition happens in one transaction per
result, so a restart resumes from exactly the counters it stopped at: no transition is repeated or
lost. Alerts are then fanned out from the stored transitions into the outbox and posted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx2

from bot.alerts import Alerts
from bot.classify import Context, classify
from bot.config import PAGE_KINDS, ServiceConfig, Settings
from bot.metrics import Metrics
from bot.models import Health, Observation, Outcome, ProbeResult, State, Transition
from bot.outbox import Outbox
from bot.probes import run_probe
from bot.redact import Redactor
from bot.state import step
from bot.store import Store

log = logging.getLogger(__name__)

# A maintenance window explains failures, but not a retired model or our own misconfiguration.
_MAINTENANCE_KEEPS = frozenset({Outcome.NOT_CONFIGURED, Outcome.GONE, Outcome.MISCONFIGURED,
                                Outcome.NETWORK})

# States a status-page incident can confirm (a retired model is not an incident).
_INCIDENT_STATES = frozenset({State.DEGRADED, State.RISK_CONTROL, State.SUSPENDED})

Probe = Callable[..., Awaitable[Observation]]
Clock = Callable[[], datetime]


@dataclass(slots=True)
class CycleReport:
    """What one cycle did (the CLI's ``probe --json`` prints it)."""

    started_at: datetime
    wall_seconds: float = 0.0
    results: list[ProbeResult] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    delivered: int = 0


class Monitor:
    """Runs probe cycles. Everything it touches is injected: store, HTTP client, chat, clock."""

    def __init__(self, *, settings: Settings, store: Store, client: httpx2.AsyncClient,
                 outbox: Outbox | None, clock: Clock, redactor: Redactor,
                 metrics: Metrics | None = None, probe: Probe = run_probe,
                 remind_every: timedelta | None = None) -> None:
        """``outbox`` None: transitions stay pending for a bot with chat (probing only)."""
        self._services = tuple(s for s in settings.services if s.enabled)
        self._by_id = {s.id: s for s in self._services}
        self._store = store
        self._client = client
        self._outbox = outbox
        self.alerts = Alerts(store=store, names=self.names, remind_every=remind_every)
        self._clock = clock
        self._redact = redactor
        self._metrics = metrics
        self._probe = probe
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._health: dict[str, Health] = store.all_health()
        self._lock = asyncio.Lock()
        self.last_cycle_at: datetime | None = None

    @property
    def names(self) -> dict[str, str]:
        return {s.id: s.name for s in self._services}

    def due(self, now: datetime) -> list[ServiceConfig]:
        """Services whose interval has elapsed since they were last checked."""
        out = []
        for s in self._services:
            last = self._health.get(s.id, Health(service=s.id)).last_checked
            if last is None or (now - last).total_seconds() >= s.interval - 0.001:
                out.append(s)
        return out

    async def run_cycle(self, *, force: bool = False) -> CycleReport:
        """Probe what is due (everything with ``force``), persist, then post pending alerts."""
        async with self._lock:
            now = self._clock()
            report = CycleReport(started_at=now)
            started = time.perf_counter()
            services = list(self._services) if force else self.due(now)
            observations = await asyncio.gather(*(self._observe(s, now) for s in services))
            for svc, obs in zip(services, observations, strict=True):
                result, transition = self._fold(svc, obs, now)
                report.results.append(result)
                if transition is not None:
                    report.transitions.append(transition)
            report.wall_seconds = time.perf_counter() - started
            report.delivered = await self.deliver()
            self.last_cycle_at = self._clock()
            if self._metrics:
                self._metrics.cycle_seconds.set(report.wall_seconds)
                self._metrics.last_cycle.set(self.last_cycle_at.timestamp())
            return report

    def record_passive(self, service_id: str, obs: Observation) -> Transition | None:
        """Fold what a real generation saw into the service's state, like a probe result
        (marked passive: it counts for the state and uptime, not for probe latency)."""
        svc = self._by_id.get(service_id)
        if svc is None:
            return None
        _, transition = self._fold(svc, obs, self._clock(), passive=True)
        return transition

    def health(self) -> dict[str, Health]:
        """The current health of every service (a copy)."""
        return dict(self._health)

    async def deliver(self) -> int:
        """Hand pending transitions, reminders and notices to the outbox; post what is due."""
        if self._outbox is None:
            return 0
        self.alerts.enqueue(self._clock())
        return await self._outbox.flush()

    async def _observe(self, svc: ServiceConfig, now: datetime) -> Observation:
        async with self._limit:
            try:
                return await self._probe(svc, client=self._client, now=now)
            except Exception as e:  # a probe bug must not take the cycle down
                log.exception("probe %s crashed", svc.id)
                return Observation(latency_ms=0.0, exception=type(e).__name__,
                                   error_message="probe crashed (see the bot's log)")

    def _fold(self, svc: ServiceConfig, obs: Observation, now: datetime, *,
              passive: bool = False) -> tuple[ProbeResult, Transition | None]:
        verdict = classify(obs, Context(now=now, slow_ms=svc.slow_ms,
                                        shutdown_date=svc.shutdown_date))
        outcome, reason = verdict.outcome, verdict.reason
        if svc.kind in PAGE_KINDS:
            self._sync_page_maintenance(svc, obs, now)
        window = self._store.active_maintenance(svc.id, now)
        if window and outcome not in _MAINTENANCE_KEEPS and (
                any(w.source == "admin" for w in window) or not outcome.is_success):
            outcome, reason = Outcome.MAINTENANCE, f"maintenance: {window[0].reason}"
        result = ProbeResult(
            service=svc.id, at=now, outcome=outcome,
            latency_ms=None if obs.not_configured else obs.latency_ms,
            http_status=obs.http_status,
            error=None if outcome.is_success else self._redact(reason),
            detail=self._redact(obs.detail if outcome.is_success else reason), passive=passive)
        previous = self._health.get(svc.id, Health(service=svc.id))
        health, transition = step(previous, result, svc.policy, now)
        stored = self._store.record(result, health, transition)
        self._health[svc.id] = health
        if stored is not None and svc.kind in PAGE_KINDS and stored.to_state.is_bad:
            self._record_leads(svc, obs, stored)
        if self._metrics:
            self._metrics.observe(result, health.state, stored)
        if stored is not None:
            log.info("%s: %s → %s (%s)", svc.id, stored.from_state.value,
                     stored.to_state.value, stored.reason)
        return result, stored

    def _sync_page_maintenance(self, svc: ServiceConfig, obs: Observation, now: datetime
                               ) -> None:
        """Announced maintenance covers the page's component and the services it speaks for."""
        source = f"statuspage:{svc.id}"
        windows = [m for m in (obs.maintenance, *obs.upcoming_maintenance) if m is not None]
        for m in windows:
            for target in (svc.id, *svc.covers):
                self._store.add_maintenance(
                    target, m.started_at or now, m.ends_at, self._redact(m.name) or "",
                    source, external_id=m.id)
        if obs.maintenance is None and obs.http_status is not None and obs.exception is None:
            for target in (svc.id, *svc.covers):
                self._store.end_maintenance(target, now, source=source)

    def _record_leads(self, svc: ServiceConfig, obs: Observation, t: Transition) -> None:
        """The page confirmed an incident: did one of the services it covers go bad first?"""
        confirmed = (obs.incident.started_at if obs.incident and obs.incident.started_at
                     else t.at)
        incident_id = obs.incident.id if obs.incident else f"{svc.id}@{t.at.isoformat()}"
        name = obs.incident.name if obs.incident else t.reason
        for covered in svc.covers:
            h = self._health.get(covered)
            if h is None or h.state not in _INCIDENT_STATES or h.first_bad_at is None:
                continue
            if timedelta(0) < confirmed - h.first_bad_at <= timedelta(hours=12):
                self._store.record_detection_lead(covered, incident_id, self._redact(name) or "",
                                                  h.first_bad_at, confirmed)
