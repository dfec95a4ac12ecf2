"""The classification table: one observation in, one outcome out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.classify import Context, classify
from bot.models import IncidentRef, Observation, Outcome

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CTX = Context(now=NOW, slow_ms=5000)


def obs(**kw: object) -> Observation:
    kw.setdefault("latency_ms", 120.0)
    return Observation(**kw)  # type: ignore[arg-type]


CASES = [
    ("ok", obs(http_status=200), Outcome.OK),
    ("slow", obs(http_status=200, latency_ms=9000), Outcome.SLOW),
    ("no key, 401 means alive", obs(http_status=401, authenticated=False), Outcome.REACHABLE),
    ("no key, 200", obs(http_status=200, authenticated=False), Outcome.REACHABLE),
    ("key rejected", obs(http_status=401, error_code="invalid_api_key"), Outcome.MISCONFIGURED),
    ("403 with key", obs(http_status=403), Outcome.MISCONFIGURED),
    ("model_not_found", obs(http_status=404, error_code="model_not_found"), Outcome.GONE),
    ("404 with model wording", obs(http_status=404, error_message="The model `sora-2` does not "
                                   "exist or you do not have access to it."), Outcome.GONE),
    ("404 route", obs(http_status=404), Outcome.BAD_RESPONSE),
    ("429", obs(http_status=429), Outcome.THROTTLED),
    ("rate_limit code", obs(http_status=429, error_code="rate_limit_exceeded"),
     Outcome.THROTTLED),
    ("503", obs(http_status=503), Outcome.UNAVAILABLE),
    ("500", obs(http_status=500), Outcome.UNAVAILABLE),
    ("402", obs(http_status=402), Outcome.REFUSED),
    ("风控 on 200", obs(http_status=200, error_message="当前账号触发风控，请稍后再试"),
     Outcome.RISK_CONTROL),
    ("captcha on 403", obs(http_status=403, body_excerpt="<html>Please complete the captcha"),
     Outcome.RISK_CONTROL),
    ("限流", obs(http_status=200, error_message="请求过于频繁，已限流"), Outcome.THROTTLED),
    ("account banned", obs(http_status=403, error_message="upstream account has been suspended"),
     Outcome.REFUSED),
    ("healthy body mentioning captcha", obs(http_status=200, body_excerpt='{"id":"captcha-model"}'),
     Outcome.OK),
    ("error envelope on 200", obs(http_status=200, error_message="something odd"),
     Outcome.BAD_RESPONSE),
    ("timeout", obs(exception="ReadTimeout"), Outcome.UNAVAILABLE),
    ("refused", obs(exception="ConnectError"), Outcome.UNAVAILABLE),
    ("dns", obs(exception="NameResolutionError"), Outcome.NETWORK),
    ("html on 200", obs(http_status=200, exception="InvalidJSON"), Outcome.BAD_RESPONSE),
    ("too big", obs(http_status=200, exception="ResponseTooLarge"), Outcome.BAD_RESPONSE),
    ("sdk rate limit", obs(exception="RateLimitError"), Outcome.THROTTLED),
    ("sdk auth", obs(exception="AuthenticationError"), Outcome.MISCONFIGURED),
    ("unknown exception", obs(exception="WeirdError"), Outcome.UNAVAILABLE),
    ("not configured", obs(not_configured="set SORA_RELAY_BASE_URL"), Outcome.NOT_CONFIGURED),
    ("shutdown_date passed", obs(http_status=200,
                                 shutdown_date=datetime(2026, 9, 24, tzinfo=UTC)), Outcome.GONE),
    ("shutdown_date ahead", obs(http_status=200,
                                shutdown_date=datetime(2027, 1, 1, tzinfo=UTC)), Outcome.OK),
    ("page operational", obs(http_status=200, component_status="operational",
                             component_name="Sora"), Outcome.OK),
    ("page degraded", obs(http_status=200, component_status="degraded_performance"),
     Outcome.DEGRADED),
    ("page partial", obs(http_status=200, component_status="partial_outage"), Outcome.DEGRADED),
    ("page major", obs(http_status=200, component_status="major_outage"), Outcome.UNAVAILABLE),
    ("incident.io full", obs(http_status=200, component_status="full_outage"),
     Outcome.UNAVAILABLE),
    ("page maintenance status", obs(http_status=200, component_status="under_maintenance"),
     Outcome.MAINTENANCE),
    ("announced maintenance", obs(http_status=200, component_status="operational",
                                  maintenance=IncidentRef(id="m", name="DB upgrade",
                                                          status="in_progress")),
     Outcome.MAINTENANCE),
    ("component missing", obs(http_status=200, component_name="Sora",
                              detail="component 'Sora' not found"), Outcome.BAD_RESPONSE),
]


@pytest.mark.parametrize(("label", "observation", "expected"), CASES, ids=[c[0] for c in CASES])
def test_classification_table(label: str, observation: Observation, expected: Outcome) -> None:
    assert classify(observation, CTX).outcome is expected


def test_catalog_shutdown_date_retires_a_model_that_still_answers() -> None:
    ctx = Context(now=NOW, shutdown_date=date(2026, 9, 24))
    verdict = classify(obs(http_status=200), ctx)
    assert verdict.outcome is Outcome.GONE
    assert "2026-09-24" in verdict.reason


def test_catalog_shutdown_date_does_not_hide_an_unreachable_relay() -> None:
    ctx = Context(now=NOW, shutdown_date=date(2026, 9, 24))
    assert classify(obs(exception="ConnectError"), ctx).outcome is Outcome.UNAVAILABLE


def test_reasons_are_human_readable() -> None:
    assert classify(obs(http_status=401), CTX).reason == "credentials rejected (HTTP 401)"
    assert "not configured (set X)" == classify(obs(not_configured="set X"), CTX).reason
    assert "风控" in classify(obs(http_status=200, error_message="触发风控"), CTX).reason


def test_gemini_errors() -> None:
    gone = obs(http_status=404, error_code="NOT_FOUND",
               error_message="models/veo-3.1-generate-preview is not found for API version v1beta")
    assert classify(gone, CTX).outcome is Outcome.GONE
    bad_key = obs(http_status=400, error_code="INVALID_ARGUMENT",
                  error_message="[API_KEY_INVALID] API key not valid. Please pass a valid API key.")
    assert classify(bad_key, CTX).outcome is Outcome.MISCONFIGURED
