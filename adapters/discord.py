"""Discord: the ``ChatPort`` over the REST API, and the ``/sora`` command group.

``DiscordChat`` posts and edits embeds (``adapters.discord_embeds``) through discord.py, with the
chart as an attached file, recoveries as replies and the outbox key as the message ``nonce``
(``enforce_nonce``), so a post retried after a crash appears once. Short rate limits are
discord.py's to wait out; longer ones and every refusal go back to the outbox as a
``DeliveryError``. ``DiscordCommands`` is the ``app_commands`` tree: one ``/sora`` group whose typed
options are turned into the core command text. ``DiscordAdapter`` logs in, syncs the commands
(globally, or to ``DISCORD_GUILD_ID`` at once) and keeps the gateway connected.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import shlex
from collections.abc import AsyncIterator, Awaitable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import replace
from functools import cache
from typing import Any, TypeVar
from zoneinfo import available_timezones

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.app_commands import Choice
from discord.gateway import DiscordWebSocket

from adapters.discord_embeds import Page, render
from bot.chat import ChatPort, ChatStartError, DeliveryError, MessageRef
from bot.commands import MAX_REASON, PREFER, VIDEO_SECONDS, VIDEO_SIZES, Commands, Incoming
from bot.config import Settings
from bot.messages import Message, Severity
from bot.server import Route

log = logging.getLogger(__name__)

PLATFORM = "discord"
# What alerts need in a channel: see it, post, embed, attach the digest chart, and read the
# history (replying to an outage alert needs it). The invite asks for exactly these (117760),
# with the scopes `bot applications.commands`.
POST_PERMISSIONS = {"view_channel": "View Channel", "send_messages": "Send Messages",
                    "embed_links": "Embed Links", "attach_files": "Attach Files",
                    "read_message_history": "Read Message History"}
PERMISSIONS = discord.Permissions(**dict.fromkeys(POST_PERMISSIONS, True)).value
INVITE_URL = ("https://discord.com/oauth2/authorize?client_id={app_id}"
              "&scope=bot+applications.commands&permissions=" + str(PERMISSIONS))
MAX_UPLOAD = 10 * 1024 * 1024  # bytes a bot may attach to one message
MAX_RATE_LIMIT_WAIT = 30.0  # longer rate limits go back to the outbox instead of blocking a send
DEFER_AFTER = 1.5  # seconds before a slow command is deferred (Discord allows 3 to answer)
CONNECT_WAIT = 10.0  # seconds `run` waits for the gateway before going on (it keeps trying)
NO_MENTIONS = discord.AllowedMentions.none()
PERMANENT = frozenset({400, 401, 403, 404, 405, 413})

T = TypeVar("T")


def make_client() -> discord.Client:
    """A client with the one intent it needs (servers and their channels; nothing privileged)
    whose long rate-limit waits raise instead of sleeping, so the outbox can reschedule them.
    It reads nothing from the server cache, so it is ready soon after the gateway's READY."""
    discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice here
    return discord.Client(intents=discord.Intents(guilds=True), guild_ready_timeout=0.5,
                          max_ratelimit_timeout=MAX_RATE_LIMIT_WAIT)


@contextmanager
def api_base(url: str | None) -> Iterator[None]:
    """Point discord.py's REST calls at ``url`` (``DISCORD_API_URL``) while inside; discord.py
    keeps the base in a class attribute, so this is process-wide and restored on exit."""
    saved_base, saved_gateway = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if url:
        discord.http.Route.BASE = url.rstrip("/")
    try:
        yield
    finally:
        discord.http.Route.BASE = saved_base
        DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway


def delivery_error(error: discord.HTTPException | discord.RateLimited, what: str
                   ) -> DeliveryError:
    """What Discord said, as the outbox needs it: wait how long, or give up."""
    if isinstance(error, discord.RateLimited):
        return DeliveryError(f"Discord rate-limited {what}", retry_after=error.retry_after)
    status = error.status
    if status == 429:
        headers = error.response.headers
        try:
            wait = float(headers.get("Retry-After", 1))
        except ValueError:
            wait = 1.0
        scope = (headers.get("X-RateLimit-Scope") or "").lower()
        return DeliveryError(f"Discord rate-limited {what}", retry_after=wait,
                             global_limit=scope == "global"
                             or headers.get("X-RateLimit-Global") == "true")
    said = f"{status} {error.code}: {error.text}"[:200] if error.code else str(status)
    return DeliveryError(f"Discord refused {what}: {said}", permanent=status in PERMANENT)


