"""Gemini API probe: model metadata (``models.get``), which costs nothing.

``GET {base}/models/{model}`` with the key in the ``x-goog-api-key`` header — never the ``?key=``
query parameter, because URLs end up in logs. The key never appears in the observation.
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
    dicts,
    fetch,
    join_url,
)


async def probe_gemini(service: ServiceConfig, *, client: httpx2.AsyncClient, now: datetime,
                       clock: Clock = time.perf_counter) -> Observation:
    """Probe one Gemini API model (see module docstring)."""
    if service.base_url is None or service.model is None:
        return Observation(latency_ms=0.0, not_configured=service.missing or "set base_url")
    key = service.api_key.get_secret_value() if service.api_key is not None else ""
    headers = {"Accept": "application/json"}
    if key:
        headers["x-goog-api-key"] = key
    fetched = await fetch(client, request_url(service.base_url, model=service.model),
                          headers=headers, timeout=service.timeout,
                          max_bytes=service.max_body_bytes, clock=clock)
    return interpret(fetched, model=service.model, authenticated=bool(key),
                     secrets=(key,) if key else ())


def request_url(base_url: str, *, model: str) -> str:
    """``{base}/models/{model}``; a model given as "models/…" is not doubled."""
    return join_url(base_url, "models", model.removeprefix("models/"))


def interpret(fetched: Fetched, *, model: str, authenticated: bool,
              secrets: tuple[str, ...] = ()) -> Observation:
    """Turn one ``models.get`` exchange into an observation (pure)."""
    data, failure = decode_object(fetched, secrets=secrets, authenticated=authenticated)
    if failure is not None:
        return failure
    code, message = parse_error(data)
    detail = None
    if fetched.ok and code is None and message is None and isinstance(data, dict):
        detail = model_detail(data, model=model)
    return answered(fetched, code=code, message=message, secrets=secrets,
                    authenticated=authenticated, detail=detail)


def parse_error(data: object) -> tuple[str | None, str | None]:
    """``(status, message)`` from Google's ``{"error": {"code", "message", "status"}}``.

    ``status`` (e.g. "NOT_FOUND", "PERMISSION_DENIED") is the code; the numeric ``code`` is the
    fallback. An ``ErrorInfo.reason`` in ``details`` (e.g. "API_KEY_INVALID") prefixes the message.
    """
    if not isinstance(data, dict) or not isinstance(data.get("error"), dict):
        return None, None
    error = data["error"]
    code = as_text(error.get("status")) or as_text(error.get("code"))
    message = as_text(error.get("message"))
    reasons = [r for d in dicts(error.get("details")) if (r := as_text(d.get("reason")))]
    if reasons:
        message = f"[{reasons[0]}] {message or ''}".strip()
    return code, message


def model_detail(data: dict[str, Any], *, model: str) -> str:
    """Human text for a model resource, e.g. "model veo-3.1-generate-preview listed (Veo 3.1)"."""
    name = (as_text(data.get("name")) or model).removeprefix("models/")
    detail = f"model {model} listed" if name == model.removeprefix("models/") else (
        f"model {model} answered as {name}")
    display = as_text(data.get("displayName"))
    return f"{detail} ({display})" if display else detail
