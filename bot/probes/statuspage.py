"""Atlassian Statuspage v2 probe: one component of ``/api/v2/summary.json``.

The summary carries components, unresolved incidents and (on real Statuspage pages) scheduled
maintenances, so one GET is enough; incident.io's Statuspage shim omits ``scheduled_maintenances``
and nothing else is fetched for it. The parse functions are pure and reused by ``incidentio``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx2

from bot.config import ServiceConfig
from bot.models import IncidentRef, Observation
from bot.probes.http import (
    Clock,
    Fetched,
    as_text,
    dicts,
    fetch,
    join_url,
    parse_timestamp,
    read_feed,
)

# Worst last. "full_outage" is incident.io's word; Statuspage says "major_outage".
STATUS_ORDER: tuple[str, ...] = ("operational", "under_maintenance", "degraded_performance",
                                 "partial_outage", "major_outage", "full_outage")
_IMPACT_ORDER = {"critical": 4, "major": 3, "minor": 2, "maintenance": 1, "none": 0}
_CLOSED = ("resolved", "postmortem", "completed")
_ACTIVE_MAINTENANCE = ("in_progress", "verifying")
_NAMES_SHOWN = 200  # characters of component names listed when a component is not found


@dataclass(frozen=True, slots=True)
class ComponentView:
    """One component of a status page, with what is announced for it."""

    status: str | None  # None when the component was not found
    component_id: str | None = None
    name: str | None = None  # the page's name; the query itself when not found
    incidents: tuple[IncidentRef, ...] = ()  # unresolved, worst impact first
    page_wide: bool = False  # incidents name no specific (non-operational) component
    maintenance: IncidentRef | None = None  # in progress now
    upcoming: tuple[IncidentRef, ...] = ()  # scheduled
    detail: str = ""

    @property
    def incident(self) -> IncidentRef | None:
        return self.incidents[0] if self.incidents else None


def status_rank(status: str | None) -> int:
    """Severity of a component status (higher is worse; unknown strings rank as -1)."""
    return STATUS_ORDER.index(status) if status in STATUS_ORDER else -1


def worst_status(*statuses: str | None) -> str | None:
    """The worst of ``statuses`` by ``STATUS_ORDER`` (None when all are None)."""
    present = [s for s in statuses if s]
    return max(present, key=status_rank) if present else None


def parse_summary(data: dict[str, Any], component: str) -> ComponentView:
    """The component named (case-insensitively) or identified by ``component``, with incidents.

    An incident belongs to the component when its ``components`` list the component's id. When
    none does and the component is not operational, unresolved incidents that single out no
    non-operational component (no components, or only operational ones, as on the incident.io
    shim and GitHub's page-wide incidents) are attached instead, flagged ``page_wide``.
    """
    components = dicts(data.get("components"))
    match = find_component(components, component)
    if match is None:
        return ComponentView(status=None, name=component,
                             detail=not_found_detail(component, components))
    cid = as_text(match.get("id"))
    name = as_text(match.get("name")) or component
    status = as_text(match.get("status"))
    current = {as_text(c.get("id")): as_text(c.get("status")) for c in components}
    unresolved = [i for i in dicts(data.get("incidents")) if _unresolved(i)]
    listed = [i for i in unresolved if cid in _component_ids(i)]
    page_wide = False
    if not listed and status not in (None, "operational"):
        listed = [i for i in unresolved if as_text(i.get("impact")) != "none"
                  and all(current.get(as_text(c.get("id"))) in (None, "operational")
                          for c in dicts(i.get("components")))]
        page_wide = bool(listed)
    listed.sort(key=lambda i: _IMPACT_ORDER.get(as_text(i.get("impact")) or "", 0), reverse=True)
    incidents = tuple(incident_ref(i) for i in listed)
    active, upcoming = parse_scheduled_maintenances(data, cid)
    view = ComponentView(status=status, component_id=cid, name=name, incidents=incidents,
                         page_wide=page_wide, maintenance=active[0] if active else None,
                         upcoming=tuple(upcoming))
    return replace(view, detail=describe(view))


def parse_scheduled_maintenances(data: dict[str, Any], component_id: str | None
                                 ) -> tuple[list[IncidentRef], list[IncidentRef]]:
    """``(active, upcoming)`` maintenances listing ``component_id`` (or listing no component).

    Works on ``summary.json`` and ``scheduled-maintenances.json`` alike. "in_progress" and
    "verifying" are active; "scheduled" is upcoming. Times are the announced window
    (``scheduled_for`` → ``started_at``, ``scheduled_until`` → ``ends_at``).
    """
    active: list[IncidentRef] = []
    upcoming: list[IncidentRef] = []
    if component_id is None:
        return active, upcoming
    for entry in dicts(data.get("scheduled_maintenances")):
        ids = _component_ids(entry)
        if ids and component_id not in ids:
            continue
        status = as_text(entry.get("status"))
        ref = IncidentRef(
            id=as_text(entry.get("id")) or "", name=as_text(entry.get("name")) or "maintenance",
            status=status or "", started_at=parse_timestamp(entry.get("scheduled_for")),
            ends_at=parse_timestamp(entry.get("scheduled_until")),
            url=as_text(entry.get("shortlink")))
        if status in _ACTIVE_MAINTENANCE:
            active.append(ref)
        elif status == "scheduled":
            upcoming.append(ref)
    upcoming.sort(key=lambda r: r.started_at.timestamp() if r.started_at else float("inf"))
    return active, upcoming


def find_component(components: list[dict[str, Any]], component: str) -> dict[str, Any] | None:
    """The component whose id is ``component``, else the first whose name matches (casefold)."""
    wanted = component.strip()
    for c in components:
        if as_text(c.get("id")) == wanted:
            return c
    folded = wanted.casefold()
    for c in components:
        if (as_text(c.get("name")) or "").strip().casefold() == folded:
            return c
    return None


def not_found_detail(component: str, components: list[dict[str, Any]]) -> str:
    """"component 'X' not found; available: a, b, c, …" (names truncated)."""
    names = [n for c in components if (n := as_text(c.get("name")))]
    if not names:
        return f"component {component!r} not found; the page lists no components"
    shown: list[str] = []
    for n in names:
        if shown and len(", ".join([*shown, n])) > _NAMES_SHOWN:
            break
        shown.append(n)
    more = len(names) - len(shown)
    tail = f", … (+{more} more)" if more else ""
    return f"component {component!r} not found; available: {', '.join(shown)}{tail}"


def incident_ref(incident: dict[str, Any]) -> IncidentRef:
    """A Statuspage incident as an ``IncidentRef``."""
    return IncidentRef(
        id=as_text(incident.get("id")) or "", name=as_text(incident.get("name")) or "incident",
        status=as_text(incident.get("status")) or "",
        started_at=parse_timestamp(incident.get("started_at") or incident.get("created_at")),
        url=as_text(incident.get("shortlink")))


def describe(view: ComponentView) -> str:
    """"Sora: degraded_performance — <incident name>" and what is scheduled."""
    text = f"{view.name}: {view.status or 'unknown'}"
    if view.incident is not None:
        text += f" — {view.incident.name}"
        if view.page_wide:
            text += " (page-wide incident)"
        if len(view.incidents) > 1:
            text += f" (+{len(view.incidents) - 1} more)"
    if view.maintenance is not None:
        text += f" — maintenance in progress: {view.maintenance.name}"
    if view.upcoming:
        nxt = view.upcoming[0]
        when = f" at {nxt.started_at:%Y-%m-%d %H:%M} UTC" if nxt.started_at else ""
        text += f"; maintenance scheduled: {nxt.name}{when}"
    return text


async def probe_statuspage(service: ServiceConfig, *, client: httpx2.AsyncClient, now: datetime,
                           clock: Clock = time.perf_counter) -> Observation:
    """Probe one Statuspage component via ``{base}/api/v2/summary.json``."""
    if service.base_url is None or service.component is None:
        return Observation(latency_ms=0.0, not_configured=service.missing or "set component")
    fetched = await fetch(client, summary_url(service.base_url), timeout=service.timeout,
                          max_bytes=service.max_body_bytes, clock=clock,
                          headers={"Accept": "application/json"})
    view = read_summary(fetched, component=service.component)
    if isinstance(view, Observation):
        return view
    return view_observation(view, latency_ms=fetched.latency_ms, http_status=fetched.status)


def summary_url(base_url: str) -> str:
    return join_url(base_url, "api/v2/summary.json")


def read_summary(fetched: Fetched, *, component: str) -> ComponentView | Observation:
    """The component view, or the observation of why the summary could not be read."""
    data, failure = read_feed(
        fetched, valid=lambda d: isinstance(d, dict) and isinstance(d.get("components"), list),
        expected="a Statuspage summary (an object with 'components')")
    return failure if failure is not None else parse_summary(data, component)


def view_observation(view: ComponentView, *, latency_ms: float, http_status: int | None,
                     detail: str | None = None) -> Observation:
    """The observation of a parsed component (no body excerpt: incident titles are not markers)."""
    return Observation(
        latency_ms=latency_ms, http_status=http_status, component_status=view.status,
        component_name=view.name, incident=view.incident, maintenance=view.maintenance,
        upcoming_maintenance=view.upcoming, detail=detail or view.detail)


def _unresolved(incident: dict[str, Any]) -> bool:
    return (as_text(incident.get("status")) not in _CLOSED
            and not incident.get("resolved_at"))


def _component_ids(entry: dict[str, Any]) -> set[str | None]:
    return {as_text(c.get("id")) for c in dicts(entry.get("components"))}