async def _call(what: str, action: Awaitable[T]) -> T:
    try:
        return await action
    except (discord.HTTPException, discord.RateLimited) as e:
        raise delivery_error(e, what) from None
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise DeliveryError(f"cannot reach Discord for {what}: {type(e).__name__}") from None


def _snowflake(value: str, what: str) -> int:
    if not value.isdigit():
        raise DeliveryError(f"{what} {value!r} is not a Discord id", permanent=True)
    return int(value)


def _nonce(key: str, page: int) -> str:
    """Discord takes nonces of at most 25 characters: a digest of the outbox key and page."""
    return hashlib.blake2b(f"{key}#{page}".encode(), digest_size=12).hexdigest()


def _files(message: Message) -> tuple[list[discord.File], str | None, Message]:
    """The attachments as files, the first image's name (shown in the embed), and the message
    with a note for each file too large to attach."""
    files, notes, image = [], [], None
    for a in message.attachments:
        if len(a.content) > MAX_UPLOAD:
            notes.append(f"📎 {a.filename} is too large to attach here "
                         f"({len(a.content) / 1e6:.1f} MB)")
            continue
        files.append(discord.File(io.BytesIO(a.content), filename=a.filename,
                                  description=a.alt or None))
        if image is None and a.mime.startswith("image/"):
            image = a.filename
    if notes:
        context = " · ".join(filter(None, [message.context, *notes]))
        message = replace(message, context=context)
    return files, image, message


def _pages(message: Message) -> tuple[list[Page], list[discord.File]]:
    files, image, message = _files(message)
    return render(message, image=image), files


class DiscordChat:
    """``ChatPort`` for Discord: channel ids and message ids are snowflakes (digits)."""

    platform = PLATFORM

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        target = self._channel(channel)
        pages, files = _pages(message)
        first: MessageRef | None = None
        for n, page in enumerate(pages):
            extra: dict[str, Any] = {}
            if n == 0 and files:
                extra["files"] = files
            if n == 0 and reply_to is not None:
                extra["reference"] = discord.MessageReference(
                    message_id=_snowflake(reply_to.id, "message"),
                    channel_id=_snowflake(reply_to.channel, "channel"), fail_if_not_exists=False)
            if key is not None:
                extra["nonce"] = _nonce(key, n)
            sent = await _call("a post", target.send(content=page.content, embeds=page.embeds,
                                                     allowed_mentions=NO_MENTIONS, **extra))
            if first is None:
                first = MessageRef(self.platform, channel, str(sent.id))
        assert first is not None  # render() always yields a page
        return first

    async def edit(self, ref: MessageRef, message: Message) -> None:
        page = render(message)[0]  # progress edits are short; a long one keeps its first page
        target = self._channel(ref.channel).get_partial_message(_snowflake(ref.id, "message"))
        await _call("an edit", target.edit(content=page.content, embeds=page.embeds,
                                           allowed_mentions=NO_MENTIONS))

    def _channel(self, channel: str) -> discord.PartialMessageable:
        if self._client.user is None or self._client.is_closed():
            raise DeliveryError("not logged in to Discord (yet)")
        return self._client.get_partial_messageable(_snowflake(channel, "channel"))


# --- /sora -----------------------------------------------------------------------------------

def command_text(name: str, args: Sequence[str] = (), **options: object) -> str:
    """Typed options as the core command text: ``generate --seconds 8 -- 'a red fox'``.

    Free text goes after ``--`` and is quoted, so nothing a user typed is read as an option."""
    words = [name]
    for flag, value in options.items():
        if value is not None and value is not False:
            words += [f"--{flag}", str(value)]
    if args:
        words += ["--", *args]
    return " ".join(shlex.quote(w) for w in words)


def _choices(values: Sequence[str], current: str, *, names: dict[str, str] | None = None
             ) -> list[Choice[str]]:
    """Up to 25 suggestions: values starting with ``current`` first, then those containing it
    (in the value or its display name)."""
    needle, names = current.strip().lower(), names or {}

    def rank(value: str) -> int | None:
        if value.lower().startswith(needle):
            return 0
        return 1 if needle in value.lower() or needle in names.get(value, "").lower() else None

    ranked = sorted((r, i) for i, v in enumerate(values) if (r := rank(v)) is not None)
    return [Choice(name=(f"{v} — {names[v]}" if names.get(v) else v)[:100], value=v[:100])
            for v in (values[i] for _, i in ranked[:25])]


