"""A status page on loopback: Statuspage v2, incident.io's shim and native feed, Google Cloud.

One ``SimStatusPage`` serves every feed the probes read, from one scriptable model of components,
incidents and maintenances (plus Google Cloud incidents, which are separate):

- ``GET /api/v2/summary.json`` and ``GET /api/v2/scheduled-maintenances.json`` (Atlassian
  Statuspage v2). With ``incidentio=True`` the summary is incident.io's compatible shim: no
  ``scheduled_maintenances`` key, trimmed incidents, second-precision times; the maintenance feed
  is then 404 (incident.io pages publish maintenance in the native feed).
- ``GET /proxy/{host}/incidents`` (incident.io native feed; only with ``incidentio=True``; any
  host, since a probe pointed at loopback derives it from its base URL).
- ``GET /incidents.json`` (Google Cloud status).

Statuspage feeds say ``major_outage`` where incident.io's native feed says ``full_outage``; either
spelling is accepted and each feed uses its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

from bot.sim.server import LoopbackServer

COMPONENT_STATUSES = frozenset(
    {
        "operational",
        "degraded_performance",
        "partial_outage",
        "major_outage",
        "full_outage",
        "under_maintenance",
    }
)
GCP_SEVERITIES = frozenset({"low", "medium", "high"})
GCP_IMPACTS = frozenset({"SERVICE_INFORMATION", "SERVICE_DISRUPTION", "SERVICE_OUTAGE"})
# Titles of the Google Cloud products the catalog watches (products.json: title, current_title).
GCP_PRODUCTS = {
    "Z0FZJAMvEB4j3NbCJs6B": ("Vertex Gemini API", "Gemini on Agent Platform"),
    "p5rCvyraXdeC6HFE8XJJ": ("Vertex Veo API", "Veo on Agent Platform"),
}

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_GCP_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SEVERITY = {
    "operational": 0,
    "under_maintenance": 1,
    "degraded_performance": 2,
    "partial_outage": 3,
    "major_outage": 4,
    "full_outage": 4,
}
_IMPACT = {0: "none", 1: "maintenance", 2: "minor", 3: "major", 4: "critical"}
_PROXY_STATUS = {
    "scheduled": "maintenance_scheduled",
    "in_progress": "maintenance_in_progress",
    "verifying": "maintenance_in_progress",
    "completed": "maintenance_complete",
}
_GLOBAL = [{"id": "global", "title": "Global"}]


def ulid_like(seed: str) -> str:
    """A stable 26-character Crockford base32 id (ULID-shaped, 128 bits) derived from ``seed``."""
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:16], "big")
    chars = []
    for _ in range(26):
        n, r = divmod(n, 32)
        chars.append(_CROCKFORD[r])
    return "".join(reversed(chars))


def _gcp_id(seed: str) -> str:
    n = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(20):
        n, r = divmod(n, len(_GCP_ALPHABET))
        chars.append(_GCP_ALPHABET[r])
    return "".join(chars)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _z(dt: datetime | None, *, ms: bool = True) -> str | None:
    """Statuspage / incident.io time: ``2026-10-07T21:44:41.466Z`` (``ms=False``: no fraction)."""
    if dt is None:
        return None
    return _utc(dt).isoformat(timespec="milliseconds" if ms else "seconds").replace("+00:00", "Z")


def _gcp_time(dt: datetime) -> str:
    """Google Cloud time: ``2026-09-01T14:44:00+00:00``."""
    return _utc(dt).isoformat(timespec="seconds")


def _check(status: str) -> str:
    if status not in COMPONENT_STATUSES:
        raise ValueError(f"unknown component status {status!r}: {sorted(COMPONENT_STATUSES)}")
    return status


def _statuspage_word(status: str) -> str:
    return "major_outage" if status == "full_outage" else status


def _incidentio_word(status: str) -> str:
    return "full_outage" if status == "major_outage" else status


@dataclass(slots=True)
class _Component:
    id: str
    name: str
    status: str
    position: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class _Update:
    id: str
    status: str
    body: str
    at: datetime
    old_status: str
    new_status: str


@dataclass(slots=True)
class _Impact:
    id: str
    status: str
    start_at: datetime
    end_at: datetime | None


@dataclass(slots=True)
class _Event:
    """An incident or a maintenance affecting one component."""

    id: str
    kind: Literal["incident", "maintenance"]
    name: str
    component: str
    status: str  # Statuspage words: investigating…resolved, in_progress…completed
    created_at: datetime
    updated_at: datetime
    impacts: list[_Impact]
    updates: list[_Update] = field(default_factory=list)  # newest first
    monitoring_at: datetime | None = None
    resolved_at: datetime | None = None
    scheduled_until: datetime | None = None

    @property
    def open(self) -> bool:
        return self.resolved_at is None

    @property
    def worst(self) -> str:
        return max((i.status for i in self.impacts), key=_SEVERITY.__getitem__)


@dataclass(slots=True)
class _GcpIncident:
    id: str
    number: str
    product_id: str
    title: str
    current_title: str
    severity: str
    status_impact: str
    desc: str
    begin: datetime
    end: datetime | None = None
    updates: list[dict[str, Any]] = field(default_factory=list)  # newest first


class SimStatusPage(LoopbackServer):
    """One status page; ``start()`` returns its base URL (``http://127.0.0.1:PORT``)."""

    def __init__(
        self,
        *,
        name: str = "OpenAI",
        components: Iterable[str] = ("Sora",),
        incidentio: bool = False,
        host: str = "status.openai.com",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__()
        self.name = name
        self.incidentio = incidentio
        self.host = host
        self.page_id = ulid_like(f"page:{name}")
        self._clock = clock
        self._created = _utc(clock())
        self._updated = self._created
        self._components: dict[str, _Component] = {}
        self._events: dict[str, _Event] = {}
        self._gcp: dict[str, _GcpIncident] = {}
        for component in components:
            self._component(component)

    # -- scripting: components, incidents, maintenances ---------------------------------------

    def component_id(self, name: str) -> str:
        """The stable id of component ``name`` (created operational if new)."""
        return self._component(name).id

    def set_component(self, name: str, status: str, *, now: datetime | None = None) -> None:
        """Set a component's status (operational, degraded_performance, partial_outage,
        major_outage/full_outage, under_maintenance); unknown names are added."""
        component = self._component(name)
        component.status = _check(status)
        component.updated_at = self._touch(now)

    def open_incident(
        self,
        name: str,
        component: str,
        status: str = "partial_outage",
        now: datetime | None = None,
        *,
        incident_status: str = "investigating",
        message: str = "We are investigating the issue for the listed services.",
    ) -> str:
        """Open an incident that puts ``component`` in ``status``; return the incident id."""
        at = self._now(now)
        n = len(self._events) + 1
        event_id = ulid_like(f"incident:{n}:{name}")
        old = self._component(component).status
        event = _Event(
            id=event_id,
            kind="incident",
            name=name,
            component=component,
            status=incident_status,
            created_at=at,
            updated_at=at,
            impacts=[_Impact(ulid_like(f"impact:{event_id}:0"), _check(status), at, None)],
        )
        self._events[event_id] = event
        self._add_update(event, incident_status, message, at, old, status)
        self.set_component(component, status, now=at)
        return event_id

    def update_incident(
        self,
        incident_id: str,
        incident_status: str,
        *,
        message: str = "We are continuing to work on a fix for this issue.",
        component_status: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Post an update (identified, monitoring…), optionally changing the component's status."""
        event = self._events[incident_id]
        at = self._now(now)
        old = self._component(event.component).status
        new = _check(component_status) if component_status else old
        if new != old:
            event.impacts[-1].end_at = at
            impact_id = ulid_like(f"impact:{event.id}:{len(event.impacts)}")
            event.impacts.append(_Impact(impact_id, new, at, None))
            self.set_component(event.component, new, now=at)
        if incident_status == "monitoring" and event.monitoring_at is None:
            event.monitoring_at = at
        event.status = incident_status
        self._add_update(event, incident_status, message, at, old, new)

    def resolve_incident(
        self,
        incident_id: str,
        now: datetime | None = None,
        *,
        message: str = "This incident has been resolved.",
    ) -> None:
        """Resolve an incident; its component goes back to operational."""
        self._close(incident_id, "resolved", message, now)

    def start_maintenance(
        self,
        component: str,
        name: str,
        now: datetime | None = None,
        until: datetime | None = None,
        *,
        message: str = "Scheduled maintenance is currently in progress.",
    ) -> str:
        """Put ``component`` under maintenance (scheduled until ``until``); return the id."""
        at = self._now(now)
        n = len(self._events) + 1
        event_id = ulid_like(f"maintenance:{n}:{name}")
        old = self._component(component).status
        end = _utc(until) if until is not None else None
        event = _Event(
            id=event_id,
            kind="maintenance",
            name=name,
            component=component,
            status="in_progress",
            created_at=at,
            updated_at=at,
            impacts=[_Impact(ulid_like(f"impact:{event_id}:0"), "under_maintenance", at, end)],
            scheduled_until=end,
        )
        self._events[event_id] = event
        self._add_update(event, "in_progress", message, at, old, "under_maintenance")
        self.set_component(component, "under_maintenance", now=at)
        return event_id

    def end_maintenance(
        self,
        maintenance_id: str,
        now: datetime | None = None,
        *,
        message: str = "The scheduled maintenance has been completed.",
    ) -> None:
        """Complete a maintenance; its component goes back to operational."""
        self._close(maintenance_id, "completed", message, now)

    # -- scripting: Google Cloud ---------------------------------------------------------------

    def open_gcp_incident(
        self,
        product_id: str,
        severity: str = "high",
        status_impact: str = "SERVICE_OUTAGE",
        desc: str = "We are investigating elevated error rates.",
        begin: datetime | None = None,
        *,
        title: str | None = None,
    ) -> str:
        """Open a Google Cloud incident on ``product_id`` (no ``end`` until closed)."""
        if severity not in GCP_SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}: {sorted(GCP_SEVERITIES)}")
        if status_impact not in GCP_IMPACTS:
            raise ValueError(f"unknown status_impact {status_impact!r}: {sorted(GCP_IMPACTS)}")
        at = self._now(begin)
        n = len(self._gcp) + 1
        fallback = title or product_id
        old_title, current = GCP_PRODUCTS.get(product_id, (fallback, fallback))
        incident = _GcpIncident(
            id=_gcp_id(f"gcp:{n}:{product_id}"),
            number=str(int(hashlib.sha256(f"gcp:{n}".encode()).hexdigest(), 16) % 10**19),
            product_id=product_id,
            title=title or old_title,
            current_title=title or current,
            severity=severity,
            status_impact=status_impact,
            desc=desc,
            begin=at,
        )
        first = _gcp_update(status_impact, f"Summary: {desc}", at, list(_GLOBAL))
        incident.updates.insert(0, first)
        self._gcp[incident.id] = incident
        return incident.id

    def close_gcp_incident(
        self,
        incident_id: str,
        end: datetime | None = None,
        *,
        text: str = "The issue has been resolved for all affected users.",
    ) -> None:
        """Close a Google Cloud incident: ``end`` is set and the latest update says AVAILABLE."""
        incident = self._gcp[incident_id]
        at = self._now(end)
        incident.end = at
        incident.updates.insert(0, _gcp_update("AVAILABLE", text, at, []))

    # -- internals -----------------------------------------------------------------------------

    def _now(self, now: datetime | None) -> datetime:
        return _utc(now) if now is not None else _utc(self._clock())

    def _touch(self, now: datetime | None) -> datetime:
        at = self._now(now)
        self._updated = max(self._updated, at)
        return at

    def _component(self, name: str) -> _Component:
        component = self._components.get(name)
        if component is None:
            component = _Component(
                id=ulid_like(name),
                name=name,
                status="operational",
                position=len(self._components) + 1,
                created_at=self._created,
                updated_at=self._created,
            )
            self._components[name] = component
        return component

    def _add_update(
        self, event: _Event, status: str, body: str, at: datetime, old: str, new: str
    ) -> None:
        update_id = ulid_like(f"update:{event.id}:{len(event.updates)}")
        event.updates.insert(0, _Update(update_id, status, body, at, old, new))
        event.updated_at = at
        self._touch(at)

    def _close(self, event_id: str, status: str, message: str, now: datetime | None) -> None:
        event = self._events[event_id]
        at = self._now(now)
        old = self._component(event.component).status
        event.impacts[-1].end_at = at
        event.status = status
        event.resolved_at = at
        self._add_update(event, status, message, at, old, "operational")
        self.set_component(event.component, "operational", now=at)

    # -- app -----------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder()])
        app.router.add_get("/api/v2/summary.json", self._summary)
        app.router.add_get("/api/v2/scheduled-maintenances.json", self._maintenances)
        app.router.add_get("/proxy/{host}/incidents", self._proxy_incidents)
        app.router.add_get("/incidents.json", self._gcp_incidents)
        return app

    async def _summary(self, request: web.Request) -> web.StreamResponse:
        indicator, description = self._indicator()
        body: dict[str, Any] = {
            "page": self._page(),
            "components": [self._component_json(c) for c in self._components.values()],
            "incidents": [self._event_json(e) for e in self._newest("incident") if e.open],
            "status": {"indicator": indicator, "description": description},
        }
        if not self.incidentio:
            body["scheduled_maintenances"] = [
                self._event_json(e) for e in self._newest("maintenance") if e.open
            ]
        return web.json_response(body)

    async def _maintenances(self, request: web.Request) -> web.StreamResponse:
        if self.incidentio:
            raise web.HTTPNotFound()
        events = [self._event_json(e) for e in self._newest("maintenance")]
        return web.json_response({"page": self._page(), "scheduled_maintenances": events})

    async def _proxy_incidents(self, request: web.Request) -> web.StreamResponse:
        if not self.incidentio:
            raise web.HTTPNotFound()
        events = sorted(self._events.values(), key=lambda e: e.created_at, reverse=True)
        return web.json_response({"incidents": [self._proxy_json(e) for e in events]})

    async def _gcp_incidents(self, request: web.Request) -> web.StreamResponse:
        incidents = sorted(self._gcp.values(), key=lambda i: i.begin, reverse=True)
        return web.json_response([_gcp_json(i) for i in incidents])

    # -- JSON shapes ---------------------------------------------------------------------------

    def _newest(self, kind: str) -> list[_Event]:
        events = [e for e in self._events.values() if e.kind == kind]
        return sorted(events, key=lambda e: e.created_at, reverse=True)

    def _page(self) -> dict[str, Any]:
        page: dict[str, Any] = {
            "id": self.page_id,
            "name": self.name,
            "url": f"https://{self.host}" + ("/" if self.incidentio else ""),
            "updated_at": _z(self._updated, ms=not self.incidentio),
        }
        if not self.incidentio:
            page["time_zone"] = "Etc/UTC"
        return page

    def _indicator(self) -> tuple[str, str]:
        levels = [_SEVERITY[c.status] for c in self._components.values()]
        worst = max(levels, default=0)
        if worst == 4:
            if all(level == 4 for level in levels):
                return "critical", "Major System Outage"
            return "major", "Partial System Outage"
        if worst == 3:
            return "minor", "Minor Service Outage"
        if worst == 2:
            if self.incidentio:
                return "minor", "Partial System Degradation"
            return "minor", "Partially Degraded Service"
        if worst == 1:
            return "maintenance", "Service Under Maintenance"
        return "none", "All Systems Operational"

    def _component_json(self, c: _Component) -> dict[str, Any]:
        ms = not self.incidentio
        body: dict[str, Any] = {
            "id": c.id,
            "name": c.name,
            "status": _statuspage_word(c.status),
            "created_at": _z(c.created_at, ms=ms),
            "updated_at": _z(c.updated_at, ms=ms),
            "position": c.position,
            "page_id": self.page_id,
        }
        if not self.incidentio:
            body |= {
                "description": None,
                "showcase": True,
                "group_id": None,
                "group": False,
                "only_show_if_degraded": False,
                "start_date": c.created_at.date().isoformat(),
            }
        return body

    def _event_json(self, e: _Event) -> dict[str, Any]:
        """A Statuspage incident or scheduled maintenance (incident.io shim: trimmed)."""
        ms = not self.incidentio
        impact = "maintenance" if e.kind == "maintenance" else _IMPACT[_SEVERITY[e.worst]]
        updates = [self._update_json(e, u) for u in e.updates]
        body: dict[str, Any] = {
            "id": e.id,
            "name": e.name,
            "status": e.status,
            "created_at": _z(e.created_at, ms=ms),
            "updated_at": _z(e.updated_at, ms=ms),
            "impact": impact,
            "page_id": self.page_id,
            "incident_updates": updates,
        }
        if self.incidentio:
            return body
        body |= {
            "monitoring_at": _z(e.monitoring_at),
            "resolved_at": _z(e.resolved_at),
            "shortlink": f"https://stspg.io/{e.id[-12:].lower()}",
            "started_at": _z(e.created_at),
            "components": [self._component_json(self._component(e.component))],
        }
        if e.kind == "maintenance":
            body["scheduled_for"] = _z(e.created_at)
            body["scheduled_until"] = _z(e.scheduled_until)
        return body

    def _update_json(self, e: _Event, u: _Update) -> dict[str, Any]:
        ms = not self.incidentio
        at = _z(u.at, ms=ms)
        body: dict[str, Any] = {
            "id": u.id,
            "status": u.status,
            "body": u.body,
            "incident_id": e.id,
            "created_at": at,
            "updated_at": at,
            "display_at": at,
        }
        if not self.incidentio:
            body |= {
                "affected_components": [
                    {
                        "code": self._component(e.component).id,
                        "name": e.component,
                        "old_status": _statuspage_word(u.old_status),
                        "new_status": _statuspage_word(u.new_status),
                    }
                ],
                "deliver_notifications": True,
                "custom_tweet": None,
                "tweet_id": None,
            }
        return body

    def _proxy_json(self, e: _Event) -> dict[str, Any]:
        """An incident.io native feed entry."""
        component = self._component(e.component)
        status = _PROXY_STATUS.get(e.status, e.status)
        end = max((i.end_at for i in e.impacts if i.end_at), default=None) if not e.open else None
        return {
            "id": e.id,
            "name": e.name,
            "status": status,
            "published_at": _z(e.created_at),
            "type": e.kind,
            "status_page_id": self.page_id,
            "affected_components": [
                {
                    "component_id": component.id,
                    "status": _incidentio_word(e.worst),
                    "current_status": _incidentio_word(component.status),
                }
            ],
            "component_impacts": [
                {
                    "id": i.id,
                    "component_id": component.id,
                    "status_page_incident_id": e.id,
                    "status": _incidentio_word(i.status),
                    "start_at": _z(i.start_at),
                    "end_at": _z(i.end_at),
                }
                for i in e.impacts
            ],
            "status_summaries": [
                {
                    "start_at": _z(e.created_at),
                    "end_at": _z(end),
                    "worst_component_status": _incidentio_word(e.worst),
                }
            ],
            "updates": [
                {
                    "id": u.id,
                    "to_status": _PROXY_STATUS.get(u.status, u.status),
                    "message_string": u.body,
                    "published_at": _z(u.at),
                    "component_statuses": [
                        {"component_id": component.id, "status": _incidentio_word(u.new_status)}
                    ],
                    "automated_update": False,
                }
                for u in e.updates
            ],
        }


def _gcp_update(
    status: str, text: str, at: datetime, locations: list[dict[str, str]]
) -> dict[str, Any]:
    when = _gcp_time(at)
    return {
        "created": when,
        "modified": when,
        "when": when,
        "text": text,
        "status": status,
        "affected_locations": locations,
    }


def _gcp_json(i: _GcpIncident) -> dict[str, Any]:
    """A Google Cloud ``incidents.json`` entry; ``end`` is absent while the incident is open."""
    body: dict[str, Any] = {
        "id": i.id,
        "number": i.number,
        "begin": _gcp_time(i.begin),
        "created": _gcp_time(i.begin),
        "modified": i.updates[0]["modified"],
        "external_desc": i.desc,
        "updates": i.updates,
        "most_recent_update": i.updates[0],
        "status_impact": i.status_impact,
        "severity": i.severity,
        "service_key": i.product_id,
        "service_name": i.title,
        "affected_products": [
            {"title": i.title, "id": i.product_id, "current_title": i.current_title}
        ],
        "uri": f"incidents/{i.id}",
        "currently_affected_locations": [] if i.end else list(_GLOBAL),
        "previously_affected_locations": list(_GLOBAL) if i.end else [],
    }
    if i.end is not None:
        body["end"] = _gcp_time(i.end)
    return body
