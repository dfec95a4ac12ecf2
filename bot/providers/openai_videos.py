"""OpenAI-compatible ``/v1/videos`` (official and reverse relays) through ``AsyncOpenAI``.

``POST /videos`` creates, ``GET /videos/{id}`` polls (honouring ``openai-poll-after-ms``),
``GET /videos/{id}/content`` streams the MP4. (The SDK marks these calls deprecated since Sora's
shutdown; relays still serve the same shape for its successors.) The SDK never retries
(``max_retries=0``): a retried create could bill twice, so only the router decides whether
another attempt is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import httpx2
import openai

from bot.config import ServiceConfig
from bot.models import Observation
from bot.providers import (
    Adapted,
    Download,
    JobState,
    JobStatus,
    PollError,
    SubmitError,
    Submitted,
    TooLarge,
    VideoRequest,
)
from bot.redact import Redactor

# Codes (and wording) of a refusal by the provider's safety system: never retried elsewhere.
MODERATION_CODES = frozenset({
    "moderation_blocked", "sentinel_block", "content_policy", "content_policy_violation",
    "content_filter", "safety_violation", "input_moderation", "output_moderation",
    "policy_violation", "responsible_ai_policy_violation"})
_MODERATION_WORDS = ("moderation", "content policy", "safety system", "policy violation",
                     "内容审核", "违规")
# Before the request left the machine: nothing can have been accepted.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_STATES: dict[str, JobState] = {"queued": "queued", "in_progress": "in_progress",
                                "completed": "completed", "failed": "failed"}


def nearest_seconds(requested: int, allowed: tuple[int, ...]) -> int:
    """The longest allowed duration not over ``requested`` (else the shortest allowed)."""
    if not allowed or requested in allowed:
        return requested
    fitting = [s for s in allowed if s <= requested]
    return max(fitting) if fitting else min(allowed)


def is_moderation(code: str | None, message: str | None) -> bool:
    text = (message or "").lower()
    return (code or "").lower() in MODERATION_CODES or any(w in text for w in _MODERATION_WORDS)


class OpenAIVideos:
    """One OpenAI-compatible video service."""

    def __init__(self, *, service: ServiceConfig, http_client: httpx2.AsyncClient,
                 timeout: float, redactor: Redactor | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if service.base_url is None or service.model is None or service.api_key is None:
            missing = service.missing or f"set {service.api_key_env}"
            raise ValueError(f"{service.id}: {missing}")
        self.service = service
        self._key = service.api_key.get_secret_value()
        self._redact = redactor or Redactor((self._key,))
        self._clock = clock
        self._client = openai.AsyncOpenAI(
            api_key=self._key, base_url=service.base_url, organization=None, project=None,
            max_retries=0, timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            http_client=http_client)

    def adapt(self, request: VideoRequest) -> Adapted:
        seconds = nearest_seconds(request.seconds, self.service.video_seconds)
        notes = () if seconds == request.seconds else (
            f"{self.service.name} makes {'/'.join(map(str, self.service.video_seconds))} s: "
            f"{request.seconds} s → {seconds} s",)
        return Adapted({"model": str(self.service.model), "seconds": str(seconds),
                        "size": request.size}, seconds, notes)

    async def submit(self, request: VideoRequest) -> Submitted:
        adapted = self.adapt(request)
        started = self._clock()
        try:
            video = await self._client.videos.create(
                prompt=request.prompt, model=str(adapted.params["model"]),
                seconds=cast(Any, adapted.params["seconds"]), size=cast(Any, request.size))
        except openai.APIStatusError as e:
            raise self._refused(e, self._ms(started)) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as e:
            raise self._transport(e, self._ms(started)) from None
        latency = self._ms(started)
        if not getattr(video, "id", None):
            extra = getattr(video, "model_extra", None) or {}
            if extra.get("error") or extra.get("success") is False:
                raise SubmitError("retryable", "answered without a job id",
                                  observation=Observation(latency_ms=latency, http_status=200,
                                                          error_code="no_job_id"))
            raise SubmitError("uncertain", "answered 200 without a job id: it may have been "
                                           "accepted")
        return Submitted(video.id, latency, _STATES.get(str(video.status), "queued"),
                         _progress(video.progress))

    async def status(self, job_id: str) -> JobStatus:
        try:
            raw = await self._client.videos.with_raw_response.retrieve(job_id)
            video = raw.parse()
        except openai.OpenAIError as e:
            raise PollError(self._scrub(_describe(e))) from None
        hint = raw.headers.get("openai-poll-after-ms")
        error = video.error
        seconds = str(video.seconds) if video.seconds is not None else ""
        return JobStatus(
            state=_STATES.get(str(video.status), "in_progress"), progress=_progress(video.progress),
            poll_after=int(hint) / 1000 if hint and hint.isdigit() else None,
            error_code=error.code if error else None,
            error_message=self._scrub(error.message) if error else None,
            seconds=int(seconds) if seconds.isdigit() else None)

    async def download(self, job_id: str, *, max_bytes: int) -> Download:
        try:
            async with self._client.videos.with_streaming_response.download_content(
                    job_id) as response:
                length = response.headers.get("content-length", "")
                if length.isdigit() and int(length) > max_bytes:
                    raise TooLarge(int(length), max_bytes)
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(size, max_bytes)
                    chunks.append(chunk)
                mime = response.headers.get("content-type", "video/mp4").split(";")[0]
        except openai.OpenAIError as e:
            raise PollError(self._scrub(_describe(e))) from None
        return Download(b"".join(chunks), mime if mime.startswith("video/") else "video/mp4")

    async def aclose(self) -> None:
        """The HTTP client is shared and closed by its owner."""

    # -- failures ----------------------------------------------------------------------------

    def _refused(self, e: openai.APIStatusError, latency: float) -> SubmitError:
        body = e.body if isinstance(e.body, dict) else {}
        code = _text(body.get("code")) or _text(body.get("type"))
        message = self._scrub(_text(body.get("message")) or e.message) or ""
        status = e.status_code
        reason = f"{status} {code or 'error'}: {message[:160]}".strip()
        observation = Observation(latency_ms=latency, http_status=status,
                                  exception=type(e).__name__, error_code=code,
                                  error_message=message[:300], body_excerpt=message[:300])
        if is_moderation(code, message) and status < 500:
            return SubmitError("final", f"refused by moderation ({code or status}): "
                                        f"{message[:160]}", code=code or "moderation_blocked")
        if status in (400, 409, 413, 415, 422) and code not in ("model_not_found",):
            return SubmitError("final", reason, code=code or "invalid_request")
        return SubmitError("retryable", reason, code=code, observation=observation)

    def _transport(self, e: openai.OpenAIError, latency: float) -> SubmitError:
        cause = e.__cause__
        name = type(cause).__name__ if cause is not None else type(e).__name__
        observation = Observation(latency_ms=latency, exception=name,
                                  error_message=(self._scrub(str(cause or e)) or "")[:300] or None)
        if isinstance(cause, _NOT_SENT):
            return SubmitError("retryable", f"could not connect ({name})",
                               observation=observation)
        return SubmitError("uncertain", f"no answer after the request was sent ({name})",
                           observation=observation)

    def _scrub(self, text: str | None) -> str | None:
        return self._redact(text)

    def _ms(self, started: float) -> float:
        return (self._clock() - started) * 1000.0


def _describe(e: openai.OpenAIError) -> str:
    if isinstance(e, openai.APIStatusError):
        return f"{e.status_code}: {e.message}"
    cause = e.__cause__
    return f"{type(cause or e).__name__}: {cause or e}"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _progress(value: object) -> int | None:
    return max(0, min(100, int(value))) if isinstance(value, int | float) else None
