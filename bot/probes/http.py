"""Probe plumbing: one bounded GET, safe JSON decoding, secret scrubbing, small parse helpers.

``fetch`` never raises for network, HTTP or size problems: it returns a ``Fetched`` whose
``exception`` names what went wrong (the class name the classifier keys on). Probes turn a
``Fetched`` into an ``Observation`` and pass it through ``scrub`` before returning it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx2

from bot.models import Observation
from bot.redact import Redactor

Clock = Callable[[], float]

EXCERPT_CHARS = 2000  # body_excerpt length: enough for captcha / 风控 / rate-limit wording
MESSAGE_CHARS = 500  # error_message length

_DNS_MARKERS = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "no address associated",
)


class ResponseTooLarge(Exception):
    """The body is larger than the probe's ``max_bytes`` cap."""


class InvalidJSON(ValueError):
    """The body was expected to be JSON and is not (HTML on a 200, truncated JSON, …)."""


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one GET produced. ``exception`` is set when the exchange did not complete."""

    latency_ms: float
    status: int | None = None
    content_type: str | None = None
    retry_after: str | None = None
    body: bytes = b""  # at most ``max_bytes``; partial when ``exception`` is set
    exception: str | None = None  # e.g. "ReadTimeout", "Timeout", "ResponseTooLarge"
    message: str | None = None  # the exception's message

    @property
    def ok(self) -> bool:
        """Completed with a 2xx status."""
        return self.exception is None and self.status is not None and 200 <= self.status < 300


async def fetch(
        client: httpx2.AsyncClient, url: str, *, headers: Mapping[str, str] | None = None,
        timeout: float,  # noqa: ASYNC109 - enforced inside with asyncio.timeout
        max_bytes: int, clock: Clock = time.perf_counter) -> Fetched:
    """GET ``url`` with a hard overall deadline and a body cap; never raises for I/O problems.

    ``timeout`` bounds each httpx2 operation *and* the whole exchange (``asyncio.timeout``), so a
    server that sends headers and then trickles bytes forever still ends at the deadline
    (exception "Timeout"). Reading stops after ``max_bytes`` decoded bytes ("ResponseTooLarge").
    """
    start = clock()
    status: int | None = None
    content_type: str | None = None
    retry_after: str | None = None
    chunks: list[bytes] = []

    def result(exception: str | None = None, message: str | None = None) -> Fetched:
        return Fetched(latency_ms=(clock() - start) * 1000.0, status=status,
                       content_type=content_type, retry_after=retry_after, body=b"".join(chunks),
                       exception=exception, message=message)

    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, headers=headers,
                                     timeout=httpx2.Timeout(timeout)) as response:
                status = response.status_code
                content_type = response.headers.get("content-type")
                retry_after = response.headers.get("retry-after")
                declared = _content_length(response.headers.get("content-length"))
                if declared is not None and declared > max_bytes:
                    raise ResponseTooLarge(f"Content-Length {declared} exceeds {max_bytes} bytes")
                size = 0
                async for chunk in response.aiter_bytes():
                    room = max_bytes - size
                    if len(chunk) > room:
                        chunks.append(chunk[:room])
                        raise ResponseTooLarge(f"body exceeds {max_bytes} bytes")
                    chunks.append(chunk)
                    size += len(chunk)
    except ResponseTooLarge as e:
        return result("ResponseTooLarge", str(e))
    except TimeoutError:  # before OSError: TimeoutError is an OSError
        return result("Timeout", f"no complete answer within {timeout:g} s")
    except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as e:
        return result(exception_name(e), str(e) or type(e).__name__)
    return result()


def exception_name(exc: BaseException) -> str:
    """The name the classifier sees: the class name, with DNS failures told apart."""
    if isinstance(exc, TimeoutError):
        return "Timeout"
    if isinstance(exc, httpx2.ConnectError | OSError) and is_name_resolution_error(exc):
        return "NameResolutionError"
    return type(exc).__name__


def is_name_resolution_error(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause/context chain) says a host name could not be resolved."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        text = str(current).lower()
        if any(marker in text for marker in _DNS_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def _content_length(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# --- decoding ---------------------------------------------------------------------------------

def load_json(body: bytes) -> Any:
    """Decode a JSON body; raise ``InvalidJSON`` for HTML, empty, truncated or non-UTF-8 bodies."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
        raise InvalidJSON(f"body is not JSON: {e}") from e


