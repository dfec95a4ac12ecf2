"""Every probe end to end over an injected ``httpx2.MockTransport`` that records requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from bot.config import ServiceConfig
from bot.models import Observation
from bot.probes import PROBES, run_probe
from bot.probes.gemini import parse_error as gemini_error
from bot.probes.http import excerpt, fetch, is_name_resolution_error, join_url, parse_timestamp
from bot.probes.openai_compat import parse_error as openai_error
from bot.probes.openai_compat import parse_shutdown_date

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = "sk-proj-TESTKEY0123456789abcdefABCDEF"
GEMINI_KEY = "AIzaSyTESTKEY-0123456789abcdefghijk"
SORA_SHUTDOWN = datetime(2026, 9, 24, tzinfo=UTC)

Route = httpx2.Response | Callable[[httpx2.Request], httpx2.Response]


class Recorder:
    """A MockTransport handler: canned responses by path, every request kept."""

    def __init__(self, routes: dict[str, Route] | None = None) -> None:
        self.routes = routes or {}
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        route = self.routes.get(request.url.path)
        if route is None:
            return httpx2.Response(404, text="no route")
        return route(request) if callable(route) else route

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self))


def relay(**kw: Any) -> ServiceConfig:
    base: dict[str, Any] = {"id": "relay", "name": "Relay", "kind": "openai_compat",
                            "model": "sora-2", "base_url": "https://relay.example/v1",
                            "api_key": SecretStr(KEY)}
    return ServiceConfig(**{**base, **kw})


def gemini(**kw: Any) -> ServiceConfig:
    base: dict[str, Any] = {"id": "veo", "name": "Veo", "kind": "gemini",
                            "model": "veo-3.1-generate-preview",
                            "base_url": "https://gemini.example/v1beta",
                            "api_key": SecretStr(GEMINI_KEY)}
    return ServiceConfig(**{**base, **kw})


def page(kind: str, **kw: Any) -> ServiceConfig:
    base: dict[str, Any] = {"id": "page", "name": "Page", "kind": kind,
                            "base_url": "https://status.example.com", "component": "Sora"}
    if kind == "google_cloud":
        base = {**base, "component": None, "products": ("Z0FZJAMvEB4j3NbCJs6B",)}
    return ServiceConfig(**{**base, **kw})


def text_fields(obs: Observation) -> Iterator[str]:
    yield repr(obs)
    for f in fields(obs):
        value = getattr(obs, f.name)
        if isinstance(value, str):
            yield value


async def probe(service: ServiceConfig, recorder: Recorder, **kw: Any) -> Observation:
    async with recorder.client() as client:
        return await run_probe(service, client=client, now=kw.pop("now", NOW), **kw)


# --- OpenAI-compatible relay ------------------------------------------------------------------

async def test_model_probe_sends_bearer_and_parses_shutdown_date() -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, json={
        "id": "sora-2", "object": "model", "owned_by": "openai",
        "shutdown_date": int(SORA_SHUTDOWN.timestamp())})})
    obs = await probe(relay(), recorder)
    [request] = recorder.requests
    assert str(request.url) == "https://relay.example/v1/models/sora-2"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert obs.http_status == 200 and obs.exception is None
    assert obs.authenticated is True
    assert obs.shutdown_date == SORA_SHUTDOWN
    assert obs.detail == "model sora-2 listed (shutdown 2026-09-24)"


async def test_without_a_key_no_auth_header_and_not_authenticated() -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(401, json={"error": {
        "message": "You didn't provide an API key.", "type": "invalid_request_error",
        "code": None}})})
    obs = await probe(relay(api_key=None), recorder)
    [request] = recorder.requests
    assert "authorization" not in request.headers
    assert obs.authenticated is False
    assert obs.http_status == 401
    assert obs.error_message == "You didn't provide an API key."


async def test_base_url_with_trailing_slash_joins_with_one_slash() -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, json={"id": "sora-2"})})
    obs = await probe(relay(base_url="https://relay.example/v1/"), recorder)
    assert recorder.requests[0].url.path == "/v1/models/sora-2"
    assert obs.detail == "model sora-2 listed"


async def test_videos_probe_lists_one_video() -> None:
    recorder = Recorder({"/v1/videos": httpx2.Response(200, json={"object": "list", "data": []})})
    obs = await probe(relay(probe="videos"), recorder)
    [request] = recorder.requests
    assert request.url.path == "/v1/videos"
    assert dict(request.url.params) == {"limit": "1"}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert obs.detail == "videos route answered (0 listed)"


@pytest.mark.parametrize(("fixture", "status", "code", "message_part"), [
    ("404-model_not_found.json", 404, "model_not_found", "does not exist"),
    ("429-rate_limit_exceeded-request-too-large.json", 429, "rate_limit_exceeded",
     "Request too large"),
    ("400-unsupported_parameter.json", 400, "unsupported_parameter", "max_completion_tokens"),
    ("400-invalid_type.json", 400, "invalid_type", "expected an object"),
])
async def test_openai_error_envelopes_from_real_bytes(
        fixtures_dir: Path, fixture: str, status: int, code: str, message_part: str) -> None:
    body = (fixtures_dir / "openai-errors" / fixture).read_bytes()
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(
        status, content=body, headers={"content-type": "application/json"})})
    obs = await probe(relay(), recorder)
    assert obs.http_status == status
    assert obs.error_code == code
    assert obs.error_message is not None and message_part in obs.error_message
    assert obs.exception is None
    assert obs.detail is None and obs.shutdown_date is None


async def test_key_echoed_by_the_server_is_redacted() -> None:
    message = f"Incorrect API key provided: {KEY}. You can find your API key at …"
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(401, json={"error": {
        "message": message, "type": "invalid_request_error", "code": "invalid_api_key"}})})
    obs = await probe(relay(), recorder)
    assert obs.error_code == "invalid_api_key"
    assert obs.error_message == ("Incorrect API key provided: [redacted]. You can find your "
                                 "API key at …")
    assert "[redacted]" in obs.body_excerpt
    assert all(KEY not in text for text in text_fields(obs))


async def test_key_echoed_in_a_200_detail_is_redacted() -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, json={"id": KEY})})
    obs = await probe(relay(), recorder)
    assert obs.detail == "model sora-2 answered as [redacted]"
    assert all(KEY not in text for text in text_fields(obs))


@pytest.mark.parametrize(("payload", "code", "message"), [
    ({"success": False, "message": "账号触发风控，请稍后再试"}, None, "账号触发风控，请稍后再试"),
    ({"success": False, "code": 1003, "msg": "captcha required"}, "1003", "captcha required"),
    ({"error": {"code": "rate_limit_exceeded", "message": "slow down"}}, "rate_limit_exceeded",
     "slow down"),
    ({"error": "upstream busy"}, None, "upstream busy"),
])
async def test_errors_on_http_200_keep_the_message_and_excerpt(
        payload: dict[str, Any], code: str | None, message: str) -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, json=payload)})
    obs = await probe(relay(), recorder)
    assert obs.http_status == 200
    assert (obs.error_code, obs.error_message) == (code, message)
    assert message in obs.body_excerpt
    assert obs.detail is None


async def test_html_on_200_is_invalid_json_with_excerpt() -> None:
    html = "<html><body>Please complete the captcha to continue</body></html>"
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, html=html)})
    obs = await probe(relay(), recorder)
    assert obs.exception == "InvalidJSON"
    assert obs.http_status == 200
    assert "captcha" in obs.body_excerpt


async def test_html_on_502_is_not_invalid_json() -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(502, html="<h1>Bad Gateway</h1>")})
    obs = await probe(relay(), recorder)
    assert (obs.http_status, obs.exception) == (502, None)
    assert obs.body_excerpt == "<h1>Bad Gateway</h1>"


async def test_latency_comes_from_the_injected_clock() -> None:
    ticks = iter([10.0, 10.25])
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, json={"id": "sora-2"})})
    obs = await probe(relay(), recorder, clock=lambda: next(ticks))
    assert obs.latency_ms == pytest.approx(250.0)


async def test_content_length_over_the_cap_is_response_too_large() -> None:
    recorder = Recorder({"/v1/models/sora-2": httpx2.Response(200, content=b"x" * 5000)})
    obs = await probe(relay(max_body_bytes=1024), recorder)
    assert obs.exception == "ResponseTooLarge"
    assert obs.http_status == 200


@pytest.mark.parametrize(("error", "name"), [
    (httpx2.ConnectError("[Errno -2] Name or service not known"), "NameResolutionError"),
    (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"),
     "NameResolutionError"),
    (httpx2.ConnectError("[Errno 8] nodename nor servname provided, or not known"),
     "NameResolutionError"),
    (httpx2.ConnectError("All connection attempts failed"), "ConnectError"),
    (httpx2.ConnectTimeout("timed out"), "ConnectTimeout"),
    (httpx2.ReadTimeout("timed out"), "ReadTimeout"),
    (httpx2.RemoteProtocolError("Server disconnected without sending a response."),
     "RemoteProtocolError"),
    (httpx2.ReadError("connection reset"), "ReadError"),
])
async def test_transport_errors_become_exception_names(error: Exception, name: str) -> None:
    def raise_it(request: httpx2.Request) -> httpx2.Response:
        raise error

    obs = await probe(relay(), Recorder({"/v1/models/sora-2": raise_it}))
    assert obs.exception == name
    assert obs.http_status is None
    assert obs.error_message


# --- Gemini -----------------------------------------------------------------------------------

async def test_gemini_uses_the_header_never_the_query_parameter() -> None:
    recorder = Recorder({"/v1beta/models/veo-3.1-generate-preview": httpx2.Response(200, json={
        "name": "models/veo-3.1-generate-preview", "displayName": "Veo 3.1",
        "supportedGenerationMethods": ["predictLongRunning"]})})
    obs = await probe(gemini(), recorder)
    [request] = recorder.requests
    assert str(request.url) == "https://gemini.example/v1beta/models/veo-3.1-generate-preview"
    assert request.headers["x-goog-api-key"] == GEMINI_KEY
    assert GEMINI_KEY not in str(request.url)
    assert "authorization" not in request.headers
    assert obs.detail == "model veo-3.1-generate-preview listed (Veo 3.1)"


async def test_gemini_not_found_envelope() -> None:
    recorder = Recorder({"/v1beta/models/veo-9": httpx2.Response(404, json={"error": {
        "code": 404, "status": "NOT_FOUND",
        "message": "models/veo-9 is not found for API version v1beta"}})})
    obs = await probe(gemini(model="veo-9"), recorder)
    assert (obs.http_status, obs.error_code) == (404, "NOT_FOUND")
    assert obs.error_message == "models/veo-9 is not found for API version v1beta"


async def test_gemini_echoed_key_is_redacted() -> None:
    recorder = Recorder({"/v1beta/models/veo-3.1-generate-preview": httpx2.Response(400, json={
        "error": {"code": 400, "status": "INVALID_ARGUMENT",
                  "message": f"API key not valid: {GEMINI_KEY}",
                  "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                               "reason": "API_KEY_INVALID"}]}})})
    obs = await probe(gemini(), recorder)
    assert obs.error_code == "INVALID_ARGUMENT"
    assert obs.error_message == "[API_KEY_INVALID] API key not valid: [redacted]"
    assert all(GEMINI_KEY not in text for text in text_fields(obs))


# --- status pages -----------------------------------------------------------------------------

def fixture_response(fixtures_dir: Path, name: str) -> httpx2.Response:
    return httpx2.Response(200, content=(fixtures_dir / name).read_bytes(),
                           headers={"content-type": "application/json"})


async def test_statuspage_probe_reads_only_the_summary(fixtures_dir: Path) -> None:
    recorder = Recorder({"/api/v2/summary.json": fixture_response(
        fixtures_dir, "statuspage-summary-anthropic.json")})
    obs = await probe(page("statuspage", component="Claude Console (platform.claude.com)"),
                      recorder)
    assert [r.url.path for r in recorder.requests] == ["/api/v2/summary.json"]
    assert obs.component_status == "degraded_performance"
    assert obs.component_name == "Claude Console (platform.claude.com)"
    assert obs.incident is not None and obs.incident.id == "978mjkgw6mh7"
    assert obs.detail == ("Claude Console (platform.claude.com): degraded_performance — "
                          "Elevated errors on platform.claude.com")
    assert obs.body_excerpt == ""  # incident titles are not risk-control wording


async def test_statuspage_probe_html_is_invalid_json() -> None:
    recorder = Recorder({"/api/v2/summary.json": httpx2.Response(200, html="<h1>Hi</h1>")})
    obs = await probe(page("statuspage"), recorder)
    assert obs.exception == "InvalidJSON"
    assert obs.body_excerpt == "<h1>Hi</h1>"
    assert obs.component_status is None


async def test_statuspage_component_missing_names_the_query(fixtures_dir: Path) -> None:
    recorder = Recorder({"/api/v2/summary.json": fixture_response(
        fixtures_dir, "openai-incidentio-compat-summary-degraded.json")})
    obs = await probe(page("statuspage"), recorder)
    assert obs.component_status is None
    assert obs.component_name == "Sora"
    assert obs.detail is not None and obs.detail.startswith("component 'Sora' not found")


async def test_incidentio_feed_status_beats_the_shim(fixtures_dir: Path) -> None:
    recorder = Recorder({
        "/api/v2/summary.json": fixture_response(
            fixtures_dir, "openai-incidentio-compat-summary.json"),
        "/proxy/status.openai.com/incidents": fixture_response(
            fixtures_dir, "incidentio-proxy-incidents-openai-tokenpace.json"),
    })
    service = page("incidentio", base_url="https://status.openai.com")
    obs = await probe(service, recorder, now=datetime(2026, 7, 11, 6, 50, tzinfo=UTC))
    assert [r.url.path for r in recorder.requests] == [
        "/api/v2/summary.json", "/proxy/status.openai.com/incidents"]
    assert obs.component_status == "full_outage"  # the shim says operational
    assert obs.incident is not None and obs.incident.id == "01KX7Y6ETMKP3ATQ85Z33J0EHN"
    assert obs.incident.url == "https://status.openai.com/incidents/01KX7Y6ETMKP3ATQ85Z33J0EHN"
    assert obs.detail == "Sora: full_outage — Elevated Errors for Sora API"


async def test_incidentio_quiet_feed_keeps_the_shim_status(fixtures_dir: Path) -> None:
    recorder = Recorder({
        "/api/v2/summary.json": fixture_response(
            fixtures_dir, "openai-incidentio-compat-summary.json"),
        "/proxy/status.openai.com/incidents": fixture_response(
            fixtures_dir, "incidentio-proxy-incidents-openai-tokenpace.json"),
    })
    obs = await probe(page("incidentio", base_url="https://status.openai.com"), recorder)
    assert (obs.component_status, obs.incident, obs.detail) == ("operational", None,
                                                                "Sora: operational")


@pytest.mark.parametrize(("feed", "note"), [
    (None, "incidents feed unavailable: HTTP 404"),
    (httpx2.Response(200, html="<html>nope</html>"),
     "incidents feed unavailable: unexpected payload"),
    (httpx2.Response(200, json=["not", "a", "feed"]),
     "incidents feed unavailable: unexpected payload"),
])
async def test_incidentio_feed_failure_keeps_step_one(
        fixtures_dir: Path, feed: httpx2.Response | None, note: str) -> None:
    routes: dict[str, Route] = {"/api/v2/summary.json": fixture_response(
        fixtures_dir, "openai-incidentio-compat-summary.json")}
    if feed is not None:
        routes["/proxy/status.openai.com/incidents"] = feed
    obs = await probe(page("incidentio", base_url="https://status.openai.com"),
                      Recorder(routes))
    assert obs.exception is None
    assert obs.component_status == "operational"
    assert obs.detail == f"Sora: operational; {note}"


async def test_incidentio_summary_failure_skips_the_feed() -> None:
    recorder = Recorder({"/api/v2/summary.json": httpx2.Response(503, text="down")})
    obs = await probe(page("incidentio", base_url="https://status.openai.com"), recorder)
    assert len(recorder.requests) == 1
    assert (obs.http_status, obs.component_status) == (503, None)


async def test_google_cloud_probe(fixtures_dir: Path) -> None:
    recorder = Recorder({"/incidents.json": fixture_response(
        fixtures_dir, "google-cloud-incidents.json")})
    obs = await probe(page("google_cloud"), recorder)
    assert [r.url.path for r in recorder.requests] == ["/incidents.json"]
    assert obs.component_status == "operational"
    assert obs.incident is None
    gone = await probe(page("google_cloud"), Recorder({"/incidents.json": httpx2.Response(
        200, json={"not": "a list"})}))
    assert gone.exception == "InvalidJSON"


# --- dispatch and not-configured ----------------------------------------------------------------

@pytest.mark.parametrize(("service", "reason"), [
    (relay(base_url=None, base_url_env="SORA_RELAY_BASE_URL"), "set SORA_RELAY_BASE_URL"),
    (gemini(api_key=None, api_key_env="GEMINI_API_KEY"), "set GEMINI_API_KEY"),
    (page("statuspage", base_url=None), "set base_url"),
])
async def test_not_configured_makes_no_request(service: ServiceConfig, reason: str) -> None:
    recorder = Recorder()
    obs = await probe(service, recorder)
    assert recorder.requests == []
    assert obs == Observation(latency_ms=0, not_configured=reason)


def test_every_kind_has_a_probe() -> None:
    assert set(PROBES) == {"openai_compat", "gemini", "statuspage", "incidentio",
                           "google_cloud"}


# --- pure helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("base", "parts", "url"), [
    ("https://r.example/v1", ("models", "sora-2"), "https://r.example/v1/models/sora-2"),
    ("https://r.example/v1/", ("/models/", "sora-2"), "https://r.example/v1/models/sora-2"),
    ("https://r.example", ("api/v2/summary.json",), "https://r.example/api/v2/summary.json"),
    ("https://r.example/v1", ("models", "a b?c"), "https://r.example/v1/models/a%20b%3Fc"),
])
def test_join_url(base: str, parts: tuple[str, ...], url: str) -> None:
    assert join_url(base, *parts) == url


@pytest.mark.parametrize(("value", "expected"), [
    (int(SORA_SHUTDOWN.timestamp()), SORA_SHUTDOWN),
    (str(int(SORA_SHUTDOWN.timestamp())), SORA_SHUTDOWN),
    ("2026-09-24", SORA_SHUTDOWN),
    ("2026-09-24T02:00:00+02:00", SORA_SHUTDOWN),
    ("2026-09-24T00:00:00Z", SORA_SHUTDOWN),
    (None, None), ("soon", None), (True, None), ({"at": 1}, None), (10**20, None),
])
def test_parse_shutdown_date(value: object, expected: datetime | None) -> None:
    parsed = parse_shutdown_date(value)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_parse_timestamp_keeps_fractions() -> None:
    assert parse_timestamp("2026-08-21T19:48:34.66Z") == datetime(
        2026, 8, 21, 19, 48, 34, 660000, tzinfo=UTC)


def test_error_parsers(fixtures_dir: Path) -> None:
    body = json.loads((fixtures_dir / "openai-errors/404-model_not_found.json").read_bytes())
    assert openai_error(body)[0] == "model_not_found"
    assert openai_error({"detail": "Not Found"}) == (None, "Not Found")
    assert openai_error({"id": "sora-2"}, failed_status=False) == (None, None)
    assert gemini_error({"error": {"code": 429, "message": "quota"}}) == ("429", "quota")
    assert gemini_error(["x"]) == (None, None)


def test_excerpt_redacts_before_cutting() -> None:
    body = b"a" * 1990 + KEY.encode() + b"tail"
    cut = excerpt(body, secrets=(KEY,))
    assert len(cut) == 2000
    assert cut.endswith("a[redacted]")
    assert KEY[:8] not in cut
    assert excerpt("风控".encode() + b"\xff") == "风控\ufffd"


def test_name_resolution_is_found_in_the_cause_chain() -> None:
    import socket

    try:
        try:
            raise socket.gaierror(-2, "whatever")
        except OSError as inner:
            raise httpx2.ConnectError("connect failed") from inner
    except httpx2.ConnectError as outer:
        assert is_name_resolution_error(outer)
    assert not is_name_resolution_error(httpx2.ConnectError("All connection attempts failed"))


async def test_fetch_reports_status_and_headers() -> None:
    recorder = Recorder({"/x": httpx2.Response(
        429, text="slow down", headers={"retry-after": "7", "content-type": "text/plain"})})
    async with recorder.client() as client:
        fetched = await fetch(client, "https://h.example/x", timeout=1.0, max_bytes=1024)
    assert (fetched.status, fetched.retry_after, fetched.body) == (429, "7", b"slow down")
    assert fetched.content_type == "text/plain"
    assert not fetched.ok and fetched.exception is None
