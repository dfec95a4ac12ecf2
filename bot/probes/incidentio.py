"""incident.io status pages (status.openai.com): the Statuspage shim plus the native feed.

Step 1: ``GET {base}/api/v2/summary.json`` — the component by name or id (``statuspage``).
Step 2: ``GET {base}/proxy/{host}/incidents`` — the native feed, which names statuses the shim
flattens (``full_outage``) and keeps impact windows. The worse of the two statuses wins. When
step 2 fails, step 1's result stands and the detail says so.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx2

from bot.config import ServiceConfig
from bot.models import IncidentRef, Observation
from bot.probes.http import (
    Clock,
    as_text,
    dicts,
    fetch,
    join_url,
    parse_timestamp,
    read_feed,
)
from bot.probes.statuspage import (
    ComponentView,
    describe,
    read_summary,
    status_rank,
    summary_url,
    view_observation,
    worst_status,
)

_TERMINAL = ("resolved", "maintenance_complete", "postmortem")
_MIN_STEP_SECONDS = 0.05  # below this much time left, the feed is not fetched


async def probe_incidentio(service: ServiceConfig, *, client: httpx2.AsyncClient, now: datetime,
                           clock: Clock = time.perf_counter) -> Observation:
    """Probe one incident.io component (see module docstring); both steps share one deadline."""
    if service.base_url is None or service.component is None:
        return Observation(latency_ms=0.0, not_configured=service.missing or "set component")
    start = clock()
    headers = {"Accept": "application/json"}
    summary = await fetch(client, summary_url(service.base_url), headers=headers,
                          timeout=service.timeout, max_bytes=service.max_body_bytes, clock=clock)
    view = read_summary(summary, component=service.component)
    if isinstance(view, Observation):
        return view
    remaining = service.timeout - (clock() - start)
    note: str | None
    incident = maintenance = None
    feed_status = None
    if remaining < _MIN_STEP_SECONDS:
        note = "incidents feed skipped: out of time"
    else:
        feed = await fetch(client, proxy_url(service.base_url), headers=headers,
                           timeout=remaining, max_bytes=service.max_body_bytes, clock=clock)
        data, failure = read_feed(
            feed, valid=lambda d: isinstance(d, dict) and isinstance(d.get("incidents"), list),
            expected="an incidents feed")
        note = None
        if failure is None:
            incident, maintenance, feed_status = parse_proxy_incidents(
                data, view.component_id or service.component, now,
                page_url=service.base_url.rstrip("/"))
        elif feed.exception is not None:
            note = f"incidents feed unavailable: {feed.exception}"
        elif not feed.ok:
            note = f"incidents feed unavailable: HTTP {feed.status}"
        else:
            note = "incidents feed unavailable: unexpected payload"
    merged = merge(view, incident=incident, maintenance=maintenance, feed_status=feed_status)
    detail = merged.detail if note is None else f"{merged.detail}; {note}"
    return view_observation(merged, latency_ms=(clock() - start) * 1000.0,
                            http_status=summary.status, detail=detail)


def proxy_url(base_url: str) -> str:
    """``{base}/proxy/{host}/incidents``, e.g. …/proxy/status.openai.com/incidents."""
    return join_url(base_url, "proxy", httpx2.URL(base_url).host, "incidents")


def merge(view: ComponentView, *, incident: IncidentRef | None,
          maintenance: IncidentRef | None, feed_status: str | None) -> ComponentView:
    """The shim's view with the feed's findings: worse status wins, the feed's refs lead."""
    if view.status is None and feed_status is None:
        return view  # not found, and the feed knows nothing either: keep "not found" detail
    merged = replace(
        view,
        status=worst_status(view.status, feed_status),
        incidents=((incident, *view.incidents) if incident is not None else view.incidents),
        page_wide=view.page_wide and incident is None,
        maintenance=maintenance or view.maintenance,
        name=view.name or view.component_id,
    )
    return replace(merged, detail=describe(merged))


