"""Video providers: one interface over OpenAI-compatible ``/v1/videos`` relays and Google Veo.

A provider maps a Sora-shaped request (``seconds`` 4/8/12, ``size`` WxH) onto its own parameters
(and says what had to change), submits it once (never retrying a create on its own: the SDKs run
with ``max_retries=0``), polls the upstream job, and downloads the result with a size cap.

Every failure of a submit is a ``SubmitError`` whose ``kind`` tells the router what it may do:

- ``retryable``: the request was certainly not accepted (429, 5xx, connection refused, a
  timeout before the request was sent, the model is gone there, our key was refused, risk
  control): nothing was billed, another route may be tried.
- ``final``: the provider refused the request itself (moderation, validation): trying it
  elsewhere would be refused again, or would evade a safety system — surface it.
- ``uncertain``: the request may have been accepted (a timeout or a broken connection after it
  was sent): resubmitting could bill twice, so it is reported, not retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.models import Observation

SubmitKind = Literal["retryable", "final", "uncertain"]
JobState = Literal["queued", "in_progress", "completed", "failed"]


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """What the user asked for, already validated (Sora's vocabulary)."""

    prompt: str
    seconds: int
    size: str  # "1280x720"


@dataclass(frozen=True, slots=True)
class Adapted:
    """What a provider will actually ask for, and the notes for the user when it changed."""

    params: dict[str, str | int]  # the provider-native parameters it will send
    seconds: int  # the duration that will be generated (and billed per second)
    notes: tuple[str, ...] = ()  # e.g. "Veo 3.1: 12 s → 8 s (its maximum)"


@dataclass(frozen=True, slots=True)
class Submitted:
    """An upstream job that was accepted."""

    job_id: str
    latency_ms: float
    state: JobState = "queued"
    progress: int | None = None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One poll of an upstream job."""

    state: JobState
    progress: int | None = None  # 0..100 when the provider reports it
    poll_after: float | None = None  # seconds the provider asked us to wait before the next poll
    error_code: str | None = None
    error_message: str | None = None  # short, scrubbed of secrets
    seconds: int | None = None  # the duration the provider says it generated


class SubmitError(Exception):
    """A create that did not produce an accepted job; see the module docstring for ``kind``.

    ``reason`` is short human text ("503 server_error", "moderation_blocked: …"), scrubbed of
    secrets. ``observation`` is what the attempt saw, fed to the state machine as a passive
    probe (None when the outcome says nothing about the service, e.g. a moderation refusal).
    """

    def __init__(self, kind: SubmitKind, reason: str, *, code: str | None = None,
                 observation: Observation | None = None) -> None:
        super().__init__(reason)
        self.kind: SubmitKind = kind
        self.reason = reason
        self.code = code
        self.observation = observation


class PollError(Exception):
    """A poll or download that failed; the job itself may still be fine (poll again later)."""


class TooLarge(Exception):
    """The result is larger than the cap; ``size`` is what was known when it was stopped."""

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(f"video larger than {cap} bytes")
        self.size = size
        self.cap = cap


@dataclass(frozen=True, slots=True)
class Download:
    content: bytes
    mime: str = "video/mp4"


class VideoProvider(Protocol):
    """One configured video service (a relay or the Gemini API)."""

    def adapt(self, request: VideoRequest) -> Adapted:
        """Map the request onto this provider's parameters (pure)."""
        ...

    async def submit(self, request: VideoRequest) -> Submitted:
        """Create the upstream job exactly once. Raises ``SubmitError``."""
        ...

    async def status(self, job_id: str) -> JobStatus:
        """Poll the upstream job. Raises ``PollError`` on a failure to ask."""
        ...

    async def download(self, job_id: str, *, max_bytes: int) -> Download:
        """The finished video. Raises ``TooLarge`` past ``max_bytes``, ``PollError`` otherwise."""
        ...

    async def aclose(self) -> None:
        """Release what the provider opened itself (never the injected HTTP client)."""
        ...
