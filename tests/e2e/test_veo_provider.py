"""VeoProvider end to end: the real google-genai client and httpx2 against SimGemini on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from google import genai
from google.genai import types
from pydantic import SecretStr

from bot.classify import Context, classify
from bot.config import ServiceConfig
from bot.models import Outcome
from bot.probes.gemini import probe_gemini
from bot.providers import PollError, SubmitError, TooLarge, VideoRequest
from bot.providers.veo import VeoProvider
from bot.redact import Redactor
from bot.sim.gemini import FILTERED_REASON, OPERATION_ERROR, SimGemini
from bot.sim.relay import FAKE_MP4

MODEL = "veo-3.1-generate-preview"
KEY = "AIzaSyVeoLoopback0123456789abcdefghijk"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CREATE = ("POST", f"/v1beta/models/{MODEL}:predictLongRunning")
REQUEST = VideoRequest(prompt="a paper boat on a rainy street", seconds=8, size="1280x720")
MIB = 1_048_576


def veo_service(base_url: str, *, key: str = KEY, timeout: float = 2.0) -> ServiceConfig:
    return ServiceConfig(id="veo-3.1", name="Veo 3.1 · Gemini API", kind="gemini", model=MODEL,
                         base_url=base_url, api_key=SecretStr(key), timeout=timeout)


@pytest.fixture
async def sim() -> AsyncIterator[SimGemini]:
    async with SimGemini(api_key=KEY, polls_to_complete=2) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient() as client:
        yield client


@pytest.fixture
async def veo(sim: SimGemini, http: httpx2.AsyncClient) -> AsyncIterator[VeoProvider]:
    provider = VeoProvider(service=veo_service(sim.url), http_client=http)
    yield provider
    await provider.aclose()


@pytest.fixture(scope="module")
def adapter() -> Iterator[VeoProvider]:
    """One provider for the pure ``adapt`` cases (building one loads the CA store twice)."""
    http = httpx2.AsyncClient()
    provider = VeoProvider(service=veo_service("http://127.0.0.1:9/v1beta"), http_client=http)
    yield provider
    asyncio.run(provider.aclose())
    asyncio.run(http.aclose())


def ticking(*values: float) -> Iterator[float]:
    yield from values


def only_one_create(sim: SimGemini) -> None:
    assert sim.requests == [CREATE]
    assert sim.billable_calls == 1


# -- success ------------------------------------------------------------------------------------

async def test_submit_poll_download(sim: SimGemini, http: httpx2.AsyncClient) -> None:
    clock = ticking(10.0, 10.25)
    veo = VeoProvider(service=veo_service(sim.url), http_client=http, clock=lambda: next(clock))
    try:
        submitted = await veo.submit(REQUEST)
        assert submitted.job_id.startswith(f"models/{MODEL}/operations/")
        assert (submitted.state, submitted.progress, submitted.latency_ms) == (
            "queued", None, 250.0)

        first = await veo.status(submitted.job_id)
        assert (first.state, first.progress) == ("in_progress", None)
        second = await veo.status(submitted.job_id)
        assert (second.state, second.progress, second.error_code) == ("completed", 100, None)

        video = await veo.download(submitted.job_id, max_bytes=MIB)
        assert (video.content, video.mime) == (FAKE_MP4, "video/mp4")
    finally:
        await veo.aclose()

    operation = f"/v1beta/{submitted.job_id}"
    assert sim.requests[0] == CREATE and sim.billable_calls == 1
    assert sim.requests[1:4] == [("GET", operation)] * 3
    assert sim.requests[4][0] == "GET" and sim.requests[4][1].endswith(":download")
    assert sim.calls[0].body == {
        "instances": [{"prompt": REQUEST.prompt}],
        "parameters": {"aspectRatio": "16:9", "durationSeconds": 8, "resolution": "720p",
                       "sampleCount": 1},
    }


async def test_progress_from_operation_metadata(http: httpx2.AsyncClient) -> None:
    async with SimGemini(api_key=KEY, polls_to_complete=4, report_progress=True) as sim:
        veo = VeoProvider(service=veo_service(sim.url), http_client=http)
        job = (await veo.submit(REQUEST)).job_id
        assert [(await veo.status(job)).progress for _ in range(4)] == [25, 50, 75, 100]
        await veo.aclose()


async def test_the_existing_probe_reads_the_sim(sim: SimGemini, http: httpx2.AsyncClient) -> None:
    obs = await probe_gemini(veo_service(sim.url), client=http, now=NOW)
    assert (obs.http_status, obs.error_code) == (200, None)
    assert obs.detail == f"model {MODEL} listed (Veo 3.1)"
    sim.set(MODEL, "not_found")
    gone = await probe_gemini(veo_service(sim.url), client=http, now=NOW)
    assert classify(gone, Context(now=NOW)).outcome is Outcome.GONE
    assert sim.billable_calls == 0


async def test_sdk_generate_videos_still_refuses_the_developer_api(sim: SimGemini) -> None:
    """Why the create is our own POST: google-genai 3.4 raises before sending anything."""
    client = genai.Client(api_key=KEY, vertexai=False,
                          http_options=types.HttpOptions(base_url=sim.url, api_version=""))
    with pytest.raises(ValueError, match="only supported in Gemini Enterprise Agent Platform"):
        await client.aio.models.generate_videos(
            model=MODEL, source=types.GenerateVideosSource(prompt="x"))
    assert sim.requests == []
    client.close()


# -- submit failures: one create each, classified -------------------------------------------------

@pytest.mark.parametrize(("behaviour", "status", "code", "outcome"), [
    ("rate_limited", 429, "RESOURCE_EXHAUSTED", Outcome.THROTTLED),
    ("unavailable", 503, "UNAVAILABLE", Outcome.UNAVAILABLE),
    ("not_found", 404, "NOT_FOUND", Outcome.GONE),
    ("permission_denied", 403, "PERMISSION_DENIED", Outcome.MISCONFIGURED),
])
async def test_retryable_refusals(sim: SimGemini, veo: VeoProvider, behaviour: str, status: int,
                                  code: str, outcome: Outcome) -> None:
    sim.set(MODEL, behaviour)
    with pytest.raises(SubmitError) as caught:
        await veo.submit(REQUEST)
    error = caught.value
    assert (error.kind, error.code) == ("retryable", code)
    assert error.reason.startswith(f"{status} {code}")
    assert error.observation is not None
    assert (error.observation.http_status, error.observation.error_code) == (status, code)
    assert classify(error.observation, Context(now=NOW)).outcome is outcome
    only_one_create(sim)


@pytest.mark.parametrize(("behaviour", "code"), [
    ("invalid_argument", "INVALID_ARGUMENT"),
    ("safety_refused", "content_policy"),
])
async def test_final_refusals(sim: SimGemini, veo: VeoProvider, behaviour: str, code: str) -> None:
    sim.set(MODEL, behaviour)
    with pytest.raises(SubmitError) as caught:
        await veo.submit(REQUEST)
    assert (caught.value.kind, caught.value.code, caught.value.observation) == ("final", code, None)
    only_one_create(sim)


async def test_a_rejected_key_is_retryable_not_final(sim: SimGemini, http: httpx2.AsyncClient
                                                     ) -> None:
    """Google answers an unknown key with 400 INVALID_ARGUMENT + API_KEY_INVALID, not 401."""
    wrong = "AIzaSyWrongKey000000000000000000000000"
    veo = VeoProvider(service=veo_service(sim.url, key=wrong), http_client=http)
    with pytest.raises(SubmitError) as caught:
        await veo.submit(REQUEST)
    error = caught.value
    assert (error.kind, error.code) == ("retryable", "API_KEY_INVALID")
    assert error.observation is not None
    assert classify(error.observation, Context(now=NOW)).outcome is Outcome.MISCONFIGURED
    assert wrong not in repr((error.reason, error.observation))
    only_one_create(sim)
    await veo.aclose()


async def test_connection_refused_is_retryable(http: httpx2.AsyncClient) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    veo = VeoProvider(service=veo_service(f"http://127.0.0.1:{port}/v1beta"), http_client=http)
    with pytest.raises(SubmitError) as caught:
        await veo.submit(REQUEST)
    assert (caught.value.kind, caught.value.code) == ("retryable", "ConnectError")
    assert caught.value.observation is not None
    assert classify(caught.value.observation, Context(now=NOW)).outcome is Outcome.UNAVAILABLE
    await veo.aclose()


async def test_hang_after_sending_is_uncertain(sim: SimGemini, http: httpx2.AsyncClient) -> None:
    sim.set(MODEL, "hang")
    veo = VeoProvider(service=veo_service(sim.url, timeout=0.5), http_client=http)
    start = time.perf_counter()
    with pytest.raises(SubmitError) as caught:
        async with asyncio.timeout(5):
            await veo.submit(REQUEST)
    assert time.perf_counter() - start < 2.0
    assert (caught.value.kind, caught.value.code) == ("uncertain", "ReadTimeout")
    assert caught.value.observation is not None
    assert caught.value.observation.exception == "ReadTimeout"
    only_one_create(sim)
    await veo.aclose()


async def test_dropped_connection_is_uncertain(sim: SimGemini, veo: VeoProvider) -> None:
    sim.set(MODEL, "drop")
    with pytest.raises(SubmitError) as caught:
        await veo.submit(REQUEST)
    assert caught.value.kind == "uncertain"
    assert caught.value.code in ("RemoteProtocolError", "ReadError")
    only_one_create(sim)


# -- jobs that end badly, polls that fail ---------------------------------------------------------

async def test_filtered_media_fails_with_content_policy(sim: SimGemini, veo: VeoProvider) -> None:
    sim.set(MODEL, "safety_filtered")
    job = (await veo.submit(REQUEST)).job_id
    await veo.status(job)
    done = await veo.status(job)
    assert (done.state, done.error_code, done.error_message) == (
        "failed", "content_policy", FILTERED_REASON)
    with pytest.raises(PollError, match="content_policy"):
        await veo.download(job, max_bytes=MIB)
    assert sim.billable_calls == 1


async def test_operation_error_fails_the_job(sim: SimGemini, veo: VeoProvider) -> None:
    sim.set(MODEL, "operation_error")
    job = (await veo.submit(REQUEST)).job_id
    await veo.status(job)
    done = await veo.status(job)
    assert (done.state, done.error_code, done.error_message) == ("failed", "INTERNAL",
                                                                 OPERATION_ERROR)


async def test_a_failed_poll_is_a_poll_error(sim: SimGemini, veo: VeoProvider) -> None:
    job = (await veo.submit(REQUEST)).job_id
    sim.set(MODEL, "unavailable", message=f"upstream rejected key {KEY}")
    with pytest.raises(PollError) as caught:
        await veo.status(job)
    assert str(caught.value).startswith("503 UNAVAILABLE")
    assert KEY not in str(caught.value)
    assert sim.requests.count(("GET", f"/v1beta/{job}")) == 1  # the SDK did not retry
    sim.set(MODEL, "ok")
    assert (await veo.status(job)).state == "in_progress"  # the job itself is fine


async def test_size_cap_stops_the_download(http: httpx2.AsyncClient) -> None:
    async with SimGemini(api_key=KEY, polls_to_complete=1, video_size=3 * MIB) as sim:
        veo = VeoProvider(service=veo_service(sim.url), http_client=http)
        job = (await veo.submit(REQUEST)).job_id
        assert (await veo.status(job)).state == "completed"
        with pytest.raises(TooLarge) as caught:
            await veo.download(job, max_bytes=MIB)
        assert caught.value.cap == MIB
        assert MIB < caught.value.size < 3 * MIB  # stopped part-way, not after reading it all
        whole = await veo.download(job, max_bytes=3 * MIB)
        assert len(whole.content) == 3 * MIB
        await veo.aclose()


# -- adapt --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("seconds", "size", "params", "notes"), [
    (4, "1280x720", (4, "16:9", "720p"), ()),
    (8, "720x1280", (8, "9:16", "720p"), ()),
    (12, "1280x720", (8, "16:9", "720p"), ("Veo 3.1 makes at most 8 s: 12 s → 8 s",)),
    (8, "1792x1024", (8, "16:9", "1080p"), ("1792x1024 → 16:9 1080p",)),
    (12, "1024x1792", (8, "9:16", "1080p"),
     ("Veo 3.1 makes at most 8 s: 12 s → 8 s", "1024x1792 → 9:16 1080p")),
    (4, "1792x1024", (4, "16:9", "720p"),
     ("Veo 3.1 makes 1080p only at 8 s: 1792x1024 → 16:9 720p",)),
    (6, "1280x720", (6, "16:9", "720p"), ()),
])
def test_adapt(adapter: VeoProvider, seconds: int, size: str, params: tuple[int, str, str],
               notes: tuple[str, ...]) -> None:
    adapted = adapter.adapt(VideoRequest(prompt="p", seconds=seconds, size=size))
    assert adapted.params == dict(zip(("duration_seconds", "aspect_ratio", "resolution"), params,
                                      strict=True))
    assert (adapted.seconds, adapted.notes) == (params[0], notes)


# -- secrets ------------------------------------------------------------------------------------

@pytest.mark.parametrize("behaviour", ["invalid_argument", "unavailable", "rate_limited"])
async def test_key_is_sent_only_in_the_header_and_never_reported(
        sim: SimGemini, http: httpx2.AsyncClient, behaviour: str) -> None:
    sim.set(MODEL, behaviour, message=f"request from {KEY} refused (key={KEY})")
    other = "sk-other-secret-0123456789"
    veo = VeoProvider(service=veo_service(sim.url), http_client=http,
                      redactor=Redactor((other,)))
    with pytest.raises(SubmitError) as caught:
        await veo.submit(REQUEST)
    reported: Any = (caught.value.reason, caught.value.code, caught.value.observation)
    assert KEY not in repr(reported) and "[redacted]" in caught.value.reason
    [call] = sim.calls
    assert call.api_key == KEY
    assert KEY not in call.url and "key=" not in call.url
    await veo.aclose()


async def test_polls_and_downloads_send_the_key_only_in_the_header(sim: SimGemini,
                                                                    veo: VeoProvider) -> None:
    sim.polls_to_complete = 1
    job = (await veo.submit(REQUEST)).job_id
    await veo.download(job, max_bytes=MIB)
    assert len(sim.calls) == 3
    assert all(call.api_key == KEY and KEY not in call.url for call in sim.calls)