def parse_proxy_incidents(data: dict[str, Any], component_id: str, now: datetime, *,
                          page_url: str | None = None
                          ) -> tuple[IncidentRef | None, IncidentRef | None, str | None]:
    """``(incident, maintenance, worst_status)`` active at ``now`` for ``component_id``.

    An entry concerns the component when its ``component_impacts``, ``affected_components`` or
    ``updates[].component_statuses`` name it. An incident is active when its status is not
    resolved/maintenance_complete/postmortem, or when one of the component's impacts covers
    ``now`` (started, and ``end_at`` after ``now``; a null ``end_at`` counts only while the entry
    is open). A maintenance (``type`` "maintenance", a ``maintenance_*`` status or an
    ``under_maintenance`` impact) is active when "maintenance_in_progress" or an impact covers
    ``now``; announced-but-future windows are not active. The component's status is the worst of
    the covering impacts, else of ``affected_components``, else of any impact or update. When
    several are active the worst (then the latest published) is returned.
    """
    best: tuple[int, float, IncidentRef] | None = None
    maintenance: IncidentRef | None = None
    statuses: list[str] = []
    for entry in dicts(data.get("incidents")):
        impacts = _for(entry.get("component_impacts"), component_id)
        affected = _for(entry.get("affected_components"), component_id)
        updated = [cs for u in dicts(entry.get("updates"))
                   for cs in _for(u.get("component_statuses"), component_id)]
        if not (impacts or affected or updated):
            continue
        status = as_text(entry.get("status")) or ""
        open_entry = status not in _TERMINAL
        covering = [i for i in impacts if _covers(i, now, open_ended=open_entry)]
        is_maintenance = (as_text(entry.get("type")) == "maintenance"
                          or status.startswith("maintenance_")
                          or "under_maintenance" in _statuses(impacts + affected + updated))
        if is_maintenance:
            active = status == "maintenance_in_progress" or bool(covering)
        else:
            active = open_entry or bool(covering)
        if not active:
            continue
        component_status = (worst_status(*_statuses(covering)) or worst_status(*_statuses(affected))
                            or worst_status(*_statuses(impacts + updated)))
        if is_maintenance and component_status in (None, "operational"):
            component_status = "under_maintenance"
        if component_status:
            statuses.append(component_status)
        ref = _ref(entry, impacts, status=status, page_url=page_url)
        if is_maintenance:
            maintenance = maintenance or ref
            continue
        published = parse_timestamp(entry.get("published_at"))
        key = (status_rank(component_status), published.timestamp() if published else 0.0, ref)
        if best is None or key[:2] > best[:2]:
            best = key
    return (best[2] if best else None), maintenance, worst_status(*statuses)


def _for(value: object, component_id: str) -> list[dict[str, Any]]:
    return [d for d in dicts(value) if as_text(d.get("component_id")) == component_id]


def _statuses(items: list[dict[str, Any]]) -> list[str | None]:
    return [as_text(i.get("status")) for i in items]


def _covers(impact: dict[str, Any], now: datetime, *, open_ended: bool) -> bool:
    start = parse_timestamp(impact.get("start_at"))
    end = parse_timestamp(impact.get("end_at"))
    if start is not None and start > now:
        return False
    return open_ended if end is None else now < end


def _ref(entry: dict[str, Any], impacts: list[dict[str, Any]], *, status: str,
         page_url: str | None) -> IncidentRef:
    starts = [t for i in impacts if (t := parse_timestamp(i.get("start_at")))]
    ends = [parse_timestamp(i.get("end_at")) for i in impacts]
    entry_id = as_text(entry.get("id")) or ""
    return IncidentRef(
        id=entry_id, name=as_text(entry.get("name")) or "incident", status=status,
        started_at=min(starts) if starts else parse_timestamp(entry.get("published_at")),
        ends_at=max(e for e in ends if e) if ends and all(ends) else None,
        url=f"{page_url}/incidents/{entry_id}" if page_url and entry_id else None)