def excerpt(body: bytes, *, secrets: Sequence[str] = (), limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of the body (undecodable bytes replaced), secrets removed.

    Secrets are replaced before cutting, so a key straddling the cut cannot leak a prefix.
    """
    longest = max((len(s) for s in secrets), default=0)
    decoded = body[: (limit + longest) * 4].decode("utf-8", errors="replace")
    return (Redactor(secrets)(decoded) or "")[:limit]


def scrub(observation: Observation, secrets: Sequence[str]) -> Observation:
    """Remove secrets from every free-text field of an observation (the last step of a probe)."""
    if not any(secrets):
        return observation
    redact = Redactor(secrets)
    return replace(
        observation,
        error_code=redact(observation.error_code),
        error_message=redact(observation.error_message),
        body_excerpt=redact(observation.body_excerpt) or "",
        detail=redact(observation.detail),
        component_name=redact(observation.component_name),
    )


def short(text: object, limit: int = MESSAGE_CHARS) -> str | None:
    """A one-line, bounded string form of ``text`` (None and "" stay None)."""
    if text is None:
        return None
    value = " ".join(str(text).split())
    if not value:
        return None
    return value if len(value) <= limit else value[: limit - 1] + "…"


def failed(fetched: Fetched, *, secrets: Sequence[str] = (), authenticated: bool = True,
           exception: str | None = None, message: str | None = None) -> Observation:
    """The observation of an exchange that failed (or whose body could not be used)."""
    return scrub(Observation(
        latency_ms=fetched.latency_ms,
        http_status=fetched.status,
        exception=exception or fetched.exception,
        error_message=short(message or fetched.message),
        body_excerpt=excerpt(fetched.body, secrets=secrets),
        authenticated=authenticated,
    ), secrets)


def answered(fetched: Fetched, *, code: str | None, message: str | None,
             secrets: Sequence[str] = (), authenticated: bool = True,
             shutdown_date: datetime | None = None, detail: str | None = None) -> Observation:
    """The observation of an API exchange that completed (any status), error envelope parsed."""
    return scrub(Observation(
        latency_ms=fetched.latency_ms,
        http_status=fetched.status,
        error_code=short(code, 100),
        error_message=short(message),
        body_excerpt=excerpt(fetched.body, secrets=secrets),
        authenticated=authenticated,
        shutdown_date=shutdown_date,
        detail=detail,
    ), secrets)


def decode_object(fetched: Fetched, *, secrets: Sequence[str] = (), authenticated: bool = True
                  ) -> tuple[Any, Observation | None]:
    """The JSON body of an API exchange, or the failure observation that ends the probe.

    A transport failure, or a 2xx whose body is not a JSON object, ends it. A non-2xx body that
    is not JSON (an HTML 502 page and the like) yields ``None``: the status says it all.
    """
    if fetched.exception is not None:
        return None, failed(fetched, secrets=secrets, authenticated=authenticated)
    try:
        data: Any = load_json(fetched.body)
    except InvalidJSON as e:
        if fetched.ok:
            return None, failed(fetched, secrets=secrets, authenticated=authenticated,
                                exception="InvalidJSON", message=str(e))
        return None, None
    if fetched.ok and not isinstance(data, dict):
        return None, failed(fetched, secrets=secrets, authenticated=authenticated,
                            exception="InvalidJSON", message="expected a JSON object")
    return data, None


def read_feed(fetched: Fetched, *, valid: Callable[[Any], bool], expected: str
              ) -> tuple[Any, Observation | None]:
    """A status feed's JSON, or the failure observation: any non-2xx answer, a body that is
    not JSON, or JSON that fails ``valid`` (then the message says ``expected …``)."""
    if not fetched.ok:
        return None, failed(fetched)
    try:
        data = load_json(fetched.body)
    except InvalidJSON as e:
        return None, failed(fetched, exception="InvalidJSON", message=str(e))
    if not valid(data):
        return None, failed(fetched, exception="InvalidJSON", message=f"expected {expected}")
    return data, None


# --- small parse helpers ----------------------------------------------------------------------

def join_url(base: str, *parts: str) -> str:
    """``base`` and path ``parts`` joined with exactly one slash each (parts are %-quoted)."""
    path = "/".join(quote(p.strip("/"), safe="/:@-._~") for p in parts if p.strip("/"))
    return f"{base.rstrip('/')}/{path}" if path else base.rstrip("/")


def parse_timestamp(value: object) -> datetime | None:
    """An aware UTC datetime from a unix time (int/float/digit string) or an ISO-8601 string.

    Naive values and bare dates are taken as UTC. Anything else gives None.
    """
    if isinstance(value, bool) or value is None:
        return None
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str):
            raw = value.strip()
            if raw.isdigit():
                return datetime.fromtimestamp(int(raw), tz=UTC)
            parsed = datetime.fromisoformat(raw)
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def dicts(value: object) -> list[dict[str, Any]]:
    """The dict items of ``value`` when it is a list (wire data is never trusted), else []."""
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, dict)]


def as_text(value: object) -> str | None:
    """``value`` as a string when it is a non-empty string or a number, else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float):
        return str(value)
    return None
