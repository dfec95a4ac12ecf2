"""Probes: observe a service for free and return an ``Observation`` (never judge, never raise).

One module per kind, each on an injected ``httpx2.AsyncClient``; ``run_probe`` dispatches on
``service.kind`` and never touches the network for a service that is not configured.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import datetime
from typing import Protocol

import httpx2

from bot.config import ServiceConfig
from bot.models import Observation
from bot.probes.gemini import probe_gemini
from bot.probes.google_cloud import probe_google_cloud
from bot.probes.http import Clock
from bot.probes.incidentio import probe_incidentio
from bot.probes.openai_compat import probe_openai_compat
from bot.probes.statuspage import probe_statuspage


class Probe(Protocol):
    """The shape every probe function has."""

    def __call__(self, service: ServiceConfig, *, client: httpx2.AsyncClient, now: datetime,
                 clock: Clock = ...) -> Awaitable[Observation]: ...


PROBES: dict[str, Probe] = {
    "openai_compat": probe_openai_compat,
    "gemini": probe_gemini,
    "statuspage": probe_statuspage,
    "incidentio": probe_incidentio,
    "google_cloud": probe_google_cloud,
}


async def run_probe(service: ServiceConfig, *, client: httpx2.AsyncClient, now: datetime,
                    clock: Clock = time.perf_counter) -> Observation:
    """Probe ``service`` once; a service missing settings is reported, not probed."""
    if service.missing is not None:
        return Observation(latency_ms=0.0, not_configured=service.missing)
    probe = PROBES.get(service.kind)
    if probe is None:
        return Observation(latency_ms=0.0, not_configured=f"no probe for kind {service.kind!r}")
    return await probe(service, client=client, now=now, clock=clock)


__all__ = ["PROBES", "Probe", "run_probe"]
