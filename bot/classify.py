"""Pure, table-driven classification: what a probe saw → one ``Outcome`` and a reason.

The first matching rule wins. Rules look at (in this order): whether the probe ran at all, the
bot's own network, announced maintenance, status-page component status, transport exceptions
(httpx2 and SDK class names, so real generations can be fed back passively), risk-control wording
in the body (English and Chinese), the error ``code``, the HTTP status, retirement dates, latency.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bot.models import Observation, Outcome


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reason: str


@dataclass(frozen=True, slots=True)
class Context:
    """What the classifier needs besides the observation (per-service settings, time)."""

    now: datetime
    slow_ms: float = 5000.0
    shutdown_date: date | None = None


# Status-page component statuses (Statuspage v2, incident.io, and the Google mapping).
COMPONENT_STATUS: dict[str, Outcome] = {
    "operational": Outcome.OK,
    "degraded_performance": Outcome.DEGRADED,
    "partial_outage": Outcome.DEGRADED,
    "major_outage": Outcome.UNAVAILABLE,
    "full_outage": Outcome.UNAVAILABLE,
    "under_maintenance": Outcome.MAINTENANCE,
}

# Exception class names: httpx2 transport errors, probe-level markers, and openai SDK errors.
EXCEPTIONS: dict[str, Outcome] = {
    "NameResolutionError": Outcome.NETWORK,
    "ConnectError": Outcome.UNAVAILABLE,
    "ConnectTimeout": Outcome.UNAVAILABLE,
    "ReadTimeout": Outcome.UNAVAILABLE,
    "WriteTimeout": Outcome.UNAVAILABLE,
    "PoolTimeout": Outcome.UNAVAILABLE,
    "Timeout": Outcome.UNAVAILABLE,
    "TimeoutError": Outcome.UNAVAILABLE,
    "ReadError": Outcome.UNAVAILABLE,
    "WriteError": Outcome.UNAVAILABLE,
    "RemoteProtocolError": Outcome.UNAVAILABLE,
    "APIConnectionError": Outcome.UNAVAILABLE,
    "APITimeoutError": Outcome.UNAVAILABLE,
    "InternalServerError": Outcome.UNAVAILABLE,
    "ServiceUnavailableError": Outcome.UNAVAILABLE,
    "RateLimitError": Outcome.THROTTLED,
    "AuthenticationError": Outcome.MISCONFIGURED,
    "PermissionDeniedError": Outcome.MISCONFIGURED,
    "ResponseTooLarge": Outcome.BAD_RESPONSE,
    "InvalidJSON": Outcome.BAD_RESPONSE,
    "DecodingError": Outcome.BAD_RESPONSE,
}

# Error ``code`` (OpenAI envelope) or ``status`` (Google envelope) values.
ERROR_CODES: dict[str, Outcome] = {
    "model_not_found": Outcome.GONE,
    "model_deprecated": Outcome.GONE,
    "NOT_FOUND": Outcome.GONE,  # Gemini models.get of a model that does not exist
    "rate_limit_exceeded": Outcome.THROTTLED,
    "too_many_requests": Outcome.THROTTLED,
    "RESOURCE_EXHAUSTED": Outcome.THROTTLED,
    "risk_control": Outcome.RISK_CONTROL,
    "captcha_required": Outcome.RISK_CONTROL,
    "invalid_api_key": Outcome.MISCONFIGURED,
    "UNAUTHENTICATED": Outcome.MISCONFIGURED,
    "PERMISSION_DENIED": Outcome.MISCONFIGURED,
    "insufficient_quota": Outcome.REFUSED,
    "billing_hard_limit_reached": Outcome.REFUSED,
    "account_deactivated": Outcome.REFUSED,
    "account_suspended": Outcome.REFUSED,
    "UNAVAILABLE": Outcome.UNAVAILABLE,
    "INTERNAL": Outcome.UNAVAILABLE,
}

# Wording in bodies, case-insensitive; the reverse-relay failure modes first.
MARKERS: tuple[tuple[re.Pattern[str], Outcome, str], ...] = (
    (re.compile(r"captcha|recaptcha|hcaptcha|turnstile|验证码|人机验证", re.I),
     Outcome.RISK_CONTROL, "captcha demanded"),
    (re.compile(r"risk[ _-]?control|风控|风险控制|账号异常|risk management", re.I),
     Outcome.RISK_CONTROL, "risk control"),
    (re.compile(r"rate[ _-]?limit|too many requests|限流|请求过于频繁|频率限制", re.I),
     Outcome.THROTTLED, "rate limited"),
    (re.compile(r"account (?:has been )?(?:suspended|banned|disabled)|封号|账号(?:已)?被封|封禁",
                re.I), Outcome.REFUSED, "account suspended upstream"),
    (re.compile(r"API_KEY_INVALID|incorrect api key|invalid api key", re.I),
     Outcome.MISCONFIGURED, "credentials rejected"),
    (re.compile(r"model[^\n]{0,80}?(?:does not exist|not found|no longer available|"
                r"has been (?:shut down|deprecated|retired))|模型不存在|模型已下线", re.I),
     Outcome.GONE, "model not found"),
)


def _status(status: int, authenticated: bool) -> Verdict | None:
    if status in (401, 403):
        if not authenticated:
            return Verdict(Outcome.REACHABLE, f"server reachable (HTTP {status}); no API key "
                           "set, so auth and model are not verified")
        return Verdict(Outcome.MISCONFIGURED, f"credentials rejected (HTTP {status})")
    if status == 402:
        return Verdict(Outcome.REFUSED, "payment required (HTTP 402)")
    if status == 429:
        return Verdict(Outcome.THROTTLED, "rate limited (HTTP 429)")
    if status >= 500 or status == 408:
        return Verdict(Outcome.UNAVAILABLE, f"HTTP {status}")
    if status >= 400:
        return Verdict(Outcome.BAD_RESPONSE, f"unexpected HTTP {status}")
    return None


Rule = Callable[[Observation, Context], Verdict | None]


def _not_configured(o: Observation, c: Context) -> Verdict | None:
    return Verdict(Outcome.NOT_CONFIGURED, f"not configured ({o.not_configured})") \
        if o.not_configured else None


def _network(o: Observation, c: Context) -> Verdict | None:
    if o.exception == "NameResolutionError":
        return Verdict(Outcome.NETWORK, "the bot could not resolve the host "
                       "(check the bot's DNS/network)")
    return None


def _maintenance(o: Observation, c: Context) -> Verdict | None:
    if o.maintenance is not None:
        return Verdict(Outcome.MAINTENANCE, f"maintenance: {o.maintenance.name}")
    return None


def _component(o: Observation, c: Context) -> Verdict | None:
    if o.component_status is None:
        if o.component_name is not None and o.exception is None:
            return Verdict(Outcome.BAD_RESPONSE, o.detail or "component not found on the page")
        return None
    outcome = COMPONENT_STATUS.get(o.component_status, Outcome.DEGRADED)
    label = f"{o.component_name or 'component'}: {o.component_status}"
    if o.incident is not None and outcome is not Outcome.OK:
        label += f" — {o.incident.name}"
    return Verdict(outcome, f"status page: {label}")


def _exception(o: Observation, c: Context) -> Verdict | None:
    if o.exception is None:
        return None
    outcome = EXCEPTIONS.get(o.exception, Outcome.UNAVAILABLE)
    text = {
        "ResponseTooLarge": "response larger than the size cap",
        "InvalidJSON": "answered with something that is not the expected JSON",
    }.get(o.exception, o.exception)
    if o.error_message and o.exception not in ("ResponseTooLarge", "InvalidJSON"):
        text += f": {o.error_message}"
    return Verdict(outcome, text)


def _markers(o: Observation, c: Context) -> Verdict | None:
    if o.http_status is not None and 200 <= o.http_status < 300 and not o.error_message:
        return None  # a healthy answer that merely mentions a word is not a failure
    haystack = f"{o.error_code or ''} {o.error_message or ''} {o.body_excerpt}"
    for pattern, outcome, label in MARKERS:
        if pattern.search(haystack):
            if outcome is Outcome.MISCONFIGURED and not o.authenticated:
                return _status(o.http_status or 401, authenticated=False)
            return Verdict(outcome, _with_message(label, o))
    return None


def _error_code(o: Observation, c: Context) -> Verdict | None:
    if o.error_code and o.error_code in ERROR_CODES:
        outcome = ERROR_CODES[o.error_code]
        if outcome is Outcome.MISCONFIGURED and not o.authenticated:
            return _status(o.http_status or 401, authenticated=False)
        return Verdict(outcome, _with_message(o.error_code, o))
    return None


def _http(o: Observation, c: Context) -> Verdict | None:
    if o.http_status is None:
        return None
    verdict = _status(o.http_status, o.authenticated)
    if verdict and o.error_message and verdict.outcome is not Outcome.REACHABLE:
        return Verdict(verdict.outcome, _with_message(verdict.reason, o))
    if verdict is None and o.error_message:
        return Verdict(Outcome.BAD_RESPONSE, _with_message("error on HTTP 200", o))
    return verdict


def _retired(o: Observation, c: Context) -> Verdict | None:
    if o.http_status is None:
        return None
    for when, source in ((o.shutdown_date, "shutdown_date"), (c.shutdown_date, "catalog")):
        if when is None:
            continue
        day = when.date() if isinstance(when, datetime) else when
        if day <= c.now.astimezone(UTC).date():
            return Verdict(Outcome.GONE, f"shut down on {day.isoformat()} ({source})")
    return None


def _latency(o: Observation, c: Context) -> Verdict:
    if o.latency_ms > c.slow_ms:
        return Verdict(Outcome.SLOW, f"slow: {o.latency_ms:,.0f} ms (threshold {c.slow_ms:,.0f})")
    if not o.authenticated:
        return Verdict(Outcome.REACHABLE, "server reachable; no API key set")
    return Verdict(Outcome.OK, o.detail or "ok")


RULES: tuple[Rule, ...] = (_not_configured, _network, _maintenance, _component, _exception,
                           _markers, _error_code, _http, _retired)


def classify(obs: Observation, ctx: Context) -> Verdict:
    """Map one observation to an outcome; the first rule that speaks wins."""
    for rule in RULES:
        verdict = rule(obs, ctx)
        if verdict is not None:
            return verdict
    return _latency(obs, ctx)


def _with_message(label: str, o: Observation) -> str:
    if o.error_message:
        return f"{label}: {_short(o.error_message)}"
    return label


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
