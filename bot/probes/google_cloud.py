"""Google Cloud status probe: ``{base}/incidents.json`` filtered by ``affected_products[].id``.

Product titles change (Vertex AI became Agent Platform), ids do not, so services name ids. The
real feed is several MB: it is decoded once and scanned once, cheapest tests first.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    short,
)
from bot.probes.statuspage import status_rank, worst_status

INCIDENT_URL = "https://status.cloud.google.com/incidents/{id}"

# SERVICE_INFORMATION is how Google posts advisories and after-the-fact notes that do not stop the
# service (its page shows an "i", not an outage), so it maps to "operational"; the incident is
# still returned and named in the detail so people can read it.
_IMPACT = {"SERVICE_OUTAGE": "major_outage", "SERVICE_DISRUPTION": "partial_outage",
           "SERVICE_INFORMATION": "operational"}
_SEVERITY_FLOOR = {"high": "major_outage", "medium": "partial_outage"}
_UNKNOWN_IMPACT = "degraded_performance"


@dataclass(frozen=True, slots=True)
class ProductsView:
    """What the feed says about the watched products right now."""

    status: str  # operational | degraded_performance | partial_outage | major_outage
    incident: IncidentRef | None = None  # the worst active incident
    incidents: tuple[IncidentRef, ...] = ()  # every active incident, worst first
    product_names: tuple[str, ...] = ()  # titles of the watched products the incident names
    detail: str = ""


def parse_incidents(data: list[Any], product_ids: Sequence[str], now: datetime) -> ProductsView:
    """Active incidents (begun, no ``end`` or ``end`` after ``now``) naming any of the products.

    Status: ``status_impact`` SERVICE_OUTAGE → "major_outage", SERVICE_DISRUPTION →
    "partial_outage", SERVICE_INFORMATION → "operational" (advisory; reported in the detail),
    missing/unknown → "degraded_performance"; severity "high" raises it to at least
    "major_outage" and "medium" to at least "partial_outage". No active incident → "operational".
    """
    wanted = frozenset(product_ids)
    found: list[tuple[int, float, IncidentRef, tuple[str, ...], str]] = []
    for item in dicts(data):
        end = parse_timestamp(item.get("end"))
        if end is not None and end <= now:
            continue
        products = [p for p in dicts(item.get("affected_products"))
                    if as_text(p.get("id")) in wanted]
        if not products:
            continue
        begin = parse_timestamp(item.get("begin"))
        if begin is not None and begin > now:
            continue
        status = incident_status(item)
        ref = incident_ref(item)
        names = tuple(n for p in products
                      if (n := as_text(p.get("current_title")) or as_text(p.get("title"))))
        found.append((status_rank(status), begin.timestamp() if begin else 0.0, ref, names,
                      status))
    if not found:
        return ProductsView(status="operational",
                            detail=f"operational — no active incident for {len(wanted)} "
                                   f"watched product{'s' if len(wanted) != 1 else ''}")
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    _, _, ref, names, status = found[0]
    label = ", ".join(names) or "watched products"
    detail = (f"{label}: operational — informational incident: {ref.name}"
              if status == "operational" else f"{label}: {status} — {ref.name}")
    if len(found) > 1:
        detail += f" (+{len(found) - 1} more)"
    return ProductsView(status=status, incident=ref, incidents=tuple(f[2] for f in found),
                        product_names=names, detail=detail)


def incident_status(item: dict[str, Any]) -> str:
    """The component status an active incident stands for (see ``parse_incidents``)."""
    base = _IMPACT.get(as_text(item.get("status_impact")) or "", _UNKNOWN_IMPACT)
    floor = _SEVERITY_FLOOR.get(as_text(item.get("severity")) or "")
    return worst_status(base, floor) or base


def incident_ref(item: dict[str, Any]) -> IncidentRef:
    """A Google Cloud incident as an ``IncidentRef`` (status = most_recent_update.status)."""
    incident_id = as_text(item.get("id")) or ""
    update = item.get("most_recent_update")
    status = as_text(update.get("status")) if isinstance(update, dict) else None
    return IncidentRef(
        id=incident_id,
        name=short(item.get("external_desc"), 300) or "incident",
        status=status or as_text(item.get("status_impact")) or "",
        started_at=parse_timestamp(item.get("begin")),
        ends_at=parse_timestamp(item.get("end")),
        url=INCIDENT_URL.format(id=incident_id) if incident_id else None)


async def probe_google_cloud(service: ServiceConfig, *, client: httpx2.AsyncClient,
                             now: datetime, clock: Clock = time.perf_counter) -> Observation:
    """Probe the Google Cloud status feed for ``service.products``."""
    if service.base_url is None:
        return Observation(latency_ms=0.0, not_configured=service.missing or "set base_url")
    fetched = await fetch(client, join_url(service.base_url, "incidents.json"),
                          headers={"Accept": "application/json"}, timeout=service.timeout,
                          max_bytes=service.max_body_bytes, clock=clock)
    data, failure = read_feed(fetched, valid=lambda d: isinstance(d, list),
                              expected="a list of incidents")
    if failure is not None:
        return failure
    view = parse_incidents(data, service.products, now)
    return Observation(
        latency_ms=fetched.latency_ms, http_status=fetched.status, component_status=view.status,
        component_name=", ".join(view.product_names) or None, incident=view.incident,
        detail=view.detail)
