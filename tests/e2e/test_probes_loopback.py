"""Probes over real HTTP: a loopback aiohttp server and a real ``httpx2.AsyncClient``."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from pydantic import SecretStr

from bot.config import ServiceConfig
from bot.models import Observation
from bot.probes import run_probe
from bot.probes.http import fetch
from tests.fakes.loopback import Loopback, bytes_handler, json_handler, raw_server, text_handler

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
KEY = "sk-loopback-0123456789abcdef"
MIB = 1_048_576


@pytest.fixture
async def server() -> AsyncIterator[Loopback]:
    async with Loopback() as srv:
        yield srv


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as c:
        yield c


def relay(base_url: str, **kw: Any) -> ServiceConfig:
    return ServiceConfig(**{"id": "relay", "name": "Relay", "kind": "openai_compat",
                            "model": "sora-2", "base_url": base_url, "api_key": SecretStr(KEY),
                            "timeout": 0.5, "max_body_bytes": MIB, **kw})


async def timed(service: ServiceConfig, client: httpx2.AsyncClient) -> tuple[Observation, float]:
    """Run the probe, timing it; a probe that overruns fails the test instead of hanging it."""
    start = time.perf_counter()
    async with asyncio.timeout(service.timeout + 5.0):
        obs = await run_probe(service, client=client, now=NOW)
    return obs, time.perf_counter() - start


async def test_model_listed_over_real_http(server: Loopback, client: httpx2.AsyncClient) -> None:
    server.route("GET", "/v1/models/sora-2", json_handler(
        {"id": "sora-2", "object": "model", "shutdown_date": "2026-09-24"}))
    obs, _ = await timed(relay(server.url + "/v1"), client)
    assert (obs.http_status, obs.exception) == (200, None)
    assert obs.shutdown_date == datetime(2026, 9, 24, tzinfo=UTC)
    assert obs.latency_ms > 0
    [request] = server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_model_not_found_over_real_http(server: Loopback, client: httpx2.AsyncClient,
                                              fixtures_dir: Path) -> None:
    body = (fixtures_dir / "openai-errors/404-model_not_found.json").read_bytes()
    server.route("GET", "/v1/models/sora-2", bytes_handler(body, status=404))
    obs, _ = await timed(relay(server.url + "/v1"), client)
    assert (obs.http_status, obs.error_code) == (404, "model_not_found")


async def test_html_on_200_is_invalid_json(server: Loopback, client: httpx2.AsyncClient) -> None:
    server.route("GET", "/v1/models/sora-2",
                 text_handler("<html><title>Just a moment...</title>风控</html>"))
    obs, _ = await timed(relay(server.url + "/v1"), client)
    assert obs.exception == "InvalidJSON"
    assert obs.http_status == 200
    assert "风控" in obs.body_excerpt


async def test_truncated_json_is_invalid_json(server: Loopback,
                                              client: httpx2.AsyncClient) -> None:
    server.route("GET", "/v1/models/sora-2", bytes_handler(b'{"id": "sora-2", "obj'))
    obs, _ = await timed(relay(server.url + "/v1"), client)
    assert obs.exception == "InvalidJSON"
    assert obs.body_excerpt == '{"id": "sora-2", "obj'


async def test_silent_server_times_out(server: Loopback, client: httpx2.AsyncClient) -> None:
    server.route("GET", "/v1/models/sora-2", server.hang())
    obs, elapsed = await timed(relay(server.url + "/v1"), client)
    assert obs.exception == "Timeout"
    assert obs.http_status is None
    assert 0.4 < elapsed < 2.0
    assert obs.latency_ms == pytest.approx(500, abs=300)


async def test_trickling_body_stops_at_the_hard_deadline(server: Loopback,
                                                         client: httpx2.AsyncClient) -> None:
    server.route("GET", "/v1/models/sora-2", server.trickle(every=0.05))
    obs, elapsed = await timed(relay(server.url + "/v1"), client)
    assert obs.exception == "Timeout"  # httpx2's read timeout alone would never fire
    assert obs.http_status == 200  # headers did arrive
    assert elapsed < 2.0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_ten_megabytes_is_response_too_large(server: Loopback, client: httpx2.AsyncClient,
                                                   chunked: bool) -> None:
    server.route("GET", "/v1/models/sora-2", bytes_handler(b"x" * (10 * MIB), chunked=chunked))
    obs, elapsed = await timed(relay(server.url + "/v1", timeout=10.0), client)
    assert obs.exception == "ResponseTooLarge"
    assert obs.http_status == 200
    assert elapsed < 2.0


async def test_fetch_keeps_at_most_max_bytes(server: Loopback,
                                             client: httpx2.AsyncClient) -> None:
    server.route("GET", "/big", bytes_handler(b"y" * (3 * MIB), chunked=True))
    fetched = await fetch(client, server.url + "/big", timeout=5.0, max_bytes=MIB)
    assert fetched.exception == "ResponseTooLarge"
    assert len(fetched.body) == MIB


async def test_connection_refused_is_connect_error(client: httpx2.AsyncClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    obs, elapsed = await timed(relay(f"http://127.0.0.1:{port}/v1"), client)
    assert obs.exception == "ConnectError"
    assert elapsed < 2.0


async def test_unresolvable_host_is_name_resolution_error(client: httpx2.AsyncClient) -> None:
    obs, _ = await timed(relay("http://sora-relay.invalid/v1", timeout=5.0), client)
    # ".invalid" never resolves; an odd sandbox resolver may fail differently.
    assert obs.exception in {"NameResolutionError", "ConnectError"}
    assert obs.http_status is None


async def test_short_body_is_remote_protocol_error(client: httpx2.AsyncClient) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n"
    async with raw_server(head + b'{"id": "sora-2"') as url:
        obs, _ = await timed(relay(url + "/v1"), client)
    assert obs.exception == "RemoteProtocolError"
    assert obs.http_status == 200


async def test_no_key_no_header_over_real_http(server: Loopback,
                                               client: httpx2.AsyncClient) -> None:
    server.route("GET", "/v1/models/sora-2", json_handler(
        {"error": {"message": "missing key", "code": None}}, status=401))
    obs, _ = await timed(relay(server.url + "/v1", api_key=None), client)
    assert "authorization" not in server.requests[0].headers
    assert (obs.http_status, obs.authenticated) == (401, False)


async def test_incidentio_pair_over_real_http(server: Loopback, client: httpx2.AsyncClient,
                                              fixtures_dir: Path) -> None:
    server.route("GET", "/api/v2/summary.json", bytes_handler(
        (fixtures_dir / "openai-incidentio-compat-summary.json").read_bytes()))
    server.route("GET", "/proxy/127.0.0.1/incidents", bytes_handler(
        (fixtures_dir / "incidentio-proxy-incidents-openai-tokenpace.json").read_bytes()))
    service = ServiceConfig(id="openai-status", name="OpenAI", kind="incidentio",
                            base_url=server.url, component="Sora", timeout=2.0)
    obs = await run_probe(service, client=client, now=datetime(2026, 7, 11, 6, 40, tzinfo=UTC))
    assert [r.path for r in server.requests] == ["/api/v2/summary.json",
                                                 "/proxy/127.0.0.1/incidents"]
    assert obs.component_status == "full_outage"
    assert obs.incident is not None and obs.incident.name == "Elevated Errors for Sora API"
