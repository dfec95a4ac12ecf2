"""The Gemini Developer API (``v1beta``) on loopback: model metadata and Veo jobs, scriptable.

Routes, relative to the base URL ``start()`` returns (``http://127.0.0.1:PORT/v1beta``):

- ``GET models/{model}``: model metadata (what ``bot.probes.gemini`` and ``models.get`` read);
- ``POST models/{model}:predictLongRunning``: create a Veo job, ``{"instances": [{"prompt"}],
  "parameters": {"aspectRatio", "durationSeconds", "resolution", …}}`` → ``{"name": …}``;
- ``GET models/{model}/operations/{id}``: poll it (what google-genai's ``operations.get`` sends);
  done after ``polls_to_complete`` polls, the video under
  ``response.generateVideoResponse.generatedSamples[].video.uri``;
- ``GET files/{id}:download?alt=media``: the MP4 (what ``files.download`` sends).

Video URIs name the public host (``file_base``) like the real API does: google-genai keeps only the
file id of a URI and downloads from its own base URL, i.e. from this server (it cannot parse an
``http://`` URI at all). Errors use Google's envelope ``{"error": {"code", "message", "status"}}``.
The key is accepted from ``x-goog-api-key`` or ``?key=``; ``calls`` records which was used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.sim.relay import FAKE_MP4
from bot.sim.server import LoopbackServer

ALL = "*"  # ``sim.set(ALL, …)``: models without their own script
GOOGLE_FILES = "https://generativelanguage.googleapis.com/v1beta"
SAFETY_MESSAGE = (
    "The prompt could not be submitted. This prompt contains words that violate Gemini API's "
    "usage guidelines (responsible AI safety filter). Support codes: 29310472"
)
FILTERED_REASON = (
    "Veo could not generate videos because the input prompt violates Google's Generative AI "
    "Prohibited Use policy. You have not been charged. Support codes: 58061214"
)
OPERATION_ERROR = "Video generation failed due to an internal error. Please try again later."

_CREATE = re.compile(r"^/v1beta/models/[^/]+:predictLongRunning$")
_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta."
_METADATA_TYPE = _TYPE + "PredictLongRunningMetadata"
_RESPONSE_TYPE = _TYPE + "PredictLongRunningResponse"
_CHUNK = 64 * 1024


class GeminiBehaviour(StrEnum):
    """How the API answers for one model (or, via ``ALL``, for every unscripted model)."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"  # 429 RESOURCE_EXHAUSTED
    UNAVAILABLE = "unavailable"  # 503 UNAVAILABLE
    NOT_FOUND = "not_found"  # 404 NOT_FOUND (the model is gone)
    PERMISSION_DENIED = "permission_denied"  # 403 PERMISSION_DENIED
    HANG = "hang"  # never answers until the server stops
    DROP = "drop"  # reads the request, then closes the connection without an answer
    INVALID_ARGUMENT = "invalid_argument"  # create only: 400 INVALID_ARGUMENT
    SAFETY_REFUSED = "safety_refused"  # create only: 400 INVALID_ARGUMENT, safety wording
    SAFETY_FILTERED = "safety_filtered"  # the job ends with raiMediaFiltered* and no video
    OPERATION_ERROR = "operation_error"  # the job ends with an ``error`` (code 13)


_CREATE_ONLY = frozenset({GeminiBehaviour.INVALID_ARGUMENT, GeminiBehaviour.SAFETY_REFUSED})
_JOB_ENDINGS = frozenset({GeminiBehaviour.SAFETY_FILTERED, GeminiBehaviour.OPERATION_ERROR})


@dataclass(frozen=True, slots=True)
class Call:
    """One request as received: ``url`` is path and query, ``api_key`` the header's value."""

    method: str
    url: str
    api_key: str | None
    body: Any = None  # the decoded JSON body of a POST


@dataclass(slots=True)
class _Job:
    id: str
    model: str
    ending: GeminiBehaviour  # OK, SAFETY_FILTERED or OPERATION_ERROR, fixed at create
    polls: int = 0

    @property
    def name(self) -> str:
        return f"models/{self.model}/operations/{self.id}"


def _error(status: int, code: str, message: str, *, details: list[dict[str, Any]] | None = None
           ) -> web.Response:
    """Google's error envelope."""
    error: dict[str, Any] = {"code": status, "message": message, "status": code}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


def _method_not_found(request: web.Request) -> web.Response:
    """What Google answers for an unknown route or method."""
    return _error(404, "NOT_FOUND", f"Method not found: {request.path}")


def _bad_key() -> web.Response:
    """What Google answers for a key it does not know: 400, not 401."""
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}}
    return _error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.",
                  details=[info])


def _no_key() -> web.Response:
    return _error(403, "PERMISSION_DENIED",
                  "Method doesn't allow unregistered callers (callers without established "
                  "identity). Please use API Key or other form of API consumer identity to call "
                  "this API.")


