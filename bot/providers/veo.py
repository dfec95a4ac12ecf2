"""Veo through the Gemini Developer API: adapt a Sora-shaped request, create once, poll, download.

google-genai 3.4 refuses ``models.generate_videos`` on the Developer API: it raises ``ValueError``
("only supported in Gemini Enterprise Agent Platform mode") before sending anything. So the create
is the REST call the SDK used to send, ``POST {base}/models/{model}:predictLongRunning`` with
``instances``/``parameters``, made once over the injected httpx2 client with the key in
``x-goog-api-key``, and its answer is read into the SDK's ``GenerateVideosOperation``. Polls
(``operations.get``: ``GET {base}/{operation name}``) and the download (``files.download``:
``GET {base}/files/{id}:download?alt=media``) go through the SDK on the same httpx2 client, with
its retries off. The key never appears in a URL, a reason, an observation or a ``PollError``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from bot.config import ServiceConfig
from bot.models import Observation
from bot.probes.gemini import parse_error
from bot.probes.http import Clock, exception_name, excerpt, join_url, scrub, short
from bot.providers import (
    Adapted,
    Download,
    JobStatus,
    PollError,
    SubmitError,
    SubmitKind,
    Submitted,
    TooLarge,
    VideoRequest,
)
from bot.redact import Redactor

VEO_SECONDS = (4, 6, 8)  # what Veo 3.x makes; 1080p only at 8 s
# (aspect ratio, resolution) → the frame size Veo renders.
VEO_FRAMES = {("16:9", "720p"): "1280x720", ("9:16", "720p"): "720x1280",
              ("16:9", "1080p"): "1920x1080", ("9:16", "1080p"): "1080x1920"}
CONTENT_POLICY = "content_policy"

# Wording of a safety/moderation refusal (a 400 at create, an operation error, a filter reason).
_SAFETY = re.compile(r"safety|usage (?:guidelines|polic)|responsible ai|prohibited use|"
                     r"violat|blocked|\brai\b", re.I)
# Transport failures that prove the request never reached the server.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout,
             httpx2.UnsupportedProtocol, httpx2.ProxyError, httpx2.LocalProtocolError,
             httpx2.InvalidURL)
# Statuses that refuse the route, not the request: another route may be tried.
_ROUTE_STATUSES = frozenset({"FAILED_PRECONDITION"})  # e.g. "User location is not supported"
_ROUTE_REASONS = frozenset({"API_KEY_INVALID"})  # Google answers a bad key with a 400
# google.rpc.Code numbers, as operation errors carry them.
_RPC_CODES = {1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
              5: "NOT_FOUND", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
              9: "FAILED_PRECONDITION", 10: "ABORTED", 13: "INTERNAL", 14: "UNAVAILABLE",
              16: "UNAUTHENTICATED"}


class VeoProvider:
    """One Gemini API service (kind ``gemini``) as a ``VideoProvider``; see the module docstring.

    ``http_client`` is shared and never closed here; ``aclose()`` releases what the SDK opened.
    """

    def __init__(self, *, service: ServiceConfig, http_client: httpx2.AsyncClient,
                 timeout: float | None = None, redactor: Redactor | None = None,
                 clock: Clock = time.perf_counter) -> None:
        """``timeout``: seconds a request may take (default: the service's probe timeout)."""
        if service.base_url is None or service.model is None or service.api_key is None:
            raise ValueError(f"service {service.id!r} cannot generate: "
                             f"{service.missing or 'set model'}")
        self.service = service
        self._http = http_client
        self._clock = clock
        self._key = service.api_key.get_secret_value()
        self._redact_key = Redactor((self._key,))
        self._redactor = redactor  # the bot-wide one (every configured secret), when given
        self._model = service.model.removeprefix("models/")
        self._family = _family(self._model)
        self._timeout = timeout or service.timeout
        self._create_url = join_url(service.base_url, "models", f"{self._model}:predictLongRunning")
        # The configured base URL already names the API version (…/v1beta): the SDK gets it whole
        # and an empty api_version, or google-genai 3 would add its own default (v1).
        self._sdk = genai.Client(api_key=self._key, vertexai=False, http_options=types.HttpOptions(
            base_url=service.base_url, api_version="", httpx_async_client=http_client,
            timeout=max(1, round(self._timeout * 1000)),  # milliseconds
            retry_options=types.HttpRetryOptions(attempts=1)))

    async def aclose(self) -> None:
        """Close the SDK's own clients (never the injected httpx2 client)."""
        self._sdk.close()
        await self._sdk.aio.aclose()

    # -- adapt ---------------------------------------------------------------------------------

    def adapt(self, request: VideoRequest) -> Adapted:
        """Sora ``seconds``/``size`` → ``duration_seconds``, ``aspect_ratio``, ``resolution``."""
        notes: list[str] = []
        seconds = max((s for s in VEO_SECONDS if s <= request.seconds), default=VEO_SECONDS[0])
        if request.seconds > VEO_SECONDS[-1]:
            notes.append(f"{self._family} makes at most {VEO_SECONDS[-1]} s: "
                         f"{request.seconds} s → {seconds} s")
        elif seconds != request.seconds:
            notes.append(f"{self._family} makes {', '.join(map(str, VEO_SECONDS[:-1]))} or "
                         f"{VEO_SECONDS[-1]} s: {request.seconds} s → {seconds} s")
        aspect, resolution = _frame(request.size)
        if resolution == "1080p" and seconds != VEO_SECONDS[-1]:
            resolution = "720p"
            notes.append(f"{self._family} makes 1080p only at {VEO_SECONDS[-1]} s: "
                         f"{request.size} → {aspect} {resolution}")
        elif VEO_FRAMES[aspect, resolution] != request.size:
            notes.append(f"{request.size} → {aspect} {resolution}")
        params: dict[str, str | int] = {"duration_seconds": seconds, "aspect_ratio": aspect,
                                        "resolution": resolution}
        return Adapted(params=params, seconds=seconds, notes=tuple(notes))

    # -- submit --------------------------------------------------------------------------------

    async def submit(self, request: VideoRequest) -> Submitted:
        """One ``predictLongRunning`` POST; every failure is a classified ``SubmitError``."""
        body = create_body(request.prompt, self.adapt(request))
        headers = {"x-goog-api-key": self._key, "Accept": "application/json"}
        start = self._clock()
        status: int | None = None
        raw = b""
        try:
            async with asyncio.timeout(self._timeout * 3):  # a trickling answer ends too
                async with self._http.stream("POST", self._create_url, json=body, headers=headers,
                                             timeout=httpx2.Timeout(self._timeout)) as response:
                    status = response.status_code
                    raw = await _read_capped(response, self.service.max_body_bytes)
        except TimeoutError:  # before OSError: TimeoutError is one
            self._fail("uncertain", start, status=status, exception="Timeout",
                       message=f"no complete answer within {self._timeout * 3:g} s")
        except _NOT_SENT as e:
            self._fail("retryable", start, exception=exception_name(e),
                       message=str(e) or "the request could not be sent")
        except (httpx2.HTTPError, OSError) as e:
            self._fail("uncertain", start, status=status, exception=exception_name(e),
                       message=str(e) or "the connection failed after the request was sent")
        latency_ms = (self._clock() - start) * 1000.0
        try:
            data: Any = json.loads(raw)
        except ValueError:
            data = None
        if status == 200:
            return self._accepted(data, raw, latency_ms)
        return self._refused(status or 0, data, raw, latency_ms)

    def _accepted(self, data: Any, raw: bytes, latency_ms: float) -> Submitted:
        operation = None
        if isinstance(data, dict):
            try:
                operation = types.GenerateVideosOperation.from_api_response(data)
            except ValueError:  # pydantic's ValidationError is one
                operation = None
        if operation is None or not operation.name:
            # A 200 to a create: the job may exist and be billed, but it cannot be followed.
            raise SubmitError("uncertain", "200 without an operation name", code="InvalidJSON",
                              observation=self._observation(
                                  latency_ms, status=200, exception="InvalidJSON",
                                  message="expected a long-running operation", body=raw))
        job = job_status(operation, clean=self._clean)
        state = "queued" if job.state == "in_progress" else job.state  # just accepted
        return Submitted(job_id=operation.name, latency_ms=latency_ms, state=state,
                         progress=job.progress)

    def _refused(self, status: int, data: Any, raw: bytes, latency_ms: float) -> NoReturn:
        """Classify a non-200 answer to the create (see ``bot.providers`` for the kinds)."""
        code, message = parse_error(data)
        code = code or f"HTTP {status}"
        reasons = _reasons(data)
        label = f"{status} {code}" + (f": {message}" if message else "")
        retryable = (status in (401, 403, 404, 408, 429) or status >= 500
                     or code in _ROUTE_STATUSES or bool(reasons & _ROUTE_REASONS))
        if not retryable and message and _SAFETY.search(message):
            raise SubmitError("final", self._clean(f"{CONTENT_POLICY}: {message}"),
                              code=CONTENT_POLICY)
        if not retryable:
            raise SubmitError("final", self._clean(label), code=code)
        observation = self._observation(latency_ms, status=status, error_code=code,
                                        message=message, body=raw)
        raise SubmitError("retryable", self._clean(label),
                          code=next(iter(reasons & _ROUTE_REASONS), code),
                          observation=observation)

    def _fail(self, kind: SubmitKind, start: float, *, exception: str, message: str,
              status: int | None = None) -> NoReturn:
        """Raise the ``SubmitError`` of a create whose exchange did not complete."""
        latency_ms = (self._clock() - start) * 1000.0
        observation = self._observation(latency_ms, status=status, exception=exception,
                                        message=message)
        suffix = " (the create may have been accepted)" if kind == "uncertain" else ""
        raise SubmitError(kind, self._clean(f"{exception}: {message}{suffix}"), code=exception,
                          observation=observation)

    # -- status and download -------------------------------------------------------------------

    async def status(self, job_id: str) -> JobStatus:
        """``operations.get`` → ``JobStatus``; failures to ask are ``PollError``."""
        return job_status(await self._operation(job_id), clean=self._clean)

    async def download(self, job_id: str, *, max_bytes: int) -> Download:
        """The first generated video, streamed into a buffer that refuses to grow past the cap."""
        operation = await self._operation(job_id)
        job = job_status(operation, clean=self._clean)
        result = operation.response or operation.result
        videos = (result.generated_videos or []) if result is not None else []
        video = videos[0].video if videos else None
        if job.state != "completed" or video is None:
            detail = f": {job.error_code} {job.error_message or ''}" if job.error_code else ""
            raise PollError(self._clean(f"no video to download (job {job.state}{detail})".strip()))
        mime = video.mime_type or "video/mp4"
        if video.video_bytes is not None:  # inlined in the operation
            if len(video.video_bytes) > max_bytes:
                raise TooLarge(len(video.video_bytes), max_bytes)
            return Download(content=video.video_bytes, mime=mime)
        sink = _CappedSink(max_bytes)
        try:
            await self._sdk.aio.files.download(file=video, destination=sink)
        except TooLarge:
            raise
        except Exception as e:  # every SDK/transport failure
            raise PollError(self._describe(e)) from None
        return Download(content=sink.getvalue(), mime=mime)

    async def _operation(self, job_id: str) -> types.GenerateVideosOperation:
        try:
            async with asyncio.timeout(self._timeout * 3):
                pending = types.GenerateVideosOperation.model_validate({"name": job_id})
                return await self._sdk.aio.operations.get(pending)
        except TimeoutError:
            raise PollError(f"Timeout: no answer within {self._timeout * 3:g} s") from None
        except Exception as e:  # every SDK/transport failure
            raise PollError(self._describe(e)) from None

    # -- helpers -------------------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        """Short scrubbed text for a failed poll or download (the SDK's text embeds the body)."""
        if isinstance(exc, genai_errors.APIError):
            text = f"{exc.code} {exc.status or ''}".strip()
            if exc.message:
                text += f": {exc.message}"
            return self._clean(text)
        return self._clean(f"{exception_name(exc)}: {exc}".rstrip(": "))

    def _clean(self, text: str) -> str:
        """Secrets removed (before cutting, so no prefix of one survives), then shortened."""
        text = self._redact_key(text) or ""
        if self._redactor is not None:
            text = self._redactor(text) or ""
        return short(text, 300) or ""

    def _observation(self, latency_ms: float, *, status: int | None = None,
                     exception: str | None = None, error_code: str | None = None,
                     message: str | None = None, body: bytes = b"") -> Observation:
        observation = scrub(Observation(
            latency_ms=latency_ms, http_status=status, exception=exception,
            error_code=short(error_code, 100), error_message=short(message),
            body_excerpt=excerpt(body, secrets=(self._key,))), (self._key,))
        if self._redactor is None:
            return observation
        redact = self._redactor
        return replace(observation, error_code=redact(observation.error_code),
                       error_message=redact(observation.error_message),
                       body_excerpt=redact(observation.body_excerpt) or "")


def create_body(prompt: str, adapted: Adapted) -> dict[str, Any]:
    """The ``predictLongRunning`` body for a text-to-video job (one sample)."""
    p = adapted.params
    parameters = {"aspectRatio": p["aspect_ratio"], "durationSeconds": p["duration_seconds"],
                  "resolution": p["resolution"], "sampleCount": 1}
    return {"instances": [{"prompt": prompt}], "parameters": parameters}


def job_status(operation: types.GenerateVideosOperation, *,
               clean: Callable[[str], str] = lambda text: short(text, 300) or "") -> JobStatus:
    """One operation → ``JobStatus`` (pure); ``clean`` scrubs and shortens provider text.

    A finished job with only filtered media failed with ``content_policy`` and the filter reason.
    """
    progress = _progress(operation.metadata)
    if not operation.done:
        return JobStatus(state="in_progress", progress=progress)
    if operation.error:
        code = _rpc_code(operation.error)
        message = str(operation.error.get("message") or "") or None
        if message and _SAFETY.search(message):
            code = CONTENT_POLICY
        return JobStatus(state="failed", progress=progress, error_code=code,
                         error_message=clean(message) if message else None)
    result = operation.response or operation.result
    if result is not None and result.generated_videos:
        return JobStatus(state="completed", progress=100)
    if result is not None and (result.rai_media_filtered_count or
                               result.rai_media_filtered_reasons):
        reasons = "; ".join(result.rai_media_filtered_reasons or ()) or "filtered by safety"
        return JobStatus(state="failed", progress=progress, error_code=CONTENT_POLICY,
                         error_message=clean(reasons))
    return JobStatus(state="failed", progress=progress, error_code="no_video",
                     error_message="the job finished without a video")


def _frame(size: str) -> tuple[str, str]:
    """``"1792x1024"`` → ``("16:9", "1080p")``: orientation, and 1080p above 720 lines."""
    m = re.fullmatch(r"\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*", size)
    if m is None:
        raise ValueError(f"size must be WIDTHxHEIGHT, got {size!r}")
    width, height = int(m.group(1)), int(m.group(2))
    return ("16:9" if width >= height else "9:16",
            "1080p" if min(width, height) > 720 else "720p")


def _family(model: str) -> str:
    """``veo-3.1-generate-preview`` → ``Veo 3.1`` (for notes)."""
    m = re.match(r"veo-(\d+(?:\.\d+)?)", model)
    return f"Veo {m.group(1)}" if m else "Veo"


def _progress(metadata: dict[str, Any] | None) -> int | None:
    value = (metadata or {}).get("progressPercent")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0, min(100, int(value)))
    return None


def _rpc_code(error: dict[str, Any]) -> str:
    status = error.get("status")
    if isinstance(status, str) and status:
        return status
    code = error.get("code")
    return _RPC_CODES.get(code, f"rpc {code}") if isinstance(code, int) else "UNKNOWN"


def _reasons(data: Any) -> set[str]:
    """``ErrorInfo.reason`` values in a Google error envelope."""
    error = data.get("error") if isinstance(data, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    if not isinstance(details, list):
        return set()
    return {r for d in details if isinstance(d, dict) and isinstance(r := d.get("reason"), str)}


async def _read_capped(response: httpx2.Response, cap: int) -> bytes:
    """The body, cut at ``cap`` bytes (an oversized create answer is not JSON we can use)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: cap - size])
        size += len(chunk)
        if size >= cap:
            break
    return b"".join(chunks)


class _CappedSink(io.IOBase):
    """A writable stream for ``files.download`` that raises ``TooLarge`` past ``cap`` bytes."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self._cap = cap
        self._chunks: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self._cap:
            self._chunks.clear()
            raise TooLarge(self.size, self._cap)
        self._chunks.append(bytes(data))
        return len(data)

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)
