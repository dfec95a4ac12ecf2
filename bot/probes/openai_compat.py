"""OpenAI-compatible relay probe: model metadata or the videos route, never a paid generation.

``probe == "model"``: ``GET {base}/models/{model}`` (existence, ``shutdown_date``).
``probe == "videos"``: ``GET {base}/videos?limit=1`` (auth + route).
Without a key no Authorization header is sent and ``authenticated`` is False: a 401 then only
proves the server is alive. The key never appears in the returned observation.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx2

from bot.config import ServiceConfig
from bot.models import Observation
from bot.probes.http import (
    Clock,
    Fetched,
    answered,
    as_text,
    decode_object,
    fetch,
    join_url,
    parse_timestamp,
)


async def probe_openai_compat(service: ServiceConfig, *, client: httpx2.AsyncClient,
                              now: datetime, clock: Clock = time.perf_counter) -> Observation:
    """Probe one OpenAI-compatible service (see module docstring)."""
    if service.base_url is None or service.model is None:
        return Observation(latency_ms=0.0, not_configured=service.missing or "set base_url")
    key = service.api_key.get_secret_value() if service.api_key is not None else ""
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    fetched = await fetch(client, request_url(service.base_url, probe=service.probe,
                                              model=service.model),
                          headers=headers, timeout=service.timeout,
                          max_bytes=service.max_body_bytes, clock=clock)
    return interpret(fetched, probe=service.probe, model=service.model, authenticated=bool(key),
                     secrets=(key,) if key else ())


def request_url(base_url: str, *, probe: str, model: str) -> str:
    """The URL a probe GETs (``base_url`` usually ends with ``/v1``)."""
    if probe == "videos":
        return join_url(base_url, "videos") + "?limit=1"
    return join_url(base_url, "models", model)


def interpret(fetched: Fetched, *, probe: str, model: str, authenticated: bool,
              secrets: tuple[str, ...] = ()) -> Observation:
    """Turn one exchange into an observation (pure): error envelope, shutdown date, detail."""
    data, failure = decode_object(fetched, secrets=secrets, authenticated=authenticated)
    if failure is not None:
        return failure
    code, message = parse_error(data, failed_status=not fetched.ok)
    shutdown: datetime | None = None
    detail: str | None = None
    if fetched.ok and code is None and message is None and isinstance(data, dict):
        if probe == "videos":
            detail = videos_detail(data)
        else:
            shutdown = parse_shutdown_date(data.get("shutdown_date"))
            detail = model_detail(data, model=model, shutdown=shutdown)
    return answered(fetched, code=code, message=message, secrets=secrets,
                    authenticated=authenticated, shutdown_date=shutdown, detail=detail)


def parse_error(data: object, *, failed_status: bool = True) -> tuple[str | None, str | None]:
    """``(code, message)`` from an error body; ``(None, None)`` when it carries no error.

    Understands the OpenAI envelope ``{"error": {"code", "message", "type"}}`` (``code`` falls
    back to ``type`` when null), ``{"error": "text"}``, the relay shape
    ``{"success": false, "message": …}``, and — only on a non-2xx — bare ``message``/``detail``.
    """
    if not isinstance(data, dict):
        return None, None
    error = data.get("error")
    if isinstance(error, dict):
        code = as_text(error.get("code")) or as_text(error.get("type"))
        message = as_text(error.get("message"))
        if code or message:
            return code, message
    elif isinstance(error, str) and error:
        return None, error
    if data.get("success") is False:
        return (as_text(data.get("code")),
                as_text(data.get("message")) or as_text(data.get("msg")) or "success: false")
    if failed_status:
        message = (as_text(data.get("message")) or as_text(data.get("msg"))
                   or as_text(data.get("detail")))
        return as_text(data.get("code")), message
    return None, None


def parse_shutdown_date(value: object) -> datetime | None:
    """A model's ``shutdown_date`` (unix time, ISO date or datetime) as aware UTC, or None."""
    return parse_timestamp(value)


def model_detail(data: dict[str, Any], *, model: str, shutdown: datetime | None) -> str:
    """Human text for a model object, e.g. "model sora-2 listed (shutdown 2026-09-24)"."""
    listed = as_text(data.get("id"))
    detail = f"model {model} listed" if listed in (None, model) else (
        f"model {model} answered as {listed}")
    if shutdown is not None:
        detail += f" (shutdown {shutdown.date().isoformat()})"
    return detail


def videos_detail(data: dict[str, Any]) -> str:
    """Human text for a ``/videos`` list answer."""
    items = data.get("data")
    if isinstance(items, list):
        return f"videos route answered ({len(items)} listed)"
    return "videos route answered"