@cache
def _zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


class SoraGroup(app_commands.Group):
    """``/sora …``: one subcommand per core command, options typed and described."""

    def __init__(self, handler: DiscordCommands) -> None:
        super().__init__(name="sora", guild_only=True,
                         allowed_contexts=app_commands.AppCommandContext(guild=True),
                         description="Can we generate video right now, and through which route?")
        self._handler = handler

    @app_commands.command(description="State of every service, or one in detail")
    @app_commands.describe(service="One service in detail (default: all)",
                           public="Post the answer in the channel (default: only you see it)")
    async def status(self, interaction: discord.Interaction, service: str | None = None,
                     public: bool = False) -> None:
        args = [service] if service else []
        await self._handler.run(interaction, command_text("status", args + (
            ["public"] if public else [])), private=not public)

    @app_commands.command(description="A test generation, routed around what is down")
    @app_commands.describe(prompt="What to generate", seconds="Length of the video",
                           size="Width x height",
                           model="Model to ask for (default: the bot's default model)",
                           prefer="Which kind of route to try first")
    @app_commands.choices(seconds=[Choice(name=f"{s} s", value=s) for s in VIDEO_SECONDS])
    @app_commands.choices(size=[Choice(name=s, value=s) for s in VIDEO_SIZES],
                          prefer=[Choice(name=p, value=p) for p in PREFER])
    async def generate(self, interaction: discord.Interaction,
                       prompt: app_commands.Range[str, 1, 4000],
                       seconds: Choice[int] | None = None, size: Choice[str] | None = None,
                       model: str | None = None, prefer: Choice[str] | None = None) -> None:
        text = command_text("generate", [prompt], seconds=_value(seconds), size=_value(size),
                            model=model, prefer=_value(prefer))
        # Every answer to generate is the requester's alone ("started", a refusal, no route):
        # the progress and the video are posted in the channel by the core, not as the answer.
        await self._handler.run(interaction, text, private=True)

    @app_commands.command(description="Post alerts in this channel (admins)")
    @app_commands.describe(services="Ids or globs, comma-separated (default: all)",
                           minimum="Alert from this state on (default: degraded)")
    @app_commands.rename(minimum="min")
    @app_commands.choices(minimum=[Choice(name="degraded or worse", value="degraded"),
                               Choice(name="risk control or worse", value="risk_control"),
                               Choice(name="suspended only", value="suspended")])
    async def subscribe(self, interaction: discord.Interaction, services: str | None = None,
                        minimum: Choice[str] | None = None) -> None:
        missing = _missing_permissions(interaction.app_permissions)
        if missing:
            await self._handler.refuse(interaction, Message(
                title="⚠️ I cannot post alerts in this channel",
                text=f"The bot lacks {', '.join(missing)} here. Give its role these in the "
                     "channel's permissions, then `/sora subscribe` again.",
                severity=Severity.WARNING, ephemeral=True))
            return
        text = command_text("subscribe", [services] if services else [], min=_value(minimum))
        await self._handler.run(interaction, text, private=False)

    @app_commands.command(description="Stop alerts in this channel (admins)")
    @app_commands.describe(services="Ids or globs to stop, comma-separated (default: all)")
    async def unsubscribe(self, interaction: discord.Interaction,
                          services: str | None = None) -> None:
        text = command_text("unsubscribe", [services] if services else [])
        await self._handler.run(interaction, text, private=False)

    @app_commands.command(description="What this server's channels are subscribed to")
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        await self._handler.run(interaction, command_text("subscriptions"), private=True)

    @app_commands.command(description="Daily digest in this channel: a time, off, or now")
    @app_commands.describe(when="HH:MM (24-hour), off, or now", timezone="IANA zone, e.g. "
                           "Europe/Berlin (default: UTC or the one set before)")
    async def digest(self, interaction: discord.Interaction, when: str,
                     timezone: str | None = None) -> None:
        args = [when] + ([timezone] if timezone else [])
        await self._handler.run(interaction, command_text("digest", args),
                                private=when.strip().lower() == "now")

    @app_commands.command(description="Declare, end or list maintenance (declaring: admins)")
    @app_commands.describe(service="The service under maintenance (none: list them)",
                           duration="For how long, e.g. 30m, 2h, 1d", reason="Shown to everyone",
                           end="End the service's maintenance now")
    async def maintenance(self, interaction: discord.Interaction, service: str | None = None,
                          duration: str | None = None,
                          reason: app_commands.Range[str, 1, MAX_REASON] | None = None,
                          end: bool = False) -> None:
        if end:
            args = ["end"] + ([service] if service else [])
        else:
            args = [a for a in (service, duration, reason) if a]
        await self._handler.run(interaction, command_text("maintenance", args),
                                private=not service)

    @app_commands.command(name="help", description="What /sora can do")
    async def help_(self, interaction: discord.Interaction) -> None:
        await self._handler.run(interaction, command_text("help"), private=True)

    # --- autocomplete ----------------------------------------------------------------------

    @status.autocomplete("service")
    @maintenance.autocomplete("service")
    async def _service(self, interaction: discord.Interaction, current: str
                       ) -> list[Choice[str]]:
        names = self._handler.commands.service_names
        return _choices(list(names), current, names=names)

    @subscribe.autocomplete("services")
    @unsubscribe.autocomplete("services")
    async def _services(self, interaction: discord.Interaction, current: str
                        ) -> list[Choice[str]]:
        """Completes the last of the comma-separated ids, keeping those before it."""
        done, _, last = current.rpartition(",")
        prefix = f"{done}," if done else ""
        names = self._handler.commands.service_names
        return [Choice(name=(prefix + c.value)[:100], value=(prefix + c.value)[:100])
                for c in _choices(list(names), last)]

    @generate.autocomplete("model")
    async def _model(self, interaction: discord.Interaction, current: str
                     ) -> list[Choice[str]]:
        return _choices(self._handler.models, current)

    @digest.autocomplete("when")
    async def _when(self, interaction: discord.Interaction, current: str) -> list[Choice[str]]:
        return _choices(["now", "off", "08:00", "09:00", "12:00", "17:00"], current) or [
            Choice(name=current[:100], value=current[:100])]

    @digest.autocomplete("timezone")
    async def _timezone(self, interaction: discord.Interaction, current: str
                        ) -> list[Choice[str]]:
        return _choices(_zones(), current)

    @maintenance.autocomplete("duration")
    async def _duration(self, interaction: discord.Interaction, current: str
                        ) -> list[Choice[str]]:
        return _choices(["30m", "1h", "2h", "4h", "12h", "1d"], current) or [
            Choice(name=current[:100], value=current[:100])]


