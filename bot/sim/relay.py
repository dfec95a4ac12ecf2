"""An OpenAI-compatible relay on loopback: ``/v1`` models, videos and images, scriptable per model.

Behaviours reproduce what official and reverse relays answer in the wild (OpenAI error envelopes,
reverse-relay risk-control and captcha wording in Chinese and English, HTML pages, hangs, huge
bodies). Everything is deterministic: ids come from counters, ``flaky`` follows a fixed pattern.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from fractions import Fraction
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.sim.server import LoopbackServer

ALL = "*"  # ``relay.set(ALL, …)``: routes without a model, and models without their own script
MP4_MAGIC = b"\x00\x00\x00\x18ftypmp42"
FAKE_MP4 = MP4_MAGIC + b"\x00\x00\x00\x00mp42isom\x00\x00\x00\x08free\x00\x00\x00\x08mdat"
HUGE_BYTES = 10 * 1024 * 1024
BILLABLE = frozenset({("POST", "/v1/videos"), ("POST", "/v1/images/generations")})

_MODEL_CREATED = 1759708800  # 2025-10-06, Sora 2 API launch
_PNG_1X1 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
    "AAAABJRU5ErkJggg=="
)
_HTML = (
    '<!doctype html><html lang="zh"><head><meta charset="utf-8">'
    '<title>API 中转站 · Relay Console</title></head><body><div id="root"></div>'
    '<script src="/assets/index.js"></script></body></html>'
)
_MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
    "username) if you're accessing the API from your browser and are prompted for a username and "
    "password. You can obtain an API key from https://platform.openai.com/account/api-keys."
)


class Behaviour(StrEnum):
    """How the relay answers for one model (or, via ``ALL``, for everything else)."""

    OK = "ok"
    SLOW = "slow"  # OK after ``delay`` seconds
    RATE_LIMITED = "rate_limited"  # 429 rate_limit_exceeded + Retry-After
    RISK_CONTROL = "risk_control"  # 403 (or ``status``) 风控 wording, code risk_control
    CAPTCHA = "captcha"  # 403 (or ``status``) 人机验证 wording, code captcha_required
    UNAVAILABLE = "unavailable"  # 503 server_error
    SERVER_ERROR = "server_error"  # 500 server_error
    NOT_FOUND = "not_found"  # 404 model_not_found
    UNAUTHORIZED = "unauthorized"  # 401 invalid_api_key
    FLAKY = "flaky"  # a ``ratio`` of requests succeed, the rest answer as ``fail_as``
    HTML = "html"  # 200 text/html
    HANG = "hang"  # never answers until the relay stops
    HUGE = "huge"  # 200 with a 10 MB JSON body
    JOB_FAILED = "job_failed"  # everything answers OK, but video jobs end ``failed``
    MODERATION = "moderation"  # creations: 400 moderation_blocked (the safety system)


@dataclass(frozen=True, slots=True)
class Script:
    """One model's scripted behaviour and its parameters."""

    behaviour: Behaviour = Behaviour.OK
    delay: float = 1.0
    ratio: float = 0.5
    fail_as: Behaviour = Behaviour.RISK_CONTROL
    status: int | None = None
    retry_after: int = 20


@dataclass(slots=True)
class _Job:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created_at: int
    fails: bool
    polls: int = 0
    completed_at: int | None = None


