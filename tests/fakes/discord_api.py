"""A loopback fake of Discord: REST API v10, interaction callbacks and webhooks, and the Gateway.

The real discord.py client talks to it over real HTTP and a real websocket. ``pointed_at`` aims
discord.py's class-level URLs (``Route.BASE``, ``DiscordWebSocket.DEFAULT_GATEWAY``) at the fake
and restores them on exit. Answers use Discord's JSON shapes and error codes (50035 with a nested
``errors`` tree, 50006, 10003, 10008, 10015, 10062, 40060...); ``fail`` queues refusals.

    async with FakeDiscord() as fake:
        with pointed_at(fake):
            client = discord.Client(intents=discord.Intents.none(), guild_ready_timeout=0)
            tree = discord.app_commands.CommandTree(client)  # ... add a ``sora`` group
            await client.login(fake.token)
            await client.get_partial_messageable(1).send("hi")
            fake.fail("messages", RateLimit(0.05))  # the next post is rate limited (429)

            task = asyncio.create_task(client.connect())
            await asyncio.wait_for(fake.connected.wait(), 5)  # READY sent
            await fake.push("INTERACTION_CREATE", fake.command_payload("status", {"service": "x"}))
            await fake.wait_for(lambda: fake.callbacks)
            await client.close()
            await task
        assert fake.messages[0].content == "hi"

``fail`` route keys: ``login`` (GET /users/@me), ``application`` (GET /oauth2/applications/@me),
``gateway`` (GET /gateway[/bot]), ``messages`` (POST /channels/{c}/messages), ``fetch`` / ``edit``
/ ``delete`` (GET / PATCH / DELETE /channels/{c}/messages/{m}), ``commands`` (GET|PUT
application commands, global or guild), ``callback`` (POST /interactions/{i}/{token}/callback),
``followup`` (POST /webhooks/{app}/{token}), ``webhook_message`` (GET|PATCH|DELETE
/webhooks/{app}/{token}/messages/{m|@original}).

Interactions come from ``command_payload`` / ``autocomplete_payload`` (or any payload ``push``ed
as INTERACTION_CREATE): the fake remembers them so callbacks and followups can be checked. A
callback more than ``callback_deadline`` seconds (by ``clock``) after the payload was built or
pushed is refused with 10062, as Discord does after 3 s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import mimetypes
import re
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypedDict, Unpack

import yarl
from aiohttp import BodyPartReader, WSMsgType, web
from discord.gateway import DiscordWebSocket

from adapters.discord import api_base
from tests.fakes.loopback import Loopback

API_PREFIX = "/api/v10"
BOT_USER_ID = "1210000000000000001"
APP_ID = "1210000000000000002"
OWNER_ID = "1210000000000000003"
GUILD_ID = "1210000000000000010"
CHANNEL_ID = "1210000000000000020"
USER_ID = "1210000000000000030"
DISCORD_EPOCH_MS = 1_420_070_400_000

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
MAX_FIELDS = 25
MAX_CHOICES = 25
MAX_NONCE = 25
MAX_ATTACHMENT = 10 * 1024 * 1024
MAX_REQUEST = 11 * MAX_ATTACHMENT
EMBED_LIMITS = {"title": 256, "description": 4096}
FIELD_LIMITS = {"name": 256, "value": 1024}
HEARTBEAT_INTERVAL_MS = 41250
PUSH_WAIT = 5.0

SUPPRESS_EMBEDS, EPHEMERAL, LOADING, SILENT, COMPONENTS_V2 = 4, 64, 128, 4096, 32768
CHANNEL_FLAGS = SUPPRESS_EMBEDS | SILENT | COMPONENTS_V2
WEBHOOK_FLAGS = CHANNEL_FLAGS | EPHEMERAL
# VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
APP_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)
# interaction type -> the callback types Discord accepts for it
CALLBACK_TYPES = {2: {4, 5, 9, 12}, 3: {4, 5, 6, 7, 9}, 4: {8}, 5: {4, 5, 6, 7}}
STATUS_BODIES = {
    400: (0, "400: Bad Request"), 401: (0, "401: Unauthorized"),
    403: (50013, "Missing Permissions"), 404: (0, "404: Not Found"),
    500: (0, "500: Internal Server Error"), 502: (0, "502: Bad Gateway"),
    503: (0, "503: Service Unavailable"), 504: (0, "504: Gateway Timeout"),
}

OptionValue = str | int | float | bool
Upload = tuple[str, str, bytes]  # (filename, content type as sent, bytes)


# --- recorded items ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A queued 429: ``retry_after`` seconds, for the route (user scope) or ``global_``."""

    retry_after: float
    global_: bool = False


Answer = int | RateLimit


@dataclass(frozen=True, slots=True)
class Posted:
    """An accepted ``POST /channels/{channel_id}/messages``."""

    channel_id: str
    id: str
    content: str
    embeds: list[dict[str, Any]]
    allowed_mentions: dict[str, Any] | None
    message_reference: dict[str, Any] | None
    nonce: str | None
    flags: int
    files: list[Upload]


@dataclass(frozen=True, slots=True)
class Edited:
    """An accepted edit; ``interaction_token`` is None for the channel route, else the webhook's.

    ``content``/``embeds``/``attachments`` are None when the edit left them out;
    ``allowed_mentions`` is as sent (None when left out).
    """

    channel_id: str
    id: str
    content: str | None
    embeds: list[dict[str, Any]] | None
    attachments: list[dict[str, Any]] | None
    files: list[Upload]
    interaction_token: str | None = None
    allowed_mentions: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Callback:
    """An interaction callback; ``error`` is the Discord code it was refused with, else None."""

    interaction_id: str
    type: int | None
    data: dict[str, Any] | None
    files: list[Upload]
    after: float  # seconds since the interaction was built or pushed
    error: int | None = None


@dataclass(frozen=True, slots=True)
class Followup:
    """An accepted ``POST /webhooks/{app_id}/{token}``.

    ``filled_original``: it was the first followup after a deferral, so Discord filled in the
    deferred "thinking" message (same id, ephemeral as the deferral) instead of posting anew.
    """

    interaction_id: str
    channel_id: str
    id: str
    content: str
    embeds: list[dict[str, Any]]
    flags: int
    files: list[Upload]
    filled_original: bool = False

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)