def _value(choice: Choice[Any] | None) -> object:
    return None if choice is None else choice.value


class DiscordCommands:
    """The ``app_commands`` tree with the ``/sora`` group, answering through the core.

    A command answered within ``defer_after`` seconds is answered directly; a slower one is
    deferred ("thinking…") and its answer fills that in. Errors and private answers are
    ephemeral. Members with Manage Channels (or Administrator) in the channel count as admins.
    """

    def __init__(self, client: discord.Client, commands: Commands, *,
                 models: Sequence[str] | None = None, defer_after: float = DEFER_AFTER) -> None:
        """``models``: what the ``model`` option of generate offers; by default the models
        the core's generator can route (none without a generator)."""
        self.commands = commands
        self._models = None if models is None else list(models)
        self._defer_after = defer_after
        self.tree: app_commands.CommandTree[discord.Client] = app_commands.CommandTree(client)
        self.tree.add_command(SoraGroup(self))
        self.tree.on_error = self._on_error  # type: ignore[method-assign]

    @property
    def models(self) -> list[str]:
        if self._models is not None:
            return list(self._models)
        generator = self.commands.generator
        return generator.models if generator is not None else []

    async def run(self, interaction: discord.Interaction, text: str, *, private: bool) -> None:
        """Run ``text`` through the core and answer; ``private``: whether the answer is
        expected to be ephemeral (a deferral has to say so before the answer exists)."""
        incoming = Incoming(platform=PLATFORM, workspace=str(interaction.guild_id or ""),
                            channel=str(interaction.channel_id or ""),
                            user=str(interaction.user.id), text=text,
                            is_admin=lambda: _is_admin(interaction),
                            roles=_role_ids(interaction.user))
        work = asyncio.ensure_future(self.commands.handle(incoming))
        deferred: bool | None = None
        done, _ = await asyncio.wait({work}, timeout=self._defer_after)
        if not done:
            try:
                await interaction.response.defer(ephemeral=private, thinking=True)
                deferred = private
            except discord.HTTPException as e:
                log.warning("could not defer /sora %s: %s", text.split()[0], e)
        message = await work
        try:
            await self._answer(interaction, message, deferred)
        except discord.NotFound as e:  # 10062: the three seconds to answer had passed
            log.warning("/sora %s was answered too late: %s", text.split()[0], e)
        except discord.HTTPException as e:
            log.warning("could not answer /sora %s: %s", text.split()[0], e)

    async def refuse(self, interaction: discord.Interaction, message: Message) -> None:
        """Answer without asking the core (a check this adapter made failed)."""
        with suppress(discord.HTTPException):
            await self._answer(interaction, message, None)

    async def _answer(self, interaction: discord.Interaction, message: Message,
                      deferred: bool | None) -> None:
        pages, files = _pages(message)
        quiet = message.ephemeral
        if deferred is None:
            await interaction.response.send_message(
                content=pages[0].content, embeds=pages[0].embeds, files=files, ephemeral=quiet,
                allowed_mentions=NO_MENTIONS)
            pages, files = pages[1:], []
        elif deferred == quiet:  # the answer fills in the "thinking…" message
            await interaction.edit_original_response(
                content=pages[0].content, embeds=pages[0].embeds, attachments=files,
                allowed_mentions=NO_MENTIONS)
            pages, files = pages[1:], []
        else:  # deferred privately but the answer is public, or the other way round
            await interaction.delete_original_response()
        for page in pages:
            await interaction.followup.send(
                content=page.content or discord.utils.MISSING, embeds=page.embeds, files=files,
                ephemeral=quiet, allowed_mentions=NO_MENTIONS)
            files = []

    async def _on_error(self, interaction: discord.Interaction,
                        error: app_commands.AppCommandError) -> None:
        """A failed option conversion or a bug in this adapter: say so privately."""
        log.error("/sora failed in Discord: %s", error, exc_info=error)
        if interaction.response.is_done():
            return
        with suppress(discord.HTTPException):
            await interaction.response.send_message(
                "⚠️ Something went wrong on our side; the error is in the bot's log.",
                ephemeral=True, allowed_mentions=NO_MENTIONS)