def _error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """The OpenAI error envelope ``{"error": {message, type, param, code}}``."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _bad_key(token: str | None) -> web.Response:
    if token is None:
        return _error(401, _MISSING_KEY)
    # Echoes the key it was sent (OpenAI masks the middle; many relays don't) so tests can prove
    # the bot redacts whatever comes back.
    message = (
        f"Incorrect API key provided: {token}. "
        "You can find your API key at https://platform.openai.com/account/api-keys."
    )
    return _error(401, message, code="invalid_api_key")


class SimRelay(LoopbackServer):
    """OpenAI-compatible relay simulator; ``start()`` returns the base URL ending in ``/v1``."""

    url_suffix = "/v1"

    def __init__(
        self,
        *,
        models: Iterable[str] = ("sora-2", "sora-2-pro"),
        api_key: str | None = None,
        delay: float = 0.0,
        polls_to_complete: int = 2,
        poll_after_ms: int = 50,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.delay = delay  # seconds added to every response
        self.polls_to_complete = polls_to_complete
        self.poll_after_ms = poll_after_ms
        self._clock = clock
        self._models: dict[str, None] = dict.fromkeys(models)  # ordered set
        self._scripts: dict[str, Script] = {ALL: Script()}
        self._counts: dict[str, int] = {}
        self._shutdown: dict[str, str] = {}
        self._jobs: dict[str, _Job] = {}
        self._huge: bytes | None = None

    # -- scripting ---------------------------------------------------------------------------

    def set(
        self,
        model: str,
        behaviour: Behaviour | str = Behaviour.OK,
        *,
        delay: float = 1.0,
        ratio: float = 0.5,
        fail_as: Behaviour | str = Behaviour.RISK_CONTROL,
        status: int | None = None,
        retry_after: int = 20,
    ) -> None:
        """Script ``model`` (``ALL`` for the relay-wide default); the model becomes known.

        ``delay``: ``slow``. ``ratio`` and ``fail_as``: ``flaky``. ``status``: HTTP status for
        ``risk_control``/``captcha`` (403 by default; reverse relays also send 200).
        ``retry_after``: ``rate_limited``.
        """
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"ratio must be within [0, 1], got {ratio}")
        fail = Behaviour(fail_as)
        if fail in (Behaviour.FLAKY, Behaviour.OK, Behaviour.SLOW, Behaviour.JOB_FAILED):
            raise ValueError(f"fail_as must be a failing behaviour, got {fail}")
        script = Script(Behaviour(behaviour), delay, ratio, fail, status, retry_after)
        self._scripts[model] = script
        self._counts.pop(model, None)
        if model != ALL:
            self._models.setdefault(model, None)

    def set_shutdown(self, model: str, shutdown: date | str | None) -> None:
        """Advertise (or, with None, stop advertising) ``shutdown_date`` on the model object."""
        if shutdown is None:
            self._shutdown.pop(model, None)
        else:
            self._shutdown[model] = shutdown if isinstance(shutdown, str) else shutdown.isoformat()
        self._models.setdefault(model, None)

    @property
    def billable_calls(self) -> int:
        """How many paid calls (video or image creations) were attempted, whatever the answer."""
        return sum(1 for call in self.requests if call in BILLABLE)

    # -- app ---------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder(), self.unknown_routes(_invalid_url),
                                           self._gatekeeper()])
        app.router.add_get("/v1/models", self._list_models)
        app.router.add_get("/v1/models/{model:.+}", self._get_model)
        app.router.add_get("/v1/videos", self._list_videos)
        app.router.add_post("/v1/videos", self._create_video)
        app.router.add_get("/v1/videos/{video_id}", self._get_video)
        app.router.add_get("/v1/videos/{video_id}/content", self._get_content)
        app.router.add_post("/v1/images/generations", self._create_image)
        return app

    def _gatekeeper(self) -> Middleware:
        """Global latency, then the API key check."""

        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            await self.pause(self.delay)
            if self.api_key is not None and _bearer(request) != self.api_key:
                return _bad_key(_bearer(request))
            return await handler(request)

        return gate

    async def _behave(self, request: web.Request, model: str | None) -> web.StreamResponse | None:
        """Apply the script for ``model``: a failure response, or None to answer normally."""
        key = model if model in self._scripts else ALL
        script = self._scripts[key]
        behaviour = script.behaviour
        if behaviour is Behaviour.FLAKY:
            n = self._counts[key] = self._counts.get(key, 0) + 1
            ratio = Fraction(script.ratio).limit_denominator(10_000)
            behaviour = Behaviour.OK if int(n * ratio) > int((n - 1) * ratio) else script.fail_as
        failure = await self._failure(request, behaviour, script, model)
        if failure is None and model is not None and model not in self._models:
            return _not_found(model)
        return failure

    async def _failure(
        self, request: web.Request, behaviour: Behaviour, script: Script, model: str | None
    ) -> web.StreamResponse | None:
        match behaviour:
            case Behaviour.OK | Behaviour.JOB_FAILED:
                return None
            case Behaviour.SLOW:
                await self.pause(script.delay)
                return None
            case Behaviour.HANG:
                return await self.hang(request)
            case Behaviour.HUGE:
                return web.Response(body=self._huge_body(), content_type="application/json")
            case Behaviour.HTML:
                return web.Response(text=_HTML, content_type="text/html")
            case Behaviour.RATE_LIMITED:
                message = (
                    f"Rate limit reached for {model or 'requests'} in organization org-sim on "
                    f"requests per min (RPM): Limit 5, Used 5, Requested 1. Please try again in "
                    f"{script.retry_after}s. Visit https://platform.openai.com/account/rate-limits "
                    "to learn more."
                )
                headers = {"Retry-After": str(script.retry_after)}
                return _error(
                    429, message, type_="requests", code="rate_limit_exceeded", headers=headers
                )
            case Behaviour.RISK_CONTROL:
                message = "当前账号触发风控，请稍后再试 (risk control triggered, retry later)"
                return _error(
                    script.status or 403, message, type_="upstream_error", code="risk_control"
                )
            case Behaviour.CAPTCHA:
                message = "上游要求人机验证，请完成验证码后重试 (captcha verification required)"
                return _error(
                    script.status or 403, message, type_="upstream_error", code="captcha_required"
                )
            case Behaviour.UNAVAILABLE:
                message = "The server is overloaded or not ready yet."
                return _error(503, message, type_="server_error")
            case Behaviour.SERVER_ERROR:
                message = "The server had an error while processing your request. Sorry about that!"
                return _error(500, message, type_="server_error")
            case Behaviour.NOT_FOUND:
                if model is None:
                    return _error(404, f"Invalid URL ({request.method} {request.path})")
                return _not_found(model)
            case Behaviour.UNAUTHORIZED:
                return _bad_key(_bearer(request))
            case Behaviour.MODERATION:
                if request.method != "POST":  # only creations are moderated
                    return None
                message = ("Your request was blocked by our moderation system. It may violate "
                           "our usage policies.")
                return _error(400, message, code="moderation_blocked")
            case _:
                raise AssertionError(f"unhandled behaviour {behaviour}")

    def _huge_body(self) -> bytes:
        if self._huge is None:
            head = b'{"object":"list","data":[],"padding":"'
            tail = b'"}'
            self._huge = head + b"x" * (HUGE_BYTES - len(head) - len(tail)) + tail
        return self._huge

    # -- models ------------------------------------------------------------------------------

    def _model_object(self, model: str) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": model,
            "object": "model",
            "created": _MODEL_CREATED,
            "owned_by": "system",
        }
        if model in self._shutdown:
            obj["shutdown_date"] = self._shutdown[model]
        return obj

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self._behave(request, None)) is not None:
            return failure
        listed = [
            self._model_object(m)
            for m in self._models
            if self._scripts.get(m, Script()).behaviour is not Behaviour.NOT_FOUND
        ]
        return web.json_response({"object": "list", "data": listed})

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]
        if (failure := await self._behave(request, model)) is not None:
            return failure
        return web.json_response(self._model_object(model))

    # -- videos ------------------------------------------------------------------------------

    async def _list_videos(self, request: web.Request) -> web.StreamResponse:
        if (failure := await self._behave(request, None)) is not None:
            return failure
        try:
            limit = max(1, min(100, int(request.query.get("limit", "20"))))
        except ValueError:
            return _error(400, "Invalid value for 'limit': expected an integer.", param="limit")
        jobs = [self._video_object(job) for job in reversed(self._jobs.values())][:limit]
        return web.json_response(
            {
                "object": "list",
                "data": jobs,
                "first_id": jobs[0]["id"] if jobs else None,
                "last_id": jobs[-1]["id"] if jobs else None,
                "has_more": len(self._jobs) > limit,
            }
        )

    async def _create_video(self, request: web.Request) -> web.StreamResponse:
        form = await _read_fields(request)
        model = str(form.get("model") or "sora-2")
        if (failure := await self._behave(request, model)) is not None:
            return failure
        prompt = form.get("prompt")
        if not prompt:
            return _error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        n = len(self._jobs) + 1
        job = _Job(
            id="video_" + hashlib.sha1(f"video:{n}".encode()).hexdigest(),
            model=model,
            prompt=str(prompt),
            seconds=str(form.get("seconds") or "4"),
            size=str(form.get("size") or "720x1280"),
            created_at=int(self._clock()),
            fails=self._scripts.get(model, self._scripts[ALL]).behaviour is Behaviour.JOB_FAILED,
        )
        self._jobs[job.id] = job
        return web.json_response(self._video_object(job))

    async def _job(self, request: web.Request) -> _Job | web.StreamResponse:
        """The job named in the path, or the answer that ends the request (404, behaviour)."""
        job = self._jobs.get(request.match_info["video_id"])
        if job is None:
            return _video_not_found(request.match_info["video_id"])
        return await self._behave(request, job.model) or job

    async def _get_video(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request)
        if not isinstance(job, _Job):
            return job
        job.polls += 1
        if job.polls >= self.polls_to_complete and job.completed_at is None:
            job.completed_at = int(self._clock())
        headers = {"openai-poll-after-ms": str(self.poll_after_ms)}
        return web.json_response(self._video_object(job), headers=headers)

    async def _get_content(self, request: web.Request) -> web.StreamResponse:
        job = await self._job(request)
        if not isinstance(job, _Job):
            return job
        if self._video_object(job)["status"] != "completed":
            message = f"Video with id '{job.id}' is not ready: its content is not available yet."
            return _error(400, message, code="video_not_ready")
        return web.Response(body=FAKE_MP4, content_type="video/mp4")

    def _video_object(self, job: _Job) -> dict[str, Any]:
        done = job.completed_at is not None
        if done:
            status = "failed" if job.fails else "completed"
        else:
            status = "in_progress" if job.polls else "queued"
        progress = 100 if done else min(99, 100 * job.polls // max(1, self.polls_to_complete))
        error = None
        if status == "failed":
            error = {
                "code": "generation_failed",
                "message": "上游生成失败，请重试 (video generation failed upstream)",
            }
        return {
            "id": job.id,
            "object": "video",
            "model": job.model,
            "status": status,
            "progress": progress,
            "created_at": job.created_at,
            "completed_at": job.completed_at,
            "expires_at": None if job.completed_at is None else job.completed_at + 86_400,
            "prompt": job.prompt,
            "seconds": job.seconds,
            "size": job.size,
            "remixed_from_video_id": None,
            "error": error,
        }

    # -- images ------------------------------------------------------------------------------

    async def _create_image(self, request: web.Request) -> web.StreamResponse:
        form = await _read_fields(request)
        model = str(form.get("model") or "gpt-image-1")
        if (failure := await self._behave(request, model)) is not None:
            return failure
        if not form.get("prompt"):
            return _error(
                400,
                "Missing required parameter: 'prompt'.",
                param="prompt",
                code="missing_required_parameter",
            )
        return web.json_response({"created": int(self._clock()), "data": [{"b64_json": _PNG_1X1}]})


def _invalid_url(request: web.Request) -> web.Response:
    """What OpenAI answers for an unknown route or method."""
    return _error(404, f"Invalid URL ({request.method} {request.path})")


def _not_found(model: str) -> web.Response:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return _error(404, message, code="model_not_found")


def _video_not_found(video_id: str) -> web.Response:
    return _error(404, f"Video with id '{video_id}' not found.", param="video_id")


async def _read_fields(request: web.Request) -> dict[str, Any]:
    """Body fields of a JSON, multipart or urlencoded request (the SDK sends multipart)."""
    if request.content_type == "application/json":
        try:
            data = await request.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    return {}
