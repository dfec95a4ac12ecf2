"""Slack: the ``ChatPort`` over the Web API, and ``/sora`` through Bolt.

``SlackChat`` posts and edits Block Kit messages (``adapters.slack_blocks``) and uploads chart
images; what Slack refuses becomes a ``DeliveryError`` the outbox understands. ``SlackCommands``
is the Bolt ``AsyncApp`` with the ``/sora`` handler: it acks at once, runs the core command and
answers through the response URL. ``SlackAdapter`` wires both from ``Settings``, in Socket Mode
(app token) or HTTP mode (signing secret; ``POST /slack/events`` on the bot's own server).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack_blocks import render
from bot.chat import ChatPort, ChatStartError, DeliveryError, MessageRef
from bot.commands import Commands, Incoming
from bot.config import Settings
from bot.messages import Attachment, Message
from bot.server import Route

log = logging.getLogger(__name__)

COMMAND = "/sora"
EVENTS_PATH = "/slack/events"
DEFAULT_API_URL = "https://slack.com/api/"
# The Web API methods this adapter calls and the bot scope each needs; manifest.yml asks for
# exactly these plus ``commands`` (the slash command) and ``chat:write.public`` (post in public
# channels the bot was not invited to).
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
    "users.info": "users:read",
}
SCOPES = frozenset({"commands", "chat:write.public", *METHOD_SCOPES.values()})
# Errors no retry can fix: the outbox drops the post at once (and logs why).
PERMANENT = frozenset({
    "channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "not_authed",
    "account_inactive", "token_revoked", "token_expired", "no_permission", "missing_scope",
    "invalid_blocks", "invalid_attachments", "msg_too_long", "no_text", "restricted_action",
    "message_not_found", "cant_update_message", "edit_window_closed", "invalid_arguments",
    "team_access_not_granted", "ekm_access_denied", "org_login_required",
    "not_allowed_token_type",
})
ADMIN_TTL = 60.0  # seconds an answer of users.info counts, so a demoted admin loses rights soon
CONNECT_WAIT = 10.0  # seconds `run` waits for Socket Mode before going on (it keeps trying)


def make_web_client(token: str, *, base_url: str | None = None) -> AsyncWebClient:
    """A Web API client that retries a 429 once itself (after Retry-After); the outbox retries
    the rest. ``base_url``: ``SLACK_API_URL`` (proxies, tests)."""
    client = AsyncWebClient(token=token, base_url=base_url or DEFAULT_API_URL, timeout=15)
    client.retry_handlers = [AsyncConnectionErrorRetryHandler(),
                             AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    return client


def delivery_error(error: SlackApiError, method: str) -> DeliveryError:
    """What Slack said, as the outbox needs it: wait how long, or give up."""
    response = error.response
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or f"HTTP {response.status_code}")
    if response.status_code == 429:
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        try:
            wait = float(headers.get("retry-after", 1))
        except (TypeError, ValueError):
            wait = 1.0
        return DeliveryError(f"Slack rate-limited {method}", retry_after=wait)
    return DeliveryError(f"Slack refused {method}: {code}", permanent=code in PERMANENT)


class SlackChat:
    """``ChatPort`` for Slack. Slack has no idempotency key, so ``key`` is not sent."""

    platform = "slack"

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        thread_ts = reply_to.id if reply_to is not None else None
        first: MessageRef | None = None
        for page in render(message):
            data = await self._call("chat.postMessage", self._client.chat_postMessage,
                                    channel=channel, thread_ts=thread_ts, unfurl_links=False,
                                    unfurl_media=False, **page)
            if first is None:
                first = MessageRef(self.platform, str(data.get("channel") or channel),
                                   str(data["ts"]))
        assert first is not None  # render() always yields a page
        for attachment in message.attachments:
            await self._upload(first, thread_ts, message, attachment)
        return first

    async def edit(self, ref: MessageRef, message: Message) -> None:
        page = render(message)[0]  # progress edits are short; a long one keeps its first page
        await self._call("chat.update", self._client.chat_update, channel=ref.channel,
                         ts=ref.id, **page)

    async def _upload(self, ref: MessageRef, thread_ts: str | None, message: Message,
                      attachment: Attachment) -> None:
        """Post the image right under the message. The message is already out, so a failed
        upload is not retried (that would post the message twice): it is noted on the message."""
        try:
            await self._client.files_upload_v2(
                channel=ref.channel, thread_ts=thread_ts, content=attachment.content,
                filename=attachment.filename, title=attachment.alt or attachment.filename,
                alt_txt=attachment.alt or None)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as e:
            why = delivery_error(e, "files.upload") if isinstance(e, SlackApiError) else e
            log.warning("could not upload %s to %s: %s", attachment.filename, ref.channel, why)
            note = f"📎 {attachment.filename} could not be attached ({why})"
            context = f"{message.context} · {note}" if message.context else note
            with suppress(DeliveryError):
                await self.edit(ref, replace(message, context=context, attachments=()))

    async def _call(self, method: str, fn: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
        try:
            response = await fn(**kwargs)
        except SlackApiError as e:
            raise delivery_error(e, method) from None
        except (aiohttp.ClientError, TimeoutError) as e:
            raise DeliveryError(f"cannot reach Slack for {method}: {type(e).__name__}") from None
        data: dict[str, Any] = response.data
        return data


class SlackCommands:
    """The Bolt app: ``/sora`` acked at once, answered through ``respond`` (the response URL).

    Answers marked ephemeral are seen only by the user who typed the command; others are posted
    in the channel. Workspace admins and owners (``users.info``) count as admins.
    """

    def __init__(self, *, client: AsyncWebClient, commands: Commands, signing_secret: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        bolt_log = logging.getLogger("adapters.slack.bolt")
        bolt_log.addFilter(_same_token_warning)
        self.app = AsyncApp(client=client, signing_secret=signing_secret, logger=bolt_log,
                            request_verification_enabled=bool(signing_secret),
                            process_before_response=False)
        self.app.command(COMMAND)(self._on_command)
        self._client = client
        self._commands = commands
        self._clock = clock
        self._admins: dict[tuple[str, str], tuple[bool, float]] = {}

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """``POST /slack/events``: Bolt verifies the signature (401 when bad or stale)."""
        bolt_response = await self.app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any],
                          respond: AsyncRespond) -> None:
        await ack()
        text = str(body.get("text") or "")
        name = (text.split() or ["help"])[0].lower()
        team, user = str(body.get("team_id") or ""), str(body.get("user_id") or "")
        incoming = Incoming(platform="slack", workspace=team,
                            channel=str(body.get("channel_id") or ""), user=user, text=text,
                            is_admin=lambda: self._is_admin(team, user))
        message = await self._commands.handle(incoming)
        kind = "ephemeral" if message.ephemeral else "in_channel"
        for page in render(message):
            try:  # a response URL takes five answers within 30 minutes
                answer = await respond(response_type=kind, replace_original=False, **page)
                problem = None if answer.status_code == 200 else f"HTTP {answer.status_code}"
            except (aiohttp.ClientError, TimeoutError) as e:
                problem = type(e).__name__
            if problem:
                log.warning("could not answer /sora %s through the response URL: %s", name,
                            problem)
                return

    async def _is_admin(self, team: str, user: str) -> bool:
        now = self._clock()
        cached = self._admins.get((team, user))
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            response = await self._client.users_info(user=user)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as e:
            log.warning("users.info failed for the admin check of %s: %s", user,
                        delivery_error(e, "users.info") if isinstance(e, SlackApiError) else e)
            return False  # not cached: the next try asks again
        info = response.get("user") or {}
        admin = any(bool(info.get(k)) for k in ("is_admin", "is_owner", "is_primary_owner"))
        self._admins[(team, user)] = (admin, now + ADMIN_TTL)
        return admin


def _same_token_warning(record: logging.LogRecord) -> bool:
    """Bolt warns that ``SLACK_BOT_TOKEN`` is unused when a client is given; it is the same."""
    return "`token` will be unused" not in record.getMessage()


class SlackAdapter:
    """Everything Slack for ``sora-bot run``: the chat port, the command app and its transport.

        adapter = SlackAdapter(settings)
        async with open_runtime(settings, chats=[adapter.chat]) as rt:
            async with adapter.running(rt.commands) as routes:
                await run_forever(rt, stop=stop, routes=routes)
    """

    def __init__(self, settings: Settings, *, connect_wait: float = CONNECT_WAIT) -> None:
        """``connect_wait``: how long ``running`` waits for Socket Mode before going on without
        it (it keeps trying in the background)."""
        if settings.slack_bot_token is None or settings.slack_mode is None:
            raise ValueError("Slack is not configured")
        self._settings = settings
        self._connect_wait = connect_wait
        self.client = make_web_client(settings.slack_bot_token.get_secret_value(),
                                      base_url=settings.slack_api_url)
        self.chat: ChatPort = SlackChat(self.client)
        self.mode = settings.slack_mode

    @asynccontextmanager
    async def running(self, commands: Commands) -> AsyncIterator[list[Route]]:
        """Check the bot token, then connect Socket Mode or hand out the HTTP route."""
        s = self._settings
        session = aiohttp.ClientSession()  # one connection pool while running
        self.client.session = session
        try:
            info = await self._check("auth.test", "SLACK_BOT_TOKEN", "copy the Bot User OAuth "
                                     "Token (xoxb-…) of the installed app")
            if info is not None:
                log.info("Slack: connected to %s as %s", info.get("team"), info.get("user"))
            secret = s.slack_signing_secret.get_secret_value() if s.slack_signing_secret else ""
            app = SlackCommands(client=self.client, commands=commands, signing_secret=secret)
            if s.slack_app_token is None:
                log.info("Slack HTTP mode: /sora arrives at POST %s", EVENTS_PATH)
                yield [Route("POST", EVENTS_PATH, app.handle_http)]
                return
            app_token = s.slack_app_token.get_secret_value()
            await self._check("apps.connections.open", "SLACK_APP_TOKEN", "it needs the "
                              "connections:write scope and Socket Mode enabled", token=app_token)
            handler = AsyncSocketModeHandler(app.app, app_token, web_client=self.client,
                                             logger=app.app.logger)
            # The SDK keeps retrying until it is connected (and reconnects later by itself).
            connecting = asyncio.create_task(handler.connect_async())
            await asyncio.wait([connecting], timeout=self._connect_wait)
            if connecting.done():
                log.info("Slack Socket Mode connected: /sora arrives over the websocket")
            else:
                log.warning("Slack Socket Mode still connecting; retrying in the background")
            try:
                yield []
            finally:
                connecting.cancel()
                with suppress(Exception):
                    await handler.close_async()
        finally:
            self.client.session = None  # later calls (if any) open their own connection
            await session.close()

    async def _check(self, method: str, variable: str, hint: str, **kwargs: Any
                     ) -> dict[str, Any] | None:
        """Call ``method`` once at start: a token Slack refuses is a clear error now; a Slack
        that does not answer is not (alerts wait in the outbox, Socket Mode keeps trying)."""
        try:
            response = await self.client.api_call(method, http_verb="POST", params=kwargs)
        except SlackApiError as e:
            error = delivery_error(e, method)
            if error.permanent:
                said = str(error).removeprefix("Slack refused ")
                raise ChatStartError(f"Slack refused {variable} ({said}); {hint}") from None
            log.warning("Slack did not answer %s (%s); carrying on", method, error)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("Slack is not reachable yet (%s); carrying on", e)
        else:
            return response.data if isinstance(response.data, dict) else {}
        return None