@dataclass(slots=True)
class StoredFile:
    """An attachment as stored (and served at ``url``)."""

    id: str
    filename: str
    content_type: str
    data: bytes
    url: str
    description: str | None = None


@dataclass(slots=True)
class StoredMessage:
    """The current state of a message the bot posted (see ``FakeDiscord.message``)."""

    channel_id: str
    id: str
    content: str
    embeds: list[dict[str, Any]]
    attachments: list[StoredFile]
    flags: int = 0
    type: int = 0
    reply_to: str | None = None
    nonce: str | None = None
    components: list[Any] = field(default_factory=list)
    interaction_metadata: dict[str, Any] | None = None
    timestamp: str = field(default_factory=lambda: _now_iso())
    edited_timestamp: str | None = None


@dataclass(slots=True)
class _Interaction:
    id: str
    token: str
    type: int
    channel_id: str
    metadata: dict[str, Any]
    created: float
    response_type: int | None = None
    original_id: str | None = None
    message_ids: set[str] = field(default_factory=set)


class Where(TypedDict, total=False):
    """Who invokes an interaction, and where (every key optional)."""

    guild_id: str
    channel_id: str
    channel_name: str
    user_id: str
    username: str
    roles: Sequence[str]
    permissions: int  # the member's resolved channel permissions
    app_permissions: int
    locale: str
    command_guild_id: str | None  # set when the command is registered in a guild


