"""A loopback fake of Slack: the Web API, upload and response URLs, and the Socket Mode link.

The real ``slack_sdk`` ``AsyncWebClient`` (pointed at ``api_url``), its ``SocketModeClient`` and
Bolt's ``AsyncSocketModeHandler`` talk to it over real HTTP and a real websocket. Arguments are
read the way the SDK sends them (JSON body, form body or query string, merged); ``calls``
records them as they came on the wire (``files`` of ``files.completeUploadExternal`` stays the
JSON string the SDK sends). Answers use Slack's error codes; ``fail`` queues refusals.

    async with FakeSlack() as slack:
        slack.users["UADMIN"] = {"is_admin": True}
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, retry_handlers=[])
        await client.chat_postMessage(channel="C1", text="hi")
        slack.fail("chat.postMessage", 429)  # the next post is rate limited, then service resumes
        assert slack.messages[0].text == "hi"

        handler = AsyncSocketModeHandler(app, slack.app_token, web_client=client)
        await handler.connect_async()
        await asyncio.wait_for(slack.socket_connected.wait(), 5)
        payload = slash_payload("status", response_url=slack.response_url())
        ack = await slack.push_slash_command(payload)  # {"envelope_id": ..., "payload": ...}
        await handler.close_async()
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

from aiohttp import WSMsgType, web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.loopback import Loopback

Method = Callable[[dict[str, Any]], Awaitable[web.StreamResponse]]

API_PREFIX = "/api/"
APP_ID = "A0TEST"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TS_BASE = 1_700_000_000

MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TABLE_ROWS = 100
MAX_TABLE_CELLS = 20


@dataclass(frozen=True, slots=True)
class Call:
    """A Web API call that passed auth: the method and its merged arguments as sent."""

    method: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Posted:
    """An accepted ``chat.postMessage``."""

    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[Any]
    attachments: list[Any]


@dataclass(frozen=True, slots=True)
class Updated:
    """An accepted ``chat.update``."""

    channel: str
    ts: str
    text: str
    blocks: list[Any]
    attachments: list[Any]


@dataclass(frozen=True, slots=True)
class Upload:
    """A file shared by ``files.completeUploadExternal``, with the bytes posted to its URL."""

    file_id: str
    filename: str
    title: str
    alt_txt: str | None
    content: bytes
    channel: str | None
    thread_ts: str | None
    initial_comment: str | None


@dataclass(frozen=True, slots=True)
class Responded:
    """A JSON body POSTed to a response URL."""

    path: str
    body: dict[str, Any]


@dataclass(slots=True)
class _PendingFile:
    filename: str
    length: int | None
    alt_txt: str | None
    content: bytes | None = None


@dataclass(slots=True)
class _Stored:
    """Per-server mutable state not exposed as attributes of ``FakeSlack``."""

    files: dict[str, _PendingFile] = field(default_factory=dict)
    posted: set[tuple[str, str]] = field(default_factory=set)
    tickets: set[str] = field(default_factory=set)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    acks: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)


class FakeSlack(Loopback):
    """Slack on 127.0.0.1: ``async with FakeSlack() as slack:`` then point the SDK at it."""

    def __init__(self, *, bot_token: str = "xoxb-test-token",
                 app_token: str = "xapp-1-test-token", team_id: str = "T0TEST") -> None:
        super().__init__()
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.users: dict[str, dict[str, Any]] = {}
        self.missing_channels: set[str] = set()
        self.calls: list[Call] = []
        self.messages: list[Posted] = []
        self.updates: list[Updated] = []
        self.uploads: list[Upload] = []
        self.responses: list[Responded] = []
        self.retry_after = 1
        self.socket_connected = asyncio.Event()
        self._failures: defaultdict[str, deque[int | str]] = defaultdict(deque)
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._state = _Stored()
        self._methods: dict[str, Method] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "users.info": self._users_info,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "apps.connections.open": self._connections_open,
        }
        self.route("GET", "/link/", self._link)

    @property
    def api_url(self) -> str:
        """The ``base_url`` for ``AsyncWebClient`` (ends with a slash, as the SDK needs)."""
        return f"{self.url}{API_PREFIX}"

    async def __aenter__(self) -> FakeSlack:
        await super().__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.closing.set()
        for ws in list(self._state.sockets):
            with suppress(Exception):
                await asyncio.wait_for(ws.close(code=1001, message=b"server closing"), 1)
        await super().__aexit__(exc_type, exc, tb)

    # --- test controls ------------------------------------------------------------------------

    def response_url(self) -> str:
        """A fresh response URL; JSON POSTed to it lands in ``responses``."""
        path = f"/respond/{next(self._ids)}"
        self.route("POST", path, self._respond)
        return f"{self.url}{path}"

    def fail(self, method: str, *answers: int | str) -> None:
        """Queue one refusal per answer for the next calls to ``method``.

        ``429`` -> HTTP 429 + ``Retry-After: retry_after``, ``ratelimited``; another int -> that
        HTTP status with a JSON error body; a str -> HTTP 200 ``{"ok": false, "error": str}``.
        """
        self._failures[method].extend(answers)

    def method_calls(self, method: str) -> list[Call]:
        """The recorded calls to one Web API method, in order."""
        return [call for call in self.calls if call.method == method]

    async def push_slash_command(self, payload: dict[str, Any],
                                 timeout: float = 5.0,  # noqa: ASYNC109 (the agreed interface)
                                 ) -> dict[str, Any]:
        """Send a ``slash_commands`` envelope to the newest socket; return the client's ack."""
        async with asyncio.timeout(timeout):
            await self.socket_connected.wait()
            envelope_id = str(uuid.uuid4())
            acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._state.acks[envelope_id] = acked
            try:
                ws = next((s for s in reversed(self._state.sockets) if not s.closed), None)
                if ws is None:
                    raise ConnectionError("no Socket Mode client is connected")
                await ws.send_json({"envelope_id": envelope_id, "type": "slash_commands",
                                    "accepts_response_payload": True, "payload": payload})
                return await acked
            finally:
                self._state.acks.pop(envelope_id, None)

    # --- dispatch -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        # Any /api/<method> path is served (unknown methods answer ``unknown_method``).
        if request.path.startswith(API_PREFIX):
            self.routes.setdefault((request.method, request.path), self._api)
        return await super()._dispatch(request)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.path.removeprefix(API_PREFIX)
        args = await _read_args(request)  # None: a malformed JSON body
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        token = token or str((args or {}).get("token") or "")
        wanted = self.app_token if method == "apps.connections.open" else self.bot_token
        if token != wanted:
            # What Slack answers: no token, the other kind of token, or an unknown one.
            error = ("not_authed" if not token else "not_allowed_token_type"
                     if token in (self.app_token, self.bot_token) else "invalid_auth")
            return _error(error)
        if args is None:
            return _error("invalid_json")
        self.calls.append(Call(method, args))
        if self._failures[method]:
            return self._refusal(self._failures[method].popleft())
        handler = self._methods.get(method)
        if handler is None:
            return _error("unknown_method")
        return await handler(args)

    def _refusal(self, answer: int | str) -> web.StreamResponse:
        if isinstance(answer, str):
            return _error(answer)
        if answer == 429:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        error = ("internal_error" if answer == 500 else "service_unavailable" if answer > 500
                 else "invalid_request")
        return web.json_response({"ok": False, "error": error}, status=answer)

    # --- Web API methods ----------------------------------------------------------------------

    async def _auth_test(self, args: dict[str, Any]) -> web.StreamResponse:
        return _ok({"url": "https://soratest.slack.com/", "team": "Sora Test",
                    "user": "sora-bot", "team_id": self.team_id, "user_id": BOT_USER_ID,
                    "bot_id": BOT_ID, "is_enterprise_install": False})

    async def _post_message(self, args: dict[str, Any]) -> web.StreamResponse:
        channel = str(args.get("channel") or "")
        if not channel or channel in self.missing_channels:
            return _error("channel_not_found")
        content = _valid_content(args)
        if isinstance(content, web.Response):
            return content
        text, blocks, attachments = content
        n = next(self._ts)
        ts = f"{TS_BASE + n * 100 // 1_000_000}.{n * 100 % 1_000_000:06d}"
        thread_ts = str(args["thread_ts"]) if args.get("thread_ts") else None
        self._state.posted.add((channel, ts))
        self.messages.append(Posted(channel, ts, thread_ts, text, blocks, attachments))
        message = _message(ts, text, blocks, attachments)
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        return _ok({"channel": channel, "ts": ts, "message": message})

    async def _update(self, args: dict[str, Any]) -> web.StreamResponse:
        channel = str(args.get("channel") or "")
        if not channel or channel in self.missing_channels:
            return _error("channel_not_found")
        ts = str(args.get("ts") or "")
        if (channel, ts) not in self._state.posted:
            return _error("message_not_found")
        content = _valid_content(args)
        if isinstance(content, web.Response):
            return content
        text, blocks, attachments = content
        self.updates.append(Updated(channel, ts, text, blocks, attachments))
        return _ok({"channel": channel, "ts": ts, "text": text,
                    "message": _message(ts, text, blocks, attachments)})

    async def _users_info(self, args: dict[str, Any]) -> web.StreamResponse:
        user_id = str(args.get("user") or "")
        if user_id not in self.users:
            return _error("user_not_found")
        user: dict[str, Any] = {
            "id": user_id, "team_id": self.team_id, "name": user_id.lower(), "deleted": False,
            "is_admin": False, "is_owner": False, "is_primary_owner": False,
            "is_restricted": False, "is_ultra_restricted": False, "is_bot": False,
            "is_app_user": False}
        user.update(self.users[user_id])
        return _ok({"user": user})

    async def _get_upload_url(self, args: dict[str, Any]) -> web.StreamResponse:
        filename = str(args.get("filename") or "")
        length = str(args.get("length") or "")
        if not filename or not length.isdigit():
            return _error("invalid_arguments")
        file_id = f"F{next(self._ids):08d}"
        alt_txt = str(args["alt_txt"]) if args.get("alt_txt") else None
        self._state.files[file_id] = _PendingFile(filename, int(length), alt_txt)
        path = f"/upload/{file_id}"
        self.route("POST", path, self._upload)
        return _ok({"upload_url": f"{self.url}{path}", "file_id": file_id})

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        # The SDK posts the raw bytes (aiohttp ``data=bytes``: application/octet-stream);
        # Slack also takes a multipart form with the file in any field.
        pending = self._state.files[request.path.rsplit("/", 1)[1]]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            parts = [v for v in form.values() if isinstance(v, web.FileField)]
            content = parts[0].file.read() if parts else b""
        else:
            content = await request.read()
        pending.content = content
        return web.Response(text=f"OK - {len(content)}", content_type="text/plain")

    async def _complete_upload(self, args: dict[str, Any]) -> web.StreamResponse:
        raw = args.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            return _error("invalid_arguments")
        if not isinstance(files, list) or not files:
            return _error("invalid_arguments")
        channels = [c for c in str(args.get("channels") or "").split(",") if c]
        if args.get("channel_id"):
            channels.insert(0, str(args["channel_id"]))
        if any(c in self.missing_channels for c in channels):
            return _error("channel_not_found")
        done: list[Upload] = []
        for item in files:
            file_id = str(item.get("id", "")) if isinstance(item, dict) else ""
            found = self._state.files.get(file_id)
            if found is None or found.content is None:
                return _error("file_not_found")
            done.append(Upload(
                file_id, found.filename, str(item.get("title") or found.filename),
                found.alt_txt, found.content, channels[0] if channels else None,
                _opt(args, "thread_ts"), _opt(args, "initial_comment")))
        self.uploads.extend(done)
        answer = [{"id": u.file_id, "title": u.title, "name": u.filename, "size": len(u.content)}
                  for u in done]
        return _ok({"files": answer})

    async def _connections_open(self, args: dict[str, Any]) -> web.StreamResponse:
        ticket = str(uuid.uuid4())
        self._state.tickets.add(ticket)
        ws_url = self.url.replace("http://", "ws://", 1)
        return _ok({"url": f"{ws_url}/link/?ticket={ticket}"})

    # --- response URLs and the Socket Mode link -----------------------------------------------

    async def _respond(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        self.responses.append(Responded(request.path, body))
        return web.Response(text="ok")

    async def _link(self, request: web.Request) -> web.StreamResponse:
        """The websocket a Socket Mode client opens (with a ticket from connections.open)."""
        if request.query.get("ticket") not in self._state.tickets:
            return web.Response(status=401, text="invalid ticket")
        ws = web.WebSocketResponse()  # autoping: answers the SDK's pings with pongs
        await ws.prepare(request)
        self._state.sockets.append(ws)
        await ws.send_json({
            "type": "hello", "num_connections": len(self._state.sockets),
            "connection_info": {"app_id": APP_ID},
            "debug_info": {"host": "applink-fake", "build_number": 1,
                           "approximate_connection_time": 18060}})
        self.socket_connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                with suppress(ValueError):
                    ack = json.loads(msg.data)
                    waiter = self._state.acks.get(str(ack.get("envelope_id")))
                    if waiter is not None and not waiter.done():
                        waiter.set_result(ack)
        finally:
            self._state.sockets.remove(ws)
            if not self._state.sockets:
                self.socket_connected.clear()
        return ws


# --- request parsing and answers -------------------------------------------------------------


async def _read_args(request: web.Request) -> dict[str, Any] | None:
    """Query string, then form or JSON body, merged (the SDK uses all three); None: bad JSON."""
    args: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.read()
        if body.strip():
            try:
                parsed = json.loads(body)
            except ValueError:
                return None
            if not isinstance(parsed, dict):
                return None
            args.update(parsed)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        for key, value in (await request.post()).items():
            args[key] = value.file.read() if isinstance(value, web.FileField) else value
    return args


def _ok(payload: dict[str, Any]) -> web.Response:
    return web.json_response({"ok": True, **payload})


def _error(error: str, detail: str | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error": error}
    if detail is not None:
        body["errors"] = [detail]
        body["response_metadata"] = {"messages": [f"[ERROR] {detail}"]}
    return web.json_response(body)


def _opt(args: dict[str, Any], key: str) -> str | None:
    value = args.get(key)
    return str(value) if value else None


def _json_list(value: Any) -> list[Any]:
    """``blocks``/``attachments`` arrive as lists (JSON body) or JSON strings (form/query)."""
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            return [value]  # not a list: the block check rejects it
    return value if isinstance(value, list) else [] if value is None else [value]


def _content(args: dict[str, Any]) -> tuple[str, list[Any], list[Any]]:
    return (str(args.get("text") or ""), _json_list(args.get("blocks")),
            _json_list(args.get("attachments")))


def _valid_content(args: dict[str, Any]
                   ) -> tuple[str, list[Any], list[Any]] | web.Response:
    """The text, blocks and attachments of a post or update, or Slack's refusal of them."""
    text, blocks, attachments = _content(args)
    if not (text or blocks or attachments):
        return _error("no_text")
    problem = _block_problem(blocks, attachments)
    if problem is not None:
        return _error(*problem)
    return text, blocks, attachments


def _message(ts: str, text: str, blocks: list[Any], attachments: list[Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID,
                               "app_id": APP_ID, "text": text, "ts": ts}
    if blocks:
        message["blocks"] = blocks
    if attachments:
        message["attachments"] = attachments
    return message


# --- Block Kit checks -------------------------------------------------------------------------


def _block_problem(blocks: list[Any],
                   attachments: list[Any]) -> tuple[str, str] | None:
    """``(error, detail)`` for blocks Slack refuses (top level and inside attachments)."""
    groups = [blocks] + [_json_list(a.get("blocks")) if isinstance(a, dict) else []
                         for a in attachments]
    tables = 0
    for where, group in enumerate(groups):
        if len(group) > MAX_BLOCKS:
            return "invalid_blocks", f"more than {MAX_BLOCKS} items [json-pointer:/blocks]"
        for i, block in enumerate(group):
            pointer = f"/blocks/{i}" if where == 0 else f"/attachments/{where - 1}/blocks/{i}"
            if isinstance(block, dict) and block.get("type") == "table":
                tables += 1
            problem = _single_block_problem(block)
            if problem is not None:
                return "invalid_blocks", f"{problem} [json-pointer:{pointer}]"
    if tables > 1:
        return "only_one_table_allowed", "only one table block is allowed per message"
    return None


def _text_len(obj: Any) -> int | None:
    """The length of a text object's ``text``, or None if it is not a text object."""
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        return None
    text = obj.get("text")
    return len(text) if isinstance(text, str) else None


def _single_block_problem(block: Any) -> str | None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return "block must be an object with a type"
    kind = block["type"]
    if kind == "header":
        text = block.get("text")
        size = _text_len(text)
        if size is None or not isinstance(text, dict) or text.get("type") != "plain_text":
            return "header text must be a plain_text object"
        if size > MAX_HEADER_TEXT:
            return f"must be less than {MAX_HEADER_TEXT + 1} characters"
    elif kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            return "must provide text or fields"
        if text is not None:
            size = _text_len(text)
            if size is None or size > MAX_SECTION_TEXT:
                return f"text must be a text object under {MAX_SECTION_TEXT + 1} characters"
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
                return f"fields must have at most {MAX_FIELDS} items"
            for item in fields:
                size = _text_len(item)
                if size is None or size > MAX_FIELD_TEXT:
                    return f"field must be a text object under {MAX_FIELD_TEXT + 1} characters"
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            return f"context must have 1 to {MAX_CONTEXT_ELEMENTS} elements"
    elif kind == "table":
        rows = block.get("rows")
        if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_TABLE_ROWS:
            return f"table must have 1 to {MAX_TABLE_ROWS} rows"
        for row in rows:
            if not isinstance(row, list) or len(row) > MAX_TABLE_CELLS:
                return f"table row must have at most {MAX_TABLE_CELLS} cells"
    return None


# --- slash commands ---------------------------------------------------------------------------


def slash_payload(text: str, *, user_id: str = "UADMIN", channel_id: str = "C0ALERTS",
                  team_id: str = "T0TEST", response_url: str, command: str = "/sora",
                  user_name: str = "ada") -> dict[str, str]:
    """The fields of a slash command as Slack sends them (HTTP form or Socket Mode payload)."""
    trigger = f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
    return {
        "token": "fake-verification-token", "team_id": team_id, "team_domain": "soratest",
        "channel_id": channel_id, "channel_name": channel_id.lower(), "user_id": user_id,
        "user_name": user_name, "command": command, "text": text, "api_app_id": APP_ID,
        "is_enterprise_install": "false", "response_url": response_url, "trigger_id": trigger,
    }


def signed_slash_command(signing_secret: str, text: str, *, user_id: str = "UADMIN",
                         channel_id: str = "C0ALERTS", team_id: str = "T0TEST",
                         response_url: str, command: str = "/sora",
                         timestamp: int | None = None,
                         user_name: str = "ada") -> tuple[bytes, dict[str, str]]:
    """A form-encoded slash-command body and its signed headers (timestamp defaults to now)."""
    body = urlencode(slash_payload(
        text, user_id=user_id, channel_id=channel_id, team_id=team_id,
        response_url=response_url, command=command, user_name=user_name)).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    return body, {"Content-Type": "application/x-www-form-urlencoded",
                  "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