def _model_not_found(model: str, method: str = "predictLongRunning") -> web.Response:
    return _error(404, "NOT_FOUND",
                  f"models/{model} is not found for API version v1beta, or is not supported for "
                  f"{method}. Call ListModels to see the list of available models and their "
                  "supported methods.")


class SimGemini(LoopbackServer):
    """Gemini Developer API simulator; ``start()`` returns the base URL ending in ``/v1beta``."""

    url_suffix = "/v1beta"

    def __init__(
        self,
        *,
        models: Iterable[str] = ("veo-3.1-generate-preview",),
        api_key: str | None = None,
        polls_to_complete: int = 2,
        video_size: int | None = None,
        report_progress: bool = False,
        file_base: str = GOOGLE_FILES,
    ) -> None:
        super().__init__()
        self.api_key = api_key  # when set, requests without it are refused like Google does
        self.polls_to_complete = polls_to_complete
        self.video_size = video_size  # bytes of the served MP4 (padded); None: a tiny MP4
        self.report_progress = report_progress  # metadata.progressPercent while running
        self.file_base = file_base.rstrip("/")
        self.calls: list[Call] = []
        self._models: dict[str, None] = dict.fromkeys(models)
        self._scripts: dict[str, GeminiBehaviour] = {ALL: GeminiBehaviour.OK}
        self._messages: dict[str, str] = {}
        self._jobs: dict[str, _Job] = {}
        self._files: dict[str, _Job] = {}

    # -- scripting ---------------------------------------------------------------------------

    def set(self, model: str, behaviour: GeminiBehaviour | str = GeminiBehaviour.OK, *,
            message: str | None = None) -> None:
        """Script ``model`` (``ALL`` for the default); the model becomes known.

        ``message`` replaces the error message of a failing behaviour (e.g. to echo a secret).
        """
        self._scripts[model] = GeminiBehaviour(behaviour)
        if message is None:
            self._messages.pop(model, None)
        else:
            self._messages[model] = message
        if model != ALL:
            self._models.setdefault(model, None)

    @property
    def billable_calls(self) -> int:
        """How many video creations were attempted, whatever the answer."""
        return sum(1 for method, path in self.requests
                   if method == "POST" and _CREATE.match(path))

    @property
    def video(self) -> bytes:
        """The MP4 every finished job serves."""
        if self.video_size is None or self.video_size <= len(FAKE_MP4):
            return FAKE_MP4
        return FAKE_MP4 + bytes(self.video_size - len(FAKE_MP4))

    # -- app ---------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder(), self._record_calls(),
                                           self.unknown_routes(_method_not_found),
                                           self._gatekeeper()])
        app.router.add_get("/v1beta/models/{model}/operations/{op}", self._get_operation)
        app.router.add_get("/v1beta/models/{name}", self._get_model)
        app.router.add_post("/v1beta/models/{name}", self._post_model)
        app.router.add_get("/v1beta/files/{name}", self._get_file)
        return app

    def _record_calls(self) -> Middleware:
        @web.middleware
        async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
            body: Any = None
            if request.method == "POST":
                try:
                    body = json.loads(await request.read() or b"null")
                except ValueError:
                    body = None
            self.calls.append(Call(request.method, request.path_qs,
                                   request.headers.get("x-goog-api-key"), body))
            return await handler(request)

        return record

    def _gatekeeper(self) -> Middleware:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if self.api_key is not None:
                sent = request.headers.get("x-goog-api-key") or request.query.get("key")
                if not sent:
                    return _no_key()
                if sent != self.api_key:
                    return _bad_key()
            return await handler(request)

        return gate

    async def _behave(self, request: web.Request, model: str, *, create: bool = False
                      ) -> web.StreamResponse | None:
        """The scripted failure for ``model`` on this route, or None to answer normally."""
        behaviour = self._script(model)
        message = self._messages.get(model if model in self._scripts else ALL)
        match behaviour:
            case GeminiBehaviour.HANG:
                return await self.hang(request)
            case GeminiBehaviour.DROP:
                await request.read()
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # nothing more to answer on a closed connection
            case GeminiBehaviour.RATE_LIMITED:
                return _error(429, "RESOURCE_EXHAUSTED", message or (
                    "You exceeded your current quota, please check your plan and billing "
                    "details. Please retry in 21.5s."))
            case GeminiBehaviour.UNAVAILABLE:
                return _error(503, "UNAVAILABLE", message or (
                    "The model is overloaded. Please try again later."))
            case GeminiBehaviour.PERMISSION_DENIED:
                return _error(403, "PERMISSION_DENIED", message or (
                    "Your project has been denied access. Please contact support."))
            case GeminiBehaviour.NOT_FOUND:
                return _model_not_found(model)
            case GeminiBehaviour.INVALID_ARGUMENT if create:
                return _error(400, "INVALID_ARGUMENT", message or (
                    "Request contains an invalid argument."))
            case GeminiBehaviour.SAFETY_REFUSED if create:
                return _error(400, "INVALID_ARGUMENT", message or SAFETY_MESSAGE)
        if model not in self._models:
            return _model_not_found(model)
        return None

    def _script(self, model: str) -> GeminiBehaviour:
        return self._scripts.get(model, self._scripts[ALL])

    # -- models ------------------------------------------------------------------------------

    async def _get_model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["name"]
        if (failure := await self._behave(request, model)) is not None:
            return failure
        version = m.group(1) if (m := re.match(r"veo-(\d+(?:\.\d+)?)", model)) else "001"
        return web.json_response({
            "name": f"models/{model}",
            "version": version,
            "displayName": f"Veo {version}" if model.startswith("veo-") else model,
            "description": "Generates videos from text and image prompts.",
            "inputTokenLimit": 1024,
            "outputTokenLimit": 1,
            "supportedGenerationMethods": ["predictLongRunning"],
        })

    async def _post_model(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["name"].partition(":")
        if method != "predictLongRunning":
            return _error(404, "NOT_FOUND", f"Method not found: {request.path}")
        if (failure := await self._behave(request, model, create=True)) is not None:
            return failure
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if (invalid := _invalid(body)) is not None:
            return _error(400, "INVALID_ARGUMENT", invalid)
        n = len(self._jobs) + 1
        behaviour = self._script(model)
        job = _Job(id=hashlib.sha1(f"op:{n}".encode()).hexdigest()[:12], model=model,
                   ending=behaviour if behaviour in _JOB_ENDINGS else GeminiBehaviour.OK)
        self._jobs[job.id] = job
        return web.json_response({"name": job.name})

    # -- operations and files ----------------------------------------------------------------

    async def _get_operation(self, request: web.Request) -> web.StreamResponse:
        model, op = request.match_info["model"], request.match_info["op"]
        job = self._jobs.get(op)
        if job is None or job.model != model:
            return _error(404, "NOT_FOUND", f"Operation models/{model}/operations/{op} not found.")
        if (failure := await self._behave(request, model)) is not None:
            return failure
        job.polls += 1
        return web.json_response(self._operation(job))

    def _operation(self, job: _Job) -> dict[str, Any]:
        done = job.polls >= self.polls_to_complete
        out: dict[str, Any] = {"name": job.name, "metadata": {"@type": _METADATA_TYPE}}
        if self.report_progress:
            ratio = 100 * job.polls // max(1, self.polls_to_complete)
            out["metadata"]["progressPercent"] = 100 if done else min(99, ratio)
        if not done:
            return out
        out["done"] = True
        if job.ending is GeminiBehaviour.OPERATION_ERROR:
            out["error"] = {"code": 13, "message": OPERATION_ERROR}
            return out
        result: dict[str, Any]
        if job.ending is GeminiBehaviour.SAFETY_FILTERED:
            result = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": [FILTERED_REASON]}
        else:
            file_id = hashlib.sha1(f"file:{job.id}".encode()).hexdigest()[:12]
            self._files[file_id] = job
            uri = f"{self.file_base}/files/{file_id}:download?alt=media"
            result = {"generatedSamples": [{"video": {"uri": uri}}]}
        out["response"] = {"@type": _RESPONSE_TYPE, "generateVideoResponse": result}
        return out

    async def _get_file(self, request: web.Request) -> web.StreamResponse:
        file_id, _, method = request.match_info["name"].partition(":")
        job = self._files.get(file_id)
        if method != "download" or job is None:
            return _error(404, "NOT_FOUND", f"File files/{file_id} not found.")
        if (failure := await self._behave(request, job.model)) is not None:
            return failure
        video = self.video
        response = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        response.content_length = len(video)
        await response.prepare(request)
        try:
            for start in range(0, len(video), _CHUNK):
                await response.write(video[start:start + _CHUNK])
        except ConnectionError:
            return response  # the client stopped reading (a size cap): fine
        await response.write_eof()
        return response


def _invalid(body: object) -> str | None:
    """What Veo 3.1 would reject in a create body, or None."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received. Expected an object."
    instances = body.get("instances")
    if not isinstance(instances, list) or not instances or not isinstance(instances[0], dict):
        return "instances: a non-empty list is required."
    prompt = instances[0].get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return "instances[0].prompt: a prompt is required for text-to-video."
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        return "parameters: expected an object."
    try:
        seconds = int(params.get("durationSeconds", 8))
    except (TypeError, ValueError):
        return "parameters.durationSeconds: expected a number."
    if seconds not in (4, 6, 8):
        return f"parameters.durationSeconds: {seconds} is out of range, use 4, 6 or 8."
    if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        return "parameters.aspectRatio: use 16:9 or 9:16."
    resolution = params.get("resolution", "720p")
    if resolution not in ("720p", "1080p", "4k"):
        return "parameters.resolution: use 720p, 1080p or 4k."
    if resolution != "720p" and seconds != 8:
        return f"parameters.resolution: {resolution} is only supported with durationSeconds 8."
    if params.get("sampleCount", 1) not in (1, 2, 3, 4):
        return "parameters.sampleCount: use 1 to 4."
    return None