class _Refused(Exception):
    """A Discord error answer, raised by handlers and turned into the JSON reply."""

    def __init__(self, status: int, code: int, message: str,
                 errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return _reply(body, status=self.status)


Handler = Callable[[web.Request, dict[str, str]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    key: str
    handler: Handler
    auth: bool = True


# --- the fake ---------------------------------------------------------------------------------


class FakeDiscord(Loopback):
    """Discord on 127.0.0.1: ``async with FakeDiscord() as fake:``, then ``pointed_at(fake)``."""

    BOT_USER_ID = BOT_USER_ID
    APP_ID = APP_ID

    def __init__(self, token: str = "fake.discord.token") -> None:
        super().__init__()
        self.token = token
        self.missing_channels: set[str] = set()
        self.forbidden_channels: set[str] = set()
        self.callback_deadline = 3.0
        self.token_lifetime = 15 * 60.0
        self.nonce_ttl = 5 * 60.0
        self.retry_after = 0.05  # for a bare ``429`` answer
        self.clock: Callable[[], float] = time.monotonic
        self.messages: list[Posted] = []
        self.edits: list[Edited] = []
        self.deleted: list[tuple[str, str]] = []
        self.callbacks: list[Callback] = []
        self.followups: list[Followup] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.identify: dict[str, Any] | None = None
        self.frames: list[dict[str, Any]] = []  # every gateway frame the client sent
        self.rate_limited = 0
        self.connected = asyncio.Event()
        self._failures: defaultdict[str, deque[Answer]] = defaultdict(deque)
        self._store: dict[str, StoredMessage] = {}
        self._files: dict[str, StoredFile] = {}
        self._nonces: dict[tuple[str, str], tuple[str, float]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._tokens: dict[str, _Interaction] = {}
        self._command_ids: dict[tuple[str | None, str], str] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._socket: web.WebSocketResponse | None = None
        self._session_id: str | None = None
        self._seq = 0
        self._last_snowflake = 0
        self._increment = itertools.count()
        self._changed = asyncio.Event()
        self._table = self._routes()
        self.route("GET", "/gateway", self._gateway)

    @property
    def api_url(self) -> str:
        """The value for ``discord.http.Route.BASE``."""
        return f"{self.url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def __aenter__(self) -> FakeDiscord:
        await super().__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.closing.set()
        for ws in list(self._sockets):
            with suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"going away"), 1)
        await super().__aexit__(exc_type, exc, tb)

    # --- test controls ------------------------------------------------------------------------

    def fail(self, route_key: str, *answers: Answer) -> None:
        """Queue one answer per request for the next requests of ``route_key`` (module docstring).

        An int is that HTTP status with Discord's JSON error body (``429`` means
        ``RateLimit(self.retry_after)``); a ``RateLimit`` is a 429 as Discord sends it (body,
        ``Retry-After``, ``X-RateLimit-*`` and the ``Via`` header discord.py insists on). Requests
        refused this way are not recorded in ``messages``, ``callbacks``... 429s count in
        ``rate_limited``.
        """
        self._failures[route_key].extend(answers)

    def message(self, channel_id: str | int, message_id: str | int) -> StoredMessage | None:
        """The current state of a message in a channel (None if never posted or deleted)."""
        found = self._store.get(str(message_id))
        return found if found is not None and found.channel_id == str(channel_id) else None

    def answers(self, interaction_id: str) -> list[StoredMessage]:
        """What the interaction's user sees now: its response (once no longer "thinking…")
        and followups, in order; deleted ones are gone."""
        return [m for m in self._shown(interaction_id) if not m.flags & LOADING]

    def thinking(self, interaction_id: str) -> bool:
        """Whether the interaction's deferred response still waits to be filled in."""
        return any(m.flags & LOADING for m in self._shown(interaction_id))

    def _shown(self, interaction_id: str) -> list[StoredMessage]:
        interaction = self._interactions.get(str(interaction_id))
        if interaction is None:
            return []
        return [self._store[i] for i in sorted(interaction.message_ids, key=int)
                if i in self._store]

    async def wait_for(self, predicate: Callable[[], object], within: float = 2.0) -> None:
        """Wait until ``predicate()`` is truthy, re-checked after every request handled."""
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    def command_payload(self, subcommand: str | None,
                        options: Mapping[str, OptionValue] | None = None, *,
                        group: str = "sora", **where: Unpack[Where]) -> dict[str, Any]:
        """An APPLICATION_COMMAND interaction for ``/group subcommand`` (registered here)."""
        opts = [_option(name, value) for name, value in (options or {}).items()]
        return self._interaction(2, group, subcommand, opts, where)

    def autocomplete_payload(self, subcommand: str | None, options: Mapping[str, OptionValue],
                             focused: str, *, group: str = "sora",
                             **where: Unpack[Where]) -> dict[str, Any]:
        """An APPLICATION_COMMAND_AUTOCOMPLETE interaction; ``focused`` names the typed option."""
        if focused not in options:
            raise ValueError(f"focused option {focused!r} is not among the options")
        opts = [_option(name, value) | ({"focused": True} if name == focused else {})
                for name, value in options.items()]
        return self._interaction(4, group, subcommand, opts, where)

    async def push(self, event: str, data: dict[str, Any]) -> int:
        """Dispatch ``event`` to the connected client (waits for READY); returns its sequence."""
        async with asyncio.timeout(PUSH_WAIT):
            await self.connected.wait()
        ws = self._socket
        if ws is None or ws.closed:
            raise ConnectionError("no gateway client is connected")
        if event == "INTERACTION_CREATE":
            self._track(data).created = self.clock()
        return await self._dispatch_event(ws, event, data)

    async def disconnect(self, code: int = 4000) -> None:
        """Close the client's gateway socket as Discord may (4000: it reconnects and RESUMEs)."""
        ws, self._socket = self._socket, None
        self.connected.clear()
        if ws is not None:
            await ws.close(code=code, message=b"Unknown error.")

    # --- routing ------------------------------------------------------------------------------

    def _routes(self) -> list[_Route]:
        message = r"/channels/(?P<channel_id>\d+)/messages/(?P<message_id>\d+)"
        commands = r"/applications/(?P<app_id>\d+)(?:/guilds/(?P<guild_id>\d+))?/commands"
        webhook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        webhook_message = webhook + r"/messages/(?P<message_id>@original|\d+)"
        table: list[tuple[str, str, str, Handler, bool]] = [
            ("GET", r"/users/@me", "login", self._me, True),
            ("GET", r"/oauth2/applications/@me", "application", self._application, True),
            ("GET", r"/gateway", "gateway", self._gateway_info, False),
            ("GET", r"/gateway/bot", "gateway", self._gateway_info, True),
            ("POST", r"/channels/(?P<channel_id>\d+)/messages", "messages", self._post, True),
            ("GET", message, "fetch", self._fetch, True),
            ("PATCH", message, "edit", self._edit, True),
            ("DELETE", message, "delete", self._delete, True),
            ("GET", commands, "commands", self._get_commands, True),
            ("PUT", commands, "commands", self._put_commands, True),
            ("POST", r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
             "callback", self._callback, False),
            ("POST", webhook, "followup", self._followup, False),
            ("GET", webhook_message, "webhook_message", self._webhook_get, False),
            ("PATCH", webhook_message, "webhook_message", self._webhook_edit, False),
            ("DELETE", webhook_message, "webhook_message", self._webhook_delete, False),
        ]
        return [_Route(m, re.compile(p), k, h, a) for m, p, k, h, a in table]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(API_PREFIX + "/"):
            self.routes.setdefault((request.method, request.path), self._api)
        elif request.path.startswith("/attachments/") and request.method == "GET":
            self.routes.setdefault((request.method, request.path), self._cdn)
        try:
            return await super()._dispatch(request)
        finally:
            self._changed.set()

    async def _api(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix(API_PREFIX)
        matches = [(r, m) for r in self._table if (m := r.pattern.fullmatch(path)) is not None]
        if not matches:
            return _Refused(404, 0, "404: Not Found").response()
        found = next(((r, m) for r, m in matches if r.method == request.method), None)
        if found is None:
            return _Refused(405, 0, "405: Method Not Allowed").response()
        route, match = found
        if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
            return _Refused(401, 0, "401: Unauthorized").response()
        if self._failures[route.key]:
            return self._refusal(self._failures[route.key].popleft())
        params = {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            return await route.handler(request, params)
        except _Refused as refused:
            return refused.response()

    def _refusal(self, answer: Answer) -> web.Response:
        if answer == 429:
            answer = RateLimit(self.retry_after)
        if isinstance(answer, RateLimit):
            self.rate_limited += 1
            return _rate_limited(answer)
        code, message = STATUS_BODIES.get(answer, (0, f"{answer}: Error"))
        return _Refused(answer, code, message).response()

    # --- users, application, gateway info -----------------------------------------------------

    def _bot_user(self) -> dict[str, Any]:
        return _user(BOT_USER_ID, "sora-status", bot=True)

    async def _me(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        return _reply(self._bot_user() | {
            "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US",
            "email": None, "premium_type": 0})

    async def _application(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        return _reply({
            "id": APP_ID, "name": "Sora Status", "icon": None, "description": "",
            "summary": "", "type": None, "hook": True, "bot_public": False,
            "bot_require_code_grant": False, "verify_key": "0" * 64, "flags": 1 << 23,
            "owner": _user(OWNER_ID, "owner"), "team": None, "bot": self._bot_user(),
            "interactions_endpoint_url": None, "redirect_uris": [], "tags": [],
            "approximate_guild_count": 1, "integration_types_config": {"0": {}}})

    async def _gateway_info(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        if request.path.endswith("/bot"):
            return _reply({
                "url": self.gateway_url, "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999,
                                        "reset_after": 14_400_000, "max_concurrency": 1}})
        return _reply({"url": self.gateway_url})

    # --- channel messages ---------------------------------------------------------------------

    def _check_channel(self, channel_id: str) -> None:
        if channel_id in self.missing_channels:
            raise _Refused(404, 10003, "Unknown Channel")
        if channel_id in self.forbidden_channels:
            raise _Refused(403, 50001, "Missing Access")

    def _find(self, channel_id: str, message_id: str) -> StoredMessage:
        found = self.message(channel_id, message_id)
        if found is None:
            raise _Refused(404, 10008, "Unknown Message")
        return found

    async def _post(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        channel_id = p["channel_id"]
        self._check_channel(channel_id)
        body, uploads = await _read_body(request)
        body = _object(body)
        errors = _message_errors(body)
        reply_to = self._reply_target(channel_id, body.get("message_reference"), errors)
        if errors:
            raise _invalid(errors)
        content, embeds = str(body.get("content") or ""), _list(body.get("embeds"))
        if _empty(content, embeds, uploads, body):
            raise _Refused(400, 50006, "Cannot send an empty message")
        nonce = None if body.get("nonce") is None else str(body["nonce"])
        earlier = self._same_nonce(channel_id, nonce) if body.get("enforce_nonce") else None
        if earlier is not None:
            return _reply(self._render(earlier))
        message = StoredMessage(
            channel_id, self._snowflake(), content, embeds,
            self._attachments(channel_id, uploads, body.get("attachments")),
            flags=_int(body.get("flags")) & CHANNEL_FLAGS, type=19 if reply_to else 0,
            reply_to=reply_to, nonce=nonce, components=_list(body.get("components")))
        self._keep(message)
        if nonce is not None:
            self._nonces[(channel_id, nonce)] = (message.id, self.clock())
        self.messages.append(Posted(
            channel_id, message.id, content, embeds, _dict_or_none(body.get("allowed_mentions")),
            _dict_or_none(body.get("message_reference")), nonce, message.flags,
            [_upload(u) for u in uploads]))
        return _reply(self._render(message))

    def _reply_target(self, channel_id: str, reference: Any,
                      errors: dict[str, Any]) -> str | None:
        """The id of the message replied to; an unknown one is an error unless tolerated."""
        if not isinstance(reference, dict) or reference.get("message_id") is None:
            return None
        target = self._store.get(str(reference["message_id"]))
        same_channel = str(reference.get("channel_id") or channel_id) == channel_id
        if target is not None and target.channel_id == channel_id and same_channel \
                and not target.flags & EPHEMERAL:
            return target.id
        if reference.get("fail_if_not_exists", True):
            _add(errors, ["message_reference"], "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                 "Unknown message")
        return None

    def _same_nonce(self, channel_id: str, nonce: str | None) -> StoredMessage | None:
        seen = self._nonces.get((channel_id, nonce or ""))
        if seen is None or self.clock() - seen[1] > self.nonce_ttl:
            return None
        return self._store.get(seen[0])

    async def _fetch(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._check_channel(p["channel_id"])
        return _reply(self._render(self._find(p["channel_id"], p["message_id"])))

    async def _edit(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._check_channel(p["channel_id"])
        message = self._find(p["channel_id"], p["message_id"])
        body, uploads = await _read_body(request)
        self._apply_edit(message, _object(body), uploads, None)
        return _reply(self._render(message))

    async def _delete(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._check_channel(p["channel_id"])
        self._forget(self._find(p["channel_id"], p["message_id"]))
        return web.Response(status=204)

    def _apply_edit(self, message: StoredMessage, body: dict[str, Any], uploads: list[_Part],
                    token: str | None) -> None:
        errors = _message_errors(body)
        attachments = self._edited_attachments(message, body.get("attachments"), uploads, errors)
        if errors:
            raise _invalid(errors)
        content = message.content if "content" not in body else str(body["content"] or "")
        embeds = message.embeds if "embeds" not in body else _list(body["embeds"])
        components = (message.components if "components" not in body
                      else _list(body["components"]))
        if not (content or embeds or attachments or components):
            raise _Refused(400, 50006, "Cannot send an empty message")
        if not message.flags & LOADING:
            message.edited_timestamp = _now_iso()
        message.content, message.embeds, message.attachments = content, embeds, attachments
        message.components = components
        message.flags &= ~LOADING
        self.edits.append(Edited(
            message.channel_id, message.id, body.get("content") if "content" in body else None,
            _list(body["embeds"]) if "embeds" in body else None,
            _list(body["attachments"]) if "attachments" in body else None,
            [_upload(u) for u in uploads], token, _dict_or_none(body.get("allowed_mentions"))))

    def _edited_attachments(self, message: StoredMessage, listed: Any, uploads: list[_Part],
                            errors: dict[str, Any]) -> list[StoredFile]:
        """Kept attachments (those listed by id) plus the new files; unlisted ones removed."""
        if not isinstance(listed, list):
            return message.attachments + self._attachments(message.channel_id, uploads, None)
        kept_ids = {str(a.get("id")) for a in listed if isinstance(a, dict)}
        by_index = {str(u.index) for u in uploads}
        for i, entry in enumerate(listed):
            ident = str(entry.get("id")) if isinstance(entry, dict) else ""
            if ident not in by_index and all(a.id != ident for a in message.attachments):
                _add(errors, ["attachments", i, "id"], "ATTACHMENT_NOT_FOUND",
                     "Unknown attachment")
        kept = [a for a in message.attachments if a.id in kept_ids]
        return kept + self._attachments(message.channel_id, uploads, listed)

    # --- stored messages and attachments ------------------------------------------------------

    def _keep(self, message: StoredMessage) -> None:
        self._store[message.id] = message
        for attachment in message.attachments:
            self._files[attachment.id] = attachment

    def _forget(self, message: StoredMessage) -> None:
        self._store.pop(message.id, None)
        self.deleted.append((message.channel_id, message.id))

    def _attachments(self, channel_id: str, uploads: list[_Part],
                     listed: Any) -> list[StoredFile]:
        descriptions = {str(a.get("id")): a.get("description") for a in _list(listed)
                        if isinstance(a, dict)}
        stored = []
        for upload in uploads:
            ident = self._snowflake()
            guessed = mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
            url = f"{self.url}/attachments/{channel_id}/{ident}/{upload.filename}"
            stored.append(StoredFile(ident, upload.filename, guessed, upload.data, url,
                                     descriptions.get(str(upload.index))))
            self._files[ident] = stored[-1]
        return stored

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        parts = request.path.split("/")
        found = self._files.get(parts[3]) if len(parts) >= 5 else None
        if found is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found.data, content_type=found.content_type)

    def _render(self, message: StoredMessage, *, nested: bool = False) -> dict[str, Any]:
        """The message object Discord answers with (and discord.Message parses)."""
        data: dict[str, Any] = {
            "id": message.id, "channel_id": message.channel_id, "type": message.type,
            "content": message.content, "author": self._bot_user(),
            "attachments": [_attachment_json(a, message.flags) for a in message.attachments],
            "embeds": [{"type": "rich"} | e for e in message.embeds],
            "mentions": [], "mention_roles": [], "mention_everyone": False, "pinned": False,
            "tts": False, "timestamp": message.timestamp,
            "edited_timestamp": message.edited_timestamp, "flags": message.flags,
            "components": message.components,
        }
        if message.nonce is not None:
            data["nonce"] = message.nonce
        if message.reply_to is not None:
            data["message_reference"] = {"type": 0, "channel_id": message.channel_id,
                                         "message_id": message.reply_to}
            if not nested:
                target = self._store.get(message.reply_to)
                data["referenced_message"] = (None if target is None
                                              else self._render(target, nested=True))
        if message.interaction_metadata is not None:
            data |= {"webhook_id": APP_ID, "application_id": APP_ID,
                     "interaction_metadata": message.interaction_metadata}
        return data

    def _snowflake(self) -> str:
        """An increasing snowflake whose timestamp is now (discord.py reads it back)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17) | (next(self._increment) & 0xFFF)
        self._last_snowflake = max(value, self._last_snowflake + 1)
        return str(self._last_snowflake)

    # --- application commands -----------------------------------------------------------------

    def _check_app(self, app_id: str) -> None:
        if app_id != APP_ID:
            raise _Refused(403, 50001, "Missing Access")

    async def _get_commands(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._check_app(p["app_id"])
        return _reply(self.commands.get(p.get("guild_id"), []))

    async def _put_commands(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        self._check_app(p["app_id"])
        body, _ = await _read_body(request)
        if not isinstance(body, list):
            raise _invalid({"_errors": [{"code": "BASE_TYPE_ARRAY",
                                         "message": "Must be an array."}]})
        errors = _commands_errors(body)
        if errors:
            raise _invalid(errors)
        scope = p.get("guild_id")
        self.commands[scope] = [self._stored_command(c, scope) for c in body]
        return _reply(self.commands[scope])

    def _stored_command(self, command: dict[str, Any], scope: str | None) -> dict[str, Any]:
        name = str(command["name"])
        ident = self._command_ids.setdefault((scope, name), self._snowflake())
        stored = {
            "id": ident, "application_id": APP_ID, "version": self._snowflake(),
            "type": command.get("type", 1), "name": name,
            "description": command.get("description", ""),
            "name_localizations": command.get("name_localizations"),
            "description_localizations": command.get("description_localizations"),
            "default_member_permissions": command.get("default_member_permissions"),
            "nsfw": command.get("nsfw", False),
            "contexts": command.get("contexts"),
            "integration_types": command.get("integration_types") or [0],
        }
        if command.get("options"):
            stored["options"] = command["options"]
        if scope is not None:
            stored["guild_id"] = scope
        return stored

    def _command_id(self, name: str, scope: str | None) -> str:
        """The id Discord gave the command when it was synced (in ``scope``, else globally)."""
        known = self._command_ids.get((scope, name)) or self._command_ids.get((None, name))
        return known or self._command_ids.setdefault((scope, name), self._snowflake())

    # --- interactions -------------------------------------------------------------------------

    def _interaction(self, kind: int, group: str, subcommand: str | None,
                     options: list[dict[str, Any]], where: Where) -> dict[str, Any]:
        guild_id = where.get("guild_id", GUILD_ID)
        channel_id = where.get("channel_id", CHANNEL_ID)
        user = _user(where.get("user_id", USER_ID), where.get("username", "ada"))
        permissions = str(where.get("permissions", 0))
        locale = where.get("locale", "en-US")
        command_guild = where.get("command_guild_id")
        if subcommand is not None:
            options = [{"type": 1, "name": subcommand, "options": options}]
        data: dict[str, Any] = {"id": self._command_id(group, command_guild), "name": group,
                                "type": 1, "options": options}
        if command_guild is not None:
            data["guild_id"] = command_guild
        payload = {
            "id": self._snowflake(), "application_id": APP_ID, "type": kind,
            "token": f"aW50ZXJhY3Rpb24{secrets.token_urlsafe(48)}", "version": 1, "data": data,
            "guild_id": guild_id, "channel_id": channel_id,
            "channel": _text_channel(channel_id, guild_id, where, permissions),
            "guild": {"id": guild_id, "locale": locale, "features": []},
            "member": {
                "user": user, "roles": list(where.get("roles", ())), "nick": None,
                "avatar": None, "joined_at": "2024-01-01T00:00:00.000000+00:00",
                "premium_since": None, "deaf": False, "mute": False, "pending": False,
                "flags": 0, "permissions": permissions, "communication_disabled_until": None},
            "app_permissions": str(where.get("app_permissions", APP_PERMISSIONS)),
            "locale": locale, "guild_locale": locale, "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id}, "context": 0,
            "attachment_size_limit": MAX_ATTACHMENT,
        }
        self._track(payload)
        return payload

    def _track(self, payload: dict[str, Any]) -> _Interaction:
        """The interaction record for a payload, made on first sight."""
        known = self._interactions.get(str(payload["id"]))
        if known is not None:
            return known
        user = (payload.get("member") or {}).get("user") or payload.get("user") or {}
        data = payload.get("data") or {}
        name = " ".join([str(data.get("name", ""))] + [
            str(o["name"]) for o in data.get("options", []) if o.get("type") in (1, 2)])
        metadata = {"id": str(payload["id"]), "type": payload["type"], "user": user,
                    "authorizing_integration_owners":
                        payload.get("authorizing_integration_owners", {}),
                    "name": name, "command_type": data.get("type", 1)}
        record = _Interaction(str(payload["id"]), str(payload["token"]), int(payload["type"]),
                              str(payload.get("channel_id", "")), metadata, self.clock())
        self._interactions[record.id] = self._tokens[record.token] = record
        return record

    async def _callback(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        interaction = self._interactions.get(p["interaction_id"])
        if interaction is None or interaction.token != p["token"]:
            raise _Refused(404, 10062, "Unknown interaction")
        body, uploads = await _read_body(request)
        body = _object(body)
        kind = body.get("type") if isinstance(body.get("type"), int) else None
        data = body.get("data") if isinstance(body.get("data"), dict) else None
        after = self.clock() - interaction.created
        record = Callback(interaction.id, kind, data, [_upload(u) for u in uploads], after)
        try:
            message = self._acknowledge(interaction, kind, data or {}, uploads, after)
        except _Refused as refused:
            self.callbacks.append(Callback(record.interaction_id, kind, data, record.files,
                                           after, refused.code))
            raise
        self.callbacks.append(record)
        if request.query.get("with_response") not in ("1", "true", "True"):
            return web.Response(status=204)
        return _reply(self._callback_answer(interaction, kind, message))

    def _acknowledge(self, interaction: _Interaction, kind: int | None, data: dict[str, Any],
                     uploads: list[_Part], after: float) -> StoredMessage | None:
        if interaction.response_type is not None:
            raise _Refused(400, 40060, "Interaction has already been acknowledged.")
        if after > self.callback_deadline:
            raise _Refused(404, 10062, "Unknown interaction")
        allowed = CALLBACK_TYPES.get(interaction.type, set())
        if kind not in allowed:
            raise _invalid({"type": {"_errors": [{
                "code": "BASE_TYPE_CHOICES",
                "message": f"Value must be one of {sorted(allowed)}."}]}})
        message = self._callback_message(interaction, kind, data, uploads)
        interaction.response_type = kind
        return message

    def _callback_message(self, interaction: _Interaction, kind: int, data: dict[str, Any],
                          uploads: list[_Part]) -> StoredMessage | None:
        if kind == 8:
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) > MAX_CHOICES:
                raise _invalid({"data": {"choices": {"_errors": [{
                    "code": "BASE_TYPE_MAX_LENGTH",
                    "message": f"Must be {MAX_CHOICES} or fewer in length."}]}}})
            return None
        if kind == 7:
            return None  # updating a component's message: not modelled
        if kind not in (4, 5):
            return None
        errors = _message_errors(data)
        if errors:
            raise _invalid({"data": errors})
        content, embeds = str(data.get("content") or ""), _list(data.get("embeds"))
        if kind == 4 and _empty(content, embeds, uploads, data):
            raise _Refused(400, 50006, "Cannot send an empty message")
        flags = _int(data.get("flags")) & (WEBHOOK_FLAGS if kind == 4 else EPHEMERAL)
        message = StoredMessage(
            interaction.channel_id, self._snowflake(), content if kind == 4 else "",
            embeds if kind == 4 else [],
            self._attachments(interaction.channel_id, uploads, data.get("attachments"))
            if kind == 4 else [],
            flags=flags | (LOADING if kind == 5 else 0), type=20,
            components=_list(data.get("components")) if kind == 4 else [],
            interaction_metadata=interaction.metadata)
        self._keep(message)
        interaction.original_id = message.id
        interaction.message_ids.add(message.id)
        return message

    def _callback_answer(self, interaction: _Interaction, kind: int | None,
                         message: StoredMessage | None) -> dict[str, Any]:
        answer: dict[str, Any] = {"interaction": {
            "id": interaction.id, "type": interaction.type,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(message and message.flags & EPHEMERAL)}}
        if message is not None:
            answer["interaction"]["response_message_id"] = message.id
        answer["resource"] = {"type": kind}
        if message is not None and kind in (4, 7):
            answer["resource"]["message"] = self._render(message)
        return answer

    # --- followups and the original response --------------------------------------------------

    def _webhook_interaction(self, p: dict[str, str]) -> _Interaction:
        interaction = self._tokens.get(p["token"])
        if p["app_id"] != APP_ID or interaction is None \
                or interaction.response_type in (None, 8):
            raise _Refused(404, 10015, "Unknown Webhook")
        if self.clock() - interaction.created > self.token_lifetime:
            raise _Refused(401, 50027, "Invalid Webhook Token")
        return interaction

    async def _followup(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        interaction = self._webhook_interaction(p)
        body, uploads = await _read_body(request)
        body = _object(body)
        errors = _message_errors(body)
        if errors:
            raise _invalid(errors)
        content, embeds = str(body.get("content") or ""), _list(body.get("embeds"))
        if _empty(content, embeds, uploads, body):
            raise _Refused(400, 50006, "Cannot send an empty message")
        message, filled = self._followup_message(interaction, body, uploads)
        self.followups.append(Followup(
            interaction.id, message.channel_id, message.id, content, embeds, message.flags,
            [_upload(u) for u in uploads], filled))
        if request.query.get("wait") not in ("1", "true", "True"):
            return web.Response(status=204)
        return _reply(self._render(message))

    def _followup_message(self, interaction: _Interaction, body: dict[str, Any],
                          uploads: list[_Part]) -> tuple[StoredMessage, bool]:
        """The first followup after a deferral fills the "thinking" message; others are new."""
        channel_id = interaction.channel_id
        original = self._store.get(interaction.original_id or "")
        attachments = self._attachments(channel_id, uploads, body.get("attachments"))
        content, embeds = str(body.get("content") or ""), _list(body.get("embeds"))
        components = _list(body.get("components"))
        if original is not None and original.flags & LOADING:
            original.content, original.embeds, original.attachments = (
                content, embeds, attachments)
            original.components = components
            original.flags &= ~LOADING
            self._keep(original)
            return original, True
        message = StoredMessage(
            channel_id, self._snowflake(), content, embeds, attachments,
            flags=_int(body.get("flags")) & WEBHOOK_FLAGS, type=20, components=components,
            interaction_metadata=interaction.metadata)
        self._keep(message)
        interaction.message_ids.add(message.id)
        return message, False

    def _webhook_message(self, p: dict[str, str]) -> tuple[_Interaction, StoredMessage]:
        interaction = self._webhook_interaction(p)
        wanted = interaction.original_id if p["message_id"] == "@original" else p["message_id"]
        found = self._store.get(wanted or "")
        if found is None or found.id not in interaction.message_ids:
            raise _Refused(404, 10008, "Unknown Message")
        return interaction, found

    async def _webhook_get(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        return _reply(self._render(self._webhook_message(p)[1]))

    async def _webhook_edit(self, request: web.Request, p: dict[str, str]) -> web.StreamResponse:
        interaction, message = self._webhook_message(p)
        body, uploads = await _read_body(request)
        self._apply_edit(message, _object(body), uploads, interaction.token)
        return _reply(self._render(message))

    async def _webhook_delete(self, request: web.Request,
                              p: dict[str, str]) -> web.StreamResponse:
        self._forget(self._webhook_message(p)[1])
        return web.Response(status=204)

    # --- the gateway --------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        """The gateway websocket: HELLO, heartbeats, IDENTIFY -> READY, RESUME -> RESUMED."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json({"op": 10, "s": None, "t": None, "d": {
            "heartbeat_interval": HEARTBEAT_INTERVAL_MS, "_trace": ["fake-gateway"]}})
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(ws, msg.data)
                self._changed.set()
        finally:
            self._sockets.remove(ws)
            if ws is self._socket:
                self._socket = None
                self.connected.clear()
            self._changed.set()
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, raw: str) -> None:
        try:
            frame = json.loads(raw)
            op, data = frame["op"], frame.get("d")
        except (ValueError, KeyError, TypeError):
            await ws.close(code=4002, message=b"Error while decoding payload.")
            return
        self.frames.append(frame)
        if op == 1:
            await ws.send_json({"op": 11, "s": None, "t": None, "d": None})
        elif op == 2 and ws is self._socket:
            await ws.close(code=4005, message=b"Already authenticated.")
        elif op == 2:
            await self._identified(ws, data if isinstance(data, dict) else {})
        elif op == 6:
            await self._resumed(ws, data if isinstance(data, dict) else {})
        elif ws is not self._socket:
            await ws.close(code=4003, message=b"Not authenticated.")

    async def _identified(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identify = data
        self._session_id, self._seq, self._socket = uuid.uuid4().hex, 0, ws
        ready: dict[str, Any] = {
            "v": 10, "user": self._bot_user() | {"verified": True, "mfa_enabled": False,
                                                 "flags": 0, "email": None},
            "guilds": [], "session_id": self._session_id, "session_type": "normal",
            "resume_gateway_url": self.gateway_url, "private_channels": [],
            "relationships": [], "presences": [], "guild_join_requests": [],
            "geo_ordered_rtc_regions": [], "user_settings": {}, "auth": {},
            "application": {"id": APP_ID, "flags": 1 << 23}, "_trace": ["fake-gateway"]}
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._dispatch_event(ws, "READY", ready)
        self.connected.set()

    async def _resumed(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token or data.get("session_id") != self._session_id:
            await ws.send_json({"op": 9, "s": None, "t": None, "d": False})
            return
        self._socket = ws
        await self._dispatch_event(ws, "RESUMED", {"_trace": ["fake-gateway"]})
        self.connected.set()

    async def _dispatch_event(self, ws: web.WebSocketResponse, event: str,
                              data: dict[str, Any]) -> int:
        self._seq += 1
        await ws.send_json({"op": 0, "t": event, "s": self._seq, "d": data})
        return self._seq


@contextmanager
def pointed_at(fake: FakeDiscord) -> Iterator[FakeDiscord]:
    """Aim discord.py's REST base URL (the adapter's ``api_base``) and default gateway at
    ``fake``; both are restored on exit."""
    with api_base(fake.api_url):
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
        yield fake


# --- request bodies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Part:
    """An uploaded ``files[n]`` part."""

    index: int
    filename: str
    content_type: str
    data: bytes


FILE_FIELD = re.compile(r"files\[(\d+)\]")


async def _read_body(request: web.Request) -> tuple[Any, list[_Part]]:
    """A JSON body, or a multipart one (``payload_json`` plus ``files[n]``)."""
    # aiohttp's 1 MiB default would refuse uploads Discord takes (up to 10 MiB a file)
    request = request.clone(client_max_size=MAX_REQUEST)
    if request.content_type.startswith("multipart/"):
        return await _read_multipart(request)
    raw = await request.read()
    return (_json(raw) if raw.strip() else {}), []


async def _read_multipart(request: web.Request) -> tuple[Any, list[_Part]]:
    reader = await request.multipart()
    body: Any = {}
    parts: list[_Part] = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue  # a nested multipart: Discord does not take those
        data = bytes(await part.read(decode=False))
        field_match = FILE_FIELD.fullmatch(part.name or "")
        if part.name == "payload_json":
            body = _json(data)
        elif field_match is not None:
            if len(data) > MAX_ATTACHMENT:
                raise _Refused(413, 40005, "Request entity too large")
            parts.append(_Part(int(field_match.group(1)), part.filename or "file",
                               part.headers.get("Content-Type", "application/octet-stream"),
                               data))
    return body, parts


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        raise _Refused(400, 50109, "The request body contains invalid JSON.") from None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _invalid({"_errors": [{"code": "MODEL_TYPE_CONVERT",
                                     "message": "Only dictionaries may be used in a ModelType"}]})
    return body


def _upload(part: _Part) -> Upload:
    return part.filename, part.content_type, part.data


# --- validation -------------------------------------------------------------------------------


def _invalid(errors: dict[str, Any]) -> _Refused:
    return _Refused(400, 50035, "Invalid Form Body", errors)


def _add(errors: dict[str, Any], path: Sequence[str | int], code: str, message: str) -> None:
    """Put one error at ``path`` in Discord's nested ``errors`` tree."""
    node = errors
    for key in path:
        node = node.setdefault(str(key), {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def _too_long(errors: dict[str, Any], path: Sequence[str | int], value: Any,
              limit: int, *, required: bool = False) -> None:
    if required and not (isinstance(value, str) and value.strip()):
        _add(errors, path, "BASE_TYPE_REQUIRED", "This field is required")
    elif isinstance(value, str) and len(value) > limit:
        _add(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _message_errors(body: dict[str, Any]) -> dict[str, Any]:
    """Discord's form errors for a message body (content, embeds, nonce)."""
    errors: dict[str, Any] = {}
    _too_long(errors, ["content"], body.get("content"), MAX_CONTENT)
    _too_long(errors, ["nonce"], body.get("nonce"), MAX_NONCE)
    embeds = body.get("embeds")
    if isinstance(embeds, list):
        if len(embeds) > MAX_EMBEDS:
            _add(errors, ["embeds"], "BASE_TYPE_MAX_LENGTH",
                 f"Must be {MAX_EMBEDS} or fewer in length.")
        for i, embed in enumerate(embeds):
            _embed_errors(errors, i, embed)
        if sum(_embed_size(e) for e in embeds) > MAX_EMBED_TOTAL:
            _add(errors, ["embeds"], "MAX_EMBED_SIZE_EXCEEDED",
                 f"Embed size exceeds maximum size of {MAX_EMBED_TOTAL}")
    return errors


def _embed_errors(errors: dict[str, Any], index: int, embed: Any) -> None:
    where: list[str | int] = ["embeds", index]
    if not isinstance(embed, dict):
        _add(errors, where, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return
    for key, limit in EMBED_LIMITS.items():
        _too_long(errors, [*where, key], embed.get(key), limit)
    _too_long(errors, [*where, "footer", "text"], _dict(embed.get("footer")).get("text"), 2048)
    _too_long(errors, [*where, "author", "name"], _dict(embed.get("author")).get("name"), 256)
    fields = _list(embed.get("fields"))
    if len(fields) > MAX_FIELDS:
        _add(errors, [*where, "fields"], "BASE_TYPE_MAX_LENGTH",
             f"Must be {MAX_FIELDS} or fewer in length.")
    for j, item in enumerate(fields):
        for key, limit in FIELD_LIMITS.items():
            _too_long(errors, [*where, "fields", j, key], _dict(item).get(key), limit,
                      required=True)


def _embed_size(embed: Any) -> int:
    """The characters Discord counts toward the 6000 limit of all embeds in a message."""
    embed = _dict(embed)
    texts = [embed.get("title"), embed.get("description"),
             _dict(embed.get("footer")).get("text"), _dict(embed.get("author")).get("name")]
    for item in _list(embed.get("fields")):
        texts += [_dict(item).get("name"), _dict(item).get("value")]
    return sum(len(t) for t in texts if isinstance(t, str))


def _empty(content: str, embeds: list[Any], uploads: list[_Part], body: dict[str, Any]) -> bool:
    return not (content or embeds or uploads or body.get("sticker_ids")
                or body.get("components") or body.get("poll"))


COMMAND_NAME = re.compile(r"[-_\w]{1,32}")


def _commands_errors(commands: list[Any]) -> dict[str, Any]:
    errors: dict[str, Any] = {}
    if len(commands) > 100:
        _add(errors, [], "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
    names = [(c.get("type", 1), c.get("name")) for c in commands if isinstance(c, dict)]
    for i, command in enumerate(commands):
        _option_errors(errors, [i], _dict(command), chat_input=_dict(command).get("type", 1) == 1)
        if names.count((_dict(command).get("type", 1), _dict(command).get("name"))) > 1:
            _add(errors, [i, "name"], "APPLICATION_COMMANDS_DUPLICATE_NAME",
                 "Application command names must be unique")
    return errors


def _option_errors(errors: dict[str, Any], where: list[str | int], item: dict[str, Any],
                   *, chat_input: bool = True) -> None:
    """Name/description rules for a command or option, and its options, recursively."""
    name = item.get("name")
    if not isinstance(name, str) or not COMMAND_NAME.fullmatch(name) \
            or (chat_input and name != name.lower()):
        _add(errors, [*where, "name"], "APPLICATION_COMMAND_INVALID_NAME",
             "Command name is invalid")
    if chat_input:
        _too_long(errors, [*where, "description"], item.get("description"), 100, required=True)
    options = _list(item.get("options"))
    if len(options) > 25:
        _add(errors, [*where, "options"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for i, option in enumerate(options):
        _option_errors(errors, [*where, "options", i], _dict(option))


# --- JSON shapes ------------------------------------------------------------------------------


def _rate_limited(limit: RateLimit) -> web.Response:
    """A 429 as Discord sends it; without ``Via`` discord.py takes it for a Cloudflare ban."""
    headers = {
        "Retry-After": str(max(1, math.ceil(limit.retry_after))),
        "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + limit.retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{limit.retry_after:.3f}",
        "X-RateLimit-Scope": "global" if limit.global_ else "user",
        "Via": "1.1 google",
    }
    if limit.global_:
        headers["X-RateLimit-Global"] = "true"
    else:
        headers["X-RateLimit-Bucket"] = "fakebucket0000000000000000000000"
    return _reply({"message": "You are being rate limited.",
                              "retry_after": limit.retry_after, "global": limit.global_},
                             status=429, headers=headers)


def _reply(payload: Any, *, status: int = 200,
           headers: Mapping[str, str] | None = None) -> web.Response:
    """JSON with the bare ``application/json`` Discord sends: discord.py parses nothing else."""
    return web.Response(body=json.dumps(payload).encode(), status=status,
                        headers={**(headers or {}), "Content-Type": "application/json"})


def _user(user_id: str, username: str, *, bot: bool = False) -> dict[str, Any]:
    return {"id": user_id, "username": username, "discriminator": "0", "global_name": None,
            "avatar": None, "public_flags": 0, "bot": bot, "banner": None,
            "accent_color": None, "avatar_decoration_data": None}


def _text_channel(channel_id: str, guild_id: str, where: Where,
                  permissions: str) -> dict[str, Any]:
    return {"id": channel_id, "type": 0, "guild_id": guild_id,
            "name": where.get("channel_name", "status"), "position": 0, "parent_id": None,
            "topic": None, "nsfw": False, "rate_limit_per_user": 0, "last_message_id": None,
            "permission_overwrites": [], "flags": 0, "permissions": permissions}


def _attachment_json(attachment: StoredFile, flags: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": attachment.id, "filename": attachment.filename, "size": len(attachment.data),
        "url": attachment.url, "proxy_url": attachment.url,
        "content_type": attachment.content_type, "ephemeral": bool(flags & EPHEMERAL)}
    if attachment.description is not None:
        data["description"] = attachment.description
    return data


def _option(name: str, value: OptionValue) -> dict[str, Any]:
    """An interaction option; its type follows the Python type (bool before int)."""
    kind = 5 if isinstance(value, bool) else 4 if isinstance(value, int) \
        else 10 if isinstance(value, float) else 3
    return {"name": name, "type": kind, "value": value}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