def _missing_permissions(permissions: discord.Permissions) -> list[str]:
    if permissions.administrator:
        return []
    return [label for name, label in POST_PERMISSIONS.items() if not getattr(permissions, name)]


def _role_ids(user: discord.User | discord.Member) -> tuple[str, ...]:
    """The ids of the member's roles as the interaction carried them; none outside a server.

    ``Member.roles`` keeps only the roles it finds in the guild cache, which is empty until the
    server's GUILD_CREATE arrives (and while the server is unavailable): the ids the interaction
    sent are the member's roles whatever the cache holds. @everyone is not among them."""
    if not isinstance(user, discord.Member):
        return ()
    return tuple(str(role_id) for role_id in user._roles)


async def _is_admin(interaction: discord.Interaction) -> bool:
    permissions = interaction.permissions  # the member's, resolved for this channel
    return permissions.administrator or permissions.manage_channels


# --- the adapter for `sora-bot run` ----------------------------------------------------------

class DiscordAdapter:
    """Everything Discord for ``sora-bot run``: the chat port, the commands and the gateway.

        adapter = DiscordAdapter(settings)
        async with open_runtime(settings, chats=[adapter.chat]) as rt:
            async with adapter.running(rt.commands) as routes:
                await run_forever(rt, stop=stop, routes=routes)
    """

    def __init__(self, settings: Settings, *, connect_wait: float = CONNECT_WAIT,
                 defer_after: float = DEFER_AFTER) -> None:
        if settings.discord_token is None:
            raise ValueError("Discord is not configured")
        self._settings = settings
        self._token = settings.discord_token.get_secret_value()
        self._connect_wait = connect_wait
        self._defer_after = defer_after
        self.client = make_client()
        self.chat: ChatPort = DiscordChat(self.client)
        self.commands: DiscordCommands | None = None  # the /sora tree, while running

    @asynccontextmanager
    async def running(self, commands: Commands) -> AsyncIterator[list[Route]]:
        """Log in, sync ``/sora``, connect the gateway; commands arrive over it (no routes)."""
        s = self._settings
        handler = self.commands = DiscordCommands(self.client, commands,
                                                  defer_after=self._defer_after)
        with api_base(s.discord_api_url):
            logged_in = await self._login()
            connecting = asyncio.create_task(self._connect(handler.tree, logged_in))
            connecting.add_done_callback(_report_stop)
            ready = asyncio.create_task(self.client.wait_until_ready())
            await asyncio.wait([connecting, ready], timeout=self._connect_wait,
                               return_when=asyncio.FIRST_COMPLETED)
            if ready.done():
                log.info("Discord: connected as %s; /sora arrives over the gateway",
                         self.client.user)
            elif not connecting.done():
                log.warning("Discord gateway still connecting; retrying in the background")
            try:
                yield []
            finally:
                ready.cancel()
                await self.client.close()
                connecting.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await connecting

    async def _login(self) -> bool:
        """Log in once now: a token Discord refuses stops the start with a clear error; a
        Discord that does not answer does not (the login is retried in the background)."""
        try:
            await self.client.login(self._token)
        except discord.LoginFailure:
            await self._drop_session()
            raise ChatStartError("Discord refused DISCORD_TOKEN (401 Unauthorized); reset the "
                                 "token under Bot in the developer portal and set it again"
                                 ) from None
        except (aiohttp.ClientError, OSError, TimeoutError, discord.HTTPException) as e:
            log.warning("Discord is not reachable yet (%s); carrying on", _why(e))
            await self._drop_session()
            return False
        app = self.client.application_id
        log.info("Discord: logged in as %s; invite: %s", self.client.user,
                 INVITE_URL.format(app_id=app))
        return True

    async def _drop_session(self) -> None:
        """Close what a failed login opened; the next login opens a new pool (discord.py
        makes its connector once, and closing the session closed it)."""
        await self.client.http.close()
        self.client.http.connector = discord.utils.MISSING

    async def _connect(self, tree: app_commands.CommandTree[discord.Client],
                       logged_in: bool) -> None:
        """Log in (if the first try could not reach Discord), sync the commands, then hold the
        gateway connection (discord.py reconnects by itself)."""
        delay = 1.0
        while not await self._gateway_known(logged_in):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
            try:
                logged_in = logged_in or await self._login()
            except ChatStartError as e:
                log.error("%s", e)
                return
        await self._sync(tree)
        await self.client.connect(reconnect=True)

    async def _gateway_known(self, logged_in: bool) -> bool:
        """Logged in, and — for ``DISCORD_API_URL`` — that API's gateway, as it announces it."""
        if not logged_in:
            return False
        if self._settings.discord_api_url:
            try:
                _, url, _ = await self.client.http.get_bot_gateway()
            except (discord.GatewayNotFound, aiohttp.ClientError, OSError, TimeoutError) as e:
                log.warning("Discord API did not name its gateway (%s); retrying", _why(e))
                return False
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        return True

    async def _sync(self, tree: app_commands.CommandTree[discord.Client]) -> None:
        guild_id = self._settings.discord_guild_id
        guild = discord.Object(id=guild_id) if guild_id else None
        if guild is not None:
            tree.copy_global_to(guild=guild)
        try:
            synced = await tree.sync(guild=guild)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as e:
            forbidden = isinstance(e, discord.HTTPException) and e.status == 403
            hint = (f"; invite the bot again with the applications.commands scope: "
                    f"{INVITE_URL.format(app_id=self.client.application_id)}"
                    if forbidden else "; /sora keeps its last registration")
            log.error("could not register /sora with Discord (%s)%s", _why(e), hint)
            return
        where = f"in server {guild_id} (available now)" if guild else \
            "globally (new commands can take up to an hour to appear)"
        log.info("Discord: /sora registered %s with %d subcommands", where,
                 sum(len(c.options) for c in synced))


def _report_stop(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("Discord gateway stopped: %s (alerts wait in the outbox)",
                  _why(task.exception() or Exception()))


def _why(error: BaseException) -> str:
    if isinstance(error, discord.HTTPException):
        return f"HTTP {error.status}: {error.text.removeprefix(f'{error.status}: ')}"[:200]
    return str(error) or type(error).__name__

