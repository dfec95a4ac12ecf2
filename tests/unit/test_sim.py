"""The loopback simulators speak the real protocols: the openai SDK and plain HTTP against them."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import openai
import pytest

from bot.sim import ALL, SimRelay, SimStatusPage
from bot.sim.relay import HUGE_BYTES, MP4_MAGIC

# openai 3.x warns on every Videos call since the Sora shutdown; the relays still serve the shape.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")

KEY = "sk-sim-test-0123456789"
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
from tests.conftest import FIXTURES_DIR as FIXTURES  # noqa: E402


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
async def relay() -> AsyncIterator[SimRelay]:
    async with SimRelay(api_key=KEY, polls_to_complete=2, poll_after_ms=1) as sim:
        yield sim


@pytest.fixture
async def sdk(relay: SimRelay) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=relay.url, api_key=KEY, max_retries=0, timeout=5)
    yield client
    await client.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(timeout=5) as client:
        yield client


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- relay: the real openai SDK ---------------------------------------------------------------


async def test_start_returns_loopback_v1_url() -> None:
    async with SimRelay() as sim:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", sim.url)
        assert sim.url == sim.base_url + "/v1"


async def test_sdk_retrieves_model_with_shutdown_date(
    relay: SimRelay, sdk: openai.AsyncOpenAI
) -> None:
    model = await sdk.models.retrieve("sora-2")
    assert (model.id, model.object, model.owned_by) == ("sora-2", "model", "system")
    assert model.shutdown_date is None

    relay.set_shutdown("sora-2", "2026-09-24")
    model = await sdk.models.retrieve("sora-2")
    assert model.shutdown_date == "2026-09-24"


async def test_sdk_not_found_is_model_not_found(relay: SimRelay, sdk: openai.AsyncOpenAI) -> None:
    relay.set("sora-2", "not_found")
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.models.retrieve("sora-2")
    assert err.value.code == "model_not_found"
    assert err.value.type == "invalid_request_error"
    assert "The model `sora-2` does not exist or you do not have access to it." in str(err.value)
    listed = [m.id async for m in sdk.models.list()]
    assert "sora-2" not in listed and "sora-2-pro" in listed


async def test_unknown_model_is_not_found(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as err:
        await sdk.models.retrieve("seedance-1.0-pro")
    assert err.value.code == "model_not_found"


async def test_sdk_rate_limited(relay: SimRelay, sdk: openai.AsyncOpenAI) -> None:
    relay.set("sora-2-pro", "rate_limited", retry_after=7)
    with pytest.raises(openai.RateLimitError) as err:
        await sdk.models.retrieve("sora-2-pro")
    assert err.value.code == "rate_limit_exceeded"
    assert err.value.response.headers["retry-after"] == "7"
    assert (await sdk.models.retrieve("sora-2")).id == "sora-2"  # other models unaffected


async def test_sdk_wrong_key_is_authentication_error_echoing_the_key(relay: SimRelay) -> None:
    wrong = "sk-wrong-SECRET-4242"
    client = openai.AsyncOpenAI(base_url=relay.url, api_key=wrong, max_retries=0)
    try:
        with pytest.raises(openai.AuthenticationError) as err:
            await client.models.retrieve("sora-2")
    finally:
        await client.close()
    assert err.value.code == "invalid_api_key"
    assert wrong in str(err.value)


async def test_missing_key_is_401_like_openai(relay: SimRelay, http: httpx2.AsyncClient) -> None:
    resp = await http.get(f"{relay.url}/videos", params={"limit": 1})
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert (error["type"], error["code"]) == ("invalid_request_error", None)


async def test_sdk_video_job_completes_and_downloads(
    relay: SimRelay, sdk: openai.AsyncOpenAI
) -> None:
    video = await sdk.videos.create(model="sora-2", prompt="a cat on a skateboard", seconds="8")
    assert video.id.startswith("video_")
    assert (video.status, video.progress, video.seconds, video.size) == (
        "queued",
        0,
        "8",
        "720x1280",
    )
    first = await sdk.videos.retrieve(video.id)
    assert first.status == "in_progress" and 0 < first.progress < 100
    done = await sdk.videos.retrieve(video.id)
    assert done.status == "completed" and done.progress == 100 and done.completed_at is not None
    content = await sdk.videos.download_content(video.id)
    assert content.content.startswith(MP4_MAGIC)
    assert relay.billable_calls == 1


async def test_sdk_create_and_poll_uses_poll_hint(relay: SimRelay, sdk: openai.AsyncOpenAI) -> None:
    relay.set("kling-v2.1", "ok")
    video = await sdk.videos.create_and_poll(model="kling-v2.1", prompt="waves")
    assert video.status == "completed" and video.model == "kling-v2.1"


async def test_job_failed_behaviour(relay: SimRelay, sdk: openai.AsyncOpenAI) -> None:
    relay.set("sora-2", "job_failed")
    video = await sdk.videos.create(model="sora-2", prompt="x")
    await sdk.videos.retrieve(video.id)
    failed = await sdk.videos.retrieve(video.id)
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "generation_failed"


async def test_content_before_completion_is_refused(
    relay: SimRelay, sdk: openai.AsyncOpenAI
) -> None:
    video = await sdk.videos.create(model="sora-2", prompt="x")
    with pytest.raises(openai.BadRequestError):
        await sdk.videos.download_content(video.id)
    with pytest.raises(openai.NotFoundError):
        await sdk.videos.retrieve("video_missing")


async def test_billable_calls_count_only_creations(
    relay: SimRelay, sdk: openai.AsyncOpenAI, http: httpx2.AsyncClient
) -> None:
    await sdk.models.retrieve("sora-2")
    await sdk.models.list()
    assert (await http.get(f"{relay.url}/videos?limit=1", headers=auth())).status_code == 200
    assert relay.billable_calls == 0

    relay.set("sora-image", "ok")  # scripting a model makes the relay serve it
    image = await sdk.images.generate(model="sora-image", prompt="a lighthouse")
    assert image.data and image.data[0].b64_json
    relay.set("sora-2", "risk_control")
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.videos.create(model="sora-2", prompt="x")  # refused, but still an attempt
    assert relay.billable_calls == 2
    assert ("GET", "/v1/models/sora-2") in relay.requests


async def test_list_videos_shape(relay: SimRelay, http: httpx2.AsyncClient) -> None:
    resp = await http.get(f"{relay.url}/videos", params={"limit": 1}, headers=auth())
    assert resp.json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


# -- relay: behaviours over plain HTTP ---------------------------------------------------------


async def test_risk_control_and_captcha_wording(relay: SimRelay, http: httpx2.AsyncClient) -> None:
    relay.set("sora-2", "risk_control")
    relay.set("sora-2-pro", "captcha", status=200)
    rc = await http.get(f"{relay.url}/models/sora-2", headers=auth())
    assert rc.status_code == 403
    assert rc.json()["error"]["code"] == "risk_control"
    assert "风控" in rc.json()["error"]["message"] and "risk control" in rc.text

    captcha = await http.get(f"{relay.url}/models/sora-2-pro", headers=auth())
    assert captcha.status_code == 200  # reverse relays also wrap failures in a 200
    assert captcha.json()["error"]["code"] == "captcha_required"
    assert "验证" in captcha.json()["error"]["message"]


@pytest.mark.parametrize(
    ("behaviour", "status", "error_type"),
    [
        ("unavailable", 503, "server_error"),
        ("server_error", 500, "server_error"),
        ("unauthorized", 401, "invalid_request_error"),
    ],
)
async def test_error_envelopes(
    relay: SimRelay, http: httpx2.AsyncClient, behaviour: str, status: int, error_type: str
) -> None:
    relay.set("sora-2", behaviour)
    resp = await http.get(f"{relay.url}/models/sora-2", headers=auth())
    assert resp.status_code == status
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"]["type"] == error_type


async def test_flaky_is_a_deterministic_pattern(relay: SimRelay, http: httpx2.AsyncClient) -> None:
    relay.set("sora-2", "flaky", ratio=0.4, fail_as="rate_limited")
    codes = [
        (await http.get(f"{relay.url}/models/sora-2", headers=auth())).status_code
        for _ in range(10)
    ]
    assert codes == [429, 429, 200, 429, 200, 429, 429, 200, 429, 200]
    relay.set("sora-2", "flaky", ratio=0.4)  # re-scripting restarts the pattern
    again = await http.get(f"{relay.url}/models/sora-2", headers=auth())
    assert again.status_code == 403 and again.json()["error"]["code"] == "risk_control"


async def test_html_and_huge_bodies(relay: SimRelay, http: httpx2.AsyncClient) -> None:
    relay.set("sora-2", "html")
    relay.set("sora-2-pro", "huge")
    page = await http.get(f"{relay.url}/models/sora-2", headers=auth())
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text.lstrip().lower().startswith("<!doctype html")
    huge = await http.get(f"{relay.url}/models/sora-2-pro", headers=auth())
    assert huge.status_code == 200 and len(huge.content) == HUGE_BYTES == 10 * 1024 * 1024


async def test_slow_answers_after_delay(relay: SimRelay, http: httpx2.AsyncClient) -> None:
    relay.set("sora-2", "slow", delay=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    fast = await http.get(f"{relay.url}/models/sora-2-pro", headers=auth())
    fast_took = loop.time() - start
    start = loop.time()
    slow = await http.get(f"{relay.url}/models/sora-2", headers=auth())
    slow_took = loop.time() - start
    assert fast.status_code == slow.status_code == 200
    assert fast_took < 0.3 <= slow_took


async def test_hang_never_answers_and_stop_releases_it(http: httpx2.AsyncClient) -> None:
    sim = SimRelay()
    url = await sim.start()
    sim.set("sora-2", "hang")
    with pytest.raises(httpx2.ReadTimeout):
        await http.get(f"{url}/models/sora-2", timeout=0.3)
    pending = asyncio.create_task(http.get(f"{url}/models/sora-2", timeout=5))
    for _ in range(200):  # until the second request is parked in the handler
        if len(sim.requests) == 2:
            break
        await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await sim.stop()
    assert loop.time() - start < 0.9  # not held for the shutdown timeout
    with pytest.raises(httpx2.TransportError):
        await pending


async def test_relay_wide_script_and_unknown_route(
    relay: SimRelay, http: httpx2.AsyncClient
) -> None:
    relay.set(ALL, "unavailable")
    assert (await http.get(f"{relay.url}/videos", headers=auth())).status_code == 503
    assert (await http.get(f"{relay.url}/models/sora-2", headers=auth())).status_code == 503
    relay.set("sora-2", "ok")
    assert (await http.get(f"{relay.url}/models/sora-2", headers=auth())).status_code == 200
    relay.set(ALL, "ok")
    resp = await http.get(f"{relay.url}/chat/nowhere", headers=auth())
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Invalid URL (GET /v1/chat/nowhere)"


async def test_250_concurrent_requests_are_not_serialised(http: httpx2.AsyncClient) -> None:
    async with (
        SimRelay(delay=0.2) as sim,
        httpx2.AsyncClient(limits=httpx2.Limits(max_connections=300), timeout=10) as client,
    ):
        loop = asyncio.get_running_loop()
        start = loop.time()
        responses = await asyncio.gather(
            *(client.get(f"{sim.url}/models/sora-2") for _ in range(250))
        )
        took = loop.time() - start
    assert all(r.status_code == 200 for r in responses)
    assert len(sim.requests) == 250
    assert took < 5  # serial would take 50 s


def test_set_rejects_nonsense() -> None:
    sim = SimRelay()
    with pytest.raises(ValueError):
        sim.set("sora-2", "on_fire")
    with pytest.raises(ValueError):
        sim.set("sora-2", "flaky", ratio=1.5)
    with pytest.raises(ValueError):
        sim.set("sora-2", "flaky", fail_as="ok")


# -- status page ---------------------------------------------------------------------------------


@pytest.fixture
async def page() -> AsyncIterator[SimStatusPage]:
    components = ("APIs", "ChatGPT", "Sora")
    async with SimStatusPage(components=components, incidentio=True, clock=lambda: T0) as sim:
        yield sim


async def test_summary_reflects_set_component(
    page: SimStatusPage, http: httpx2.AsyncClient
) -> None:
    summary = (await http.get(f"{page.url}/api/v2/summary.json")).json()
    assert summary["status"] == {"indicator": "none", "description": "All Systems Operational"}
    assert "scheduled_maintenances" not in summary  # incident.io's shim omits it

    page.set_component("Sora", "full_outage", now=T0 + timedelta(minutes=5))
    summary = (await http.get(f"{page.url}/api/v2/summary.json")).json()
    by_name = {c["name"]: c for c in summary["components"]}
    assert by_name["Sora"]["status"] == "major_outage"  # Statuspage vocabulary
    assert by_name["Sora"]["updated_at"] == "2026-11-21T12:05:00Z"
    assert by_name["APIs"]["status"] == "operational"
    assert summary["status"]["indicator"] == "major"
    assert summary["page"]["updated_at"] == "2026-11-21T12:05:00Z"


async def test_component_ids_are_stable_ulids(page: SimStatusPage) -> None:
    sora = page.component_id("Sora")
    assert ULID.match(sora)
    assert sora == SimStatusPage(components=["Sora"]).component_id("Sora")
    assert sora != page.component_id("APIs")


async def test_proxy_feed_shows_incident_on_the_right_component(
    page: SimStatusPage, http: httpx2.AsyncClient
) -> None:
    incident = page.open_incident("Elevated Errors for Sora API", "Sora", "full_outage", T0)
    summary = (await http.get(f"{page.url}/api/v2/summary.json")).json()
    sora_id = next(c["id"] for c in summary["components"] if c["name"] == "Sora")
    assert [i["id"] for i in summary["incidents"]] == [incident]

    feed = (await http.get(f"{page.url}/proxy/status.openai.com/incidents")).json()
    (entry,) = feed["incidents"]
    assert (entry["id"], entry["status"], entry["type"]) == (incident, "investigating", "incident")
    assert entry["published_at"] == "2026-11-21T12:00:00.000Z"
    (impact,) = entry["component_impacts"]
    assert impact["component_id"] == sora_id
    assert (impact["status"], impact["end_at"]) == ("full_outage", None)
    assert entry["affected_components"] == [
        {"component_id": sora_id, "status": "full_outage", "current_status": "full_outage"}
    ]

    page.resolve_incident(incident, T0 + timedelta(minutes=28))
    feed = (await http.get(f"{page.url}/proxy/status.openai.com/incidents")).json()
    entry = feed["incidents"][0]
    assert entry["status"] == "resolved"
    assert entry["component_impacts"][0]["end_at"] == "2026-11-21T12:28:00.000Z"
    assert entry["affected_components"][0]["current_status"] == "operational"
    assert [u["to_status"] for u in entry["updates"]] == ["resolved", "investigating"]
    summary = (await http.get(f"{page.url}/api/v2/summary.json")).json()
    assert summary["incidents"] == []


async def test_update_incident_adds_a_new_impact_period(
    page: SimStatusPage, http: httpx2.AsyncClient
) -> None:
    incident = page.open_incident("Sora errors", "Sora", "partial_outage", T0)
    later = T0 + timedelta(minutes=10)
    page.update_incident(incident, "monitoring", component_status="degraded_performance", now=later)
    entry = (await http.get(f"{page.url}/proxy/x/incidents")).json()["incidents"][0]
    statuses = [(i["status"], i["end_at"]) for i in entry["component_impacts"]]
    assert statuses == [
        ("partial_outage", "2026-11-21T12:10:00.000Z"),
        ("degraded_performance", None),
    ]
    assert entry["affected_components"][0]["status"] == "partial_outage"  # the worst


async def test_statuspage_maintenance_feeds(http: httpx2.AsyncClient) -> None:
    until = T0 + timedelta(hours=2)
    async with SimStatusPage(name="Claude", components=["claude.ai", "Claude API"]) as sim:
        maintenance = sim.start_maintenance("Claude API", "Database upgrade", T0, until)
        summary = (await http.get(f"{sim.url}/api/v2/summary.json")).json()
        (active,) = summary["scheduled_maintenances"]
        assert (active["id"], active["status"], active["impact"]) == (
            maintenance,
            "in_progress",
            "maintenance",
        )
        assert active["scheduled_until"] == "2026-11-21T14:00:00.000Z"
        assert active["components"][0]["name"] == "Claude API"
        assert summary["status"]["indicator"] == "maintenance"

        sim.end_maintenance(maintenance, T0 + timedelta(hours=1))
        summary = (await http.get(f"{sim.url}/api/v2/summary.json")).json()
        assert summary["scheduled_maintenances"] == []
        listed = (await http.get(f"{sim.url}/api/v2/scheduled-maintenances.json")).json()
        assert [m["status"] for m in listed["scheduled_maintenances"]] == ["completed"]
        # Atlassian pages have no incident.io native feed.
        assert (await http.get(f"{sim.url}/proxy/status.claude.com/incidents")).status_code == 404


async def test_proxy_feed_maintenance_type(page: SimStatusPage, http: httpx2.AsyncClient) -> None:
    page.start_maintenance("Sora", "Sora maintenance", T0, T0 + timedelta(hours=1))
    entry = (await http.get(f"{page.url}/proxy/status.openai.com/incidents")).json()["incidents"][0]
    assert (entry["type"], entry["status"]) == ("maintenance", "maintenance_in_progress")
    assert entry["component_impacts"][0]["status"] == "under_maintenance"


async def test_gcp_incident_opens_and_closes(http: httpx2.AsyncClient) -> None:
    veo = "p5rCvyraXdeC6HFE8XJJ"
    async with SimStatusPage(name="Google Cloud") as sim:
        assert (await http.get(f"{sim.url}/incidents.json")).json() == []
        incident = sim.open_gcp_incident(
            veo, "high", "SERVICE_OUTAGE", "Veo requests are failing.", T0
        )
        (entry,) = (await http.get(f"{sim.url}/incidents.json")).json()
        assert entry["id"] == incident and "end" not in entry
        assert entry["begin"] == "2026-11-21T12:00:00+00:00"
        assert entry["affected_products"] == [
            {"title": "Vertex Veo API", "id": veo, "current_title": "Veo on Agent Platform"}
        ]
        assert entry["most_recent_update"]["status"] == "SERVICE_OUTAGE"
        assert entry["most_recent_update"] == entry["updates"][0]

        sim.close_gcp_incident(incident, T0 + timedelta(hours=1))
        (entry,) = (await http.get(f"{sim.url}/incidents.json")).json()
        assert entry["end"] == "2026-11-21T13:00:00+00:00"
        assert entry["most_recent_update"]["status"] == "AVAILABLE"
        assert entry["currently_affected_locations"] == []


# -- shapes match the real captured payloads ---------------------------------------------------


async def test_incidentio_shim_keys_match_real_payload(
    page: SimStatusPage, http: httpx2.AsyncClient
) -> None:
    real = fixture("openai-incidentio-compat-summary-degraded.json")
    page.open_incident("Elevated errors", "Sora", "degraded_performance", T0)
    ours = (await http.get(f"{page.url}/api/v2/summary.json")).json()
    assert set(ours) == set(real)
    assert set(ours["page"]) == set(real["page"])
    assert set(ours["components"][0]) == set(real["components"][0])
    assert set(ours["incidents"][0]) == set(real["incidents"][0])
    assert set(ours["incidents"][0]["incident_updates"][0]) == set(
        real["incidents"][0]["incident_updates"][0]
    )
    assert ours["status"] == real["status"]  # minor, "Partial System Degradation"


async def test_statuspage_and_feed_keys_cover_real_payloads(
    page: SimStatusPage, http: httpx2.AsyncClient
) -> None:
    page.open_incident("Elevated Errors for Sora API", "Sora", "full_outage", T0)
    feed = (await http.get(f"{page.url}/proxy/status.openai.com/incidents")).json()
    real_feed = fixture("incidentio-proxy-incidents-pleo-statusy.json")["incidents"][0]
    entry = feed["incidents"][0]
    assert set(real_feed) <= set(entry)
    assert set(real_feed["component_impacts"][0]) <= set(entry["component_impacts"][0])
    assert set(real_feed["updates"][0]) <= set(entry["updates"][0])

    async with SimStatusPage(name="GitHub", components=["Git Operations"]) as sim:
        sim.open_incident("Incident with Git", "Git Operations", "major_outage", T0)
        ours = (await http.get(f"{sim.url}/api/v2/summary.json")).json()
    real = fixture("statuspage-summary-github.json")
    assert set(ours) == set(real)
    assert set(real["components"][0]) <= set(ours["components"][0])
    assert set(real["incidents"][0]) <= set(ours["incidents"][0])
    assert set(real["incidents"][0]["incident_updates"][0]) <= set(
        ours["incidents"][0]["incident_updates"][0]
    )


async def test_gcp_keys_cover_real_payload(http: httpx2.AsyncClient) -> None:
    real = fixture("google-cloud-incidents.json")[0]
    async with SimStatusPage() as sim:
        incident = sim.open_gcp_incident("Z0FZJAMvEB4j3NbCJs6B", begin=T0)
        sim.close_gcp_incident(incident, T0 + timedelta(minutes=30))
        (ours,) = (await http.get(f"{sim.url}/incidents.json")).json()
    assert set(real) == set(ours)
    assert set(real["most_recent_update"]) == set(ours["most_recent_update"])
    assert set(real["affected_products"][0]) == set(ours["affected_products"][0])
