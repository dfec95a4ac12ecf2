"""``/sora …``: parse the text a user typed into a ``Command``, handle it, answer a ``Message``.

The same for every platform: adapters turn their native event into an ``Incoming`` (with the
platform's admin check as a callable), call ``Commands.handle`` and render the ``Message``.
Errors and private answers are ``ephemeral``; changes to a channel's alerts are announced in it.
Everything a user typed that is echoed back is neutralised (no ``<!channel>``, ``@everyone``).
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.config import ServiceConfig
from bot.messages import Message, Severity, Table, format_duration, mention, neutralize
from bot.metrics import Metrics
from bot.models import State
from bot.status import service_message, status_message, status_report, transition_json
from bot.store import OutboxItem, Store
from bot.subscriptions import (
    ALL,
    Subscription,
    SubscriptionError,
    add_patterns,
    describe,
    first_claim,
    parse_digest_time,
    parse_min,
    parse_patterns,
    parse_timezone,
    remove_patterns,
)

if TYPE_CHECKING:
    from bot.generate import Generator

log = logging.getLogger(__name__)

MAX_REASON = 200
MAX_MAINTENANCE = timedelta(days=14)
_DURATION = re.compile(r"(\d{1,6})\s*(m|min|h|d|w)", re.I)
_UNITS = {"m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}

# What `generate` accepts (Sora's durations and sizes; providers map them to their own, and a
# routed model may allow other durations), and the routes it can prefer. Adapters offer these.
VIDEO_SECONDS = (4, 8, 12)
VIDEO_SIZES = ("1280x720", "720x1280", "1792x1024", "1024x1792")
PREFER = ("official", "reverse")

USAGE: dict[str, tuple[str, str]] = {
    "status": ("status [SERVICE] [public]",
               "Current state of every service (only you see it; add `public` to post it), "
               "or one service in detail."),
    "subscribe": ("subscribe [SERVICES] [--min degraded|risk_control|suspended]",
                  "Post alerts about SERVICES (ids or globs, comma-separated; default all) "
                  "in this channel. Admins only."),
    "unsubscribe": ("unsubscribe [SERVICES]",
                    "Stop alerts about SERVICES, or about everything when none are given. "
                    "Admins only."),
    "subscriptions": ("subscriptions", "What this channel and this workspace are subscribed to."),
    "digest": ("digest HH:MM [TIMEZONE] | off | now",
               "Daily digest in this channel at a local time (IANA zone, default UTC); `off` "
               "stops it; `now` posts one now. Setting it is for admins."),
    "maintenance": ("maintenance [SERVICE DURATION [REASON] | end SERVICE]",
                    "Declare maintenance (e.g. `2h`, `30m`, `1d`): alerts for SERVICE are muted "
                    "and the window is announced. Without arguments: what is under maintenance. "
                    "Admins only."),
    "generate": ("generate PROMPT [--seconds 4|8|12] [--size WxH] [--model M] "
                 "[--prefer official|reverse]",
                 "A test generation routed around what is down (sizes 1280x720, 720x1280, "
                 "1792x1024, 1024x1792). Costs money: allowed users only, within a daily "
                 "quota and budget."),
    "help": ("help", "This list."),
}


class UsageError(ValueError):
    """Bad input: the message says what was wrong; ``command`` picks the usage line shown."""

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A command as the adapter received it. ``is_admin`` is the platform's own check (Slack
    workspace admins, Discord Manage Channels); user ids in config count as admins too."""

    platform: str
    workspace: str
    channel: str
    user: str
    text: str
    is_admin: Callable[[], Awaitable[bool]]
    roles: tuple[str, ...] = ()  # the user's role ids where the platform has roles (Discord)


_FLAGS = {"subscribe": {"min"}, "generate": {"seconds", "size", "model", "prefer"}}


def parse(text: str) -> Command:
    """``subscribe sora-2*,veo-3.1 --min degraded`` → Command("subscribe", (…,), {"min": …}).

    A lone ``--`` ends the options: every word after it is an argument, even one starting with
    ``--`` (adapters with typed options put free text such as a prompt there)."""
    try:
        words = shlex.split(text.strip())
    except ValueError as e:  # an unbalanced quote
        raise UsageError(f"cannot read that: {e}") from None
    if not words:
        return Command("help")
    name = words[0].lower()
    if name not in USAGE:
        raise UsageError(f"unknown command '{neutralize(words[0][:40])}'")
    args: list[str] = []
    options: dict[str, str] = {}
    allowed = _FLAGS.get(name, set())
    rest = iter(words[1:])
    for word in rest:
        if word == "--":
            args.extend(rest)
            break
        if word.startswith("--"):
            flag, _, value = word[2:].partition("=")
            if flag not in allowed:
                raise UsageError(f"'{neutralize(word[:40])}' is not an option of {name}", name)
            value = value or next(rest, "")
            if not value:
                raise UsageError(f"--{flag} needs a value", name)
            options[flag] = value
        else:
            args.append(word)
    return Command(name, tuple(args), options)


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``1d``, ``1w`` → timedelta."""
    m = _DURATION.fullmatch(text.strip())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"'{neutralize(text[:32])}' is not a duration like 30m, 2h or 1d")
    return timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


def help_message() -> Message:
    lines = [f"`/sora {usage}` — {what}" for usage, what in USAGE.values()]
    return Message(title="/sora — can we generate video right now, and through which route?",
                   text="\n".join(lines), severity=Severity.INFO, ephemeral=True,
                   context="States: 🟢 operational · 🟡 degraded · 🟠 risk control · "
                           "🔴 suspended · 🔧 maintenance · ⚫ retired · ⚪ unknown")


def usage_message(error: str, command: str | None) -> Message:
    usage = f"Usage: `/sora {USAGE[command][0]}`" if command else "Try `/sora help`."
    return Message(title=f"⚠️ {error}", text=usage, severity=Severity.WARNING, ephemeral=True)


DigestBuilder = Callable[[Subscription, datetime], Awaitable[Message]]


class Commands:
    """Handles parsed commands against the store. Everything it needs is injected."""

    def __init__(self, *, store: Store, services: Sequence[ServiceConfig],
                 clock: Callable[[], datetime], admins: Sequence[str] = (),
                 digest: DigestBuilder | None = None,
                 on_change: Callable[[], Awaitable[object]] | None = None,
                 metrics: Metrics | None = None, generator: Generator | None = None) -> None:
        """``on_change``: called after a command enqueued a post or changed maintenance, to
        announce and deliver it now rather than at the next probe cycle. ``metrics`` counts
        the commands received per platform. ``generator`` runs ``generate``."""
        self._store = store
        self._services = tuple(s for s in services if s.enabled)
        self._ids = [s.id for s in self._services]
        self._names = {s.id: s.name for s in self._services}
        self._clock = clock
        self._admins = frozenset(admins)
        self._build_digest = digest
        self._on_change = on_change
        self._metrics = metrics
        self.generator = generator

    @property
    def service_names(self) -> dict[str, str]:
        """Id → display name, in config order, for adapters' autocomplete."""
        return dict(self._names)

    async def handle(self, incoming: Incoming) -> Message:
        """The answer to ``incoming``; never raises (a bug is logged and answered privately)."""
        words = incoming.text.split()
        name = words[0].lower() if words else "help"
        if self._metrics is not None:
            self._metrics.commands.labels(incoming.platform,
                                          name if name in USAGE else "unknown").inc()
        try:
            command = parse(incoming.text)
            handler = getattr(self, f"_{command.name}")
            message: Message = await handler(incoming, command)
            return message
        except UsageError as e:
            return usage_message(str(e), e.command)
        except (SubscriptionError, ValueError) as e:
            return usage_message(str(e), name if name in USAGE else None)
        except Exception:
            log.exception("/sora %s failed", name if name in USAGE else "(unknown)")
            return Message(title="⚠️ Something went wrong on our side",
                           text="The error is in the bot's log. Try again in a minute.",
                           severity=Severity.DANGER, ephemeral=True)

    async def _allowed(self, incoming: Incoming) -> bool:
        return incoming.user in self._admins or await incoming.is_admin()

    @staticmethod
    def _refuse(what: str) -> Message:
        return Message(title=f"🚫 Only admins can {what}",
                       text="Ask a workspace admin (or someone listed in the bot's `admins` "
                            "config) to do it.", severity=Severity.WARNING, ephemeral=True)

    # --- the subcommands -------------------------------------------------------------------

    async def _help(self, incoming: Incoming, command: Command) -> Message:
        return help_message()

    async def _status(self, incoming: Incoming, command: Command) -> Message:
        args = [a for a in command.args if a.lower() != "public"]
        public = len(args) != len(command.args)
        if len(args) > 1:
            raise UsageError("status takes one service at most", "status")
        now = self._clock()
        if args:
            sid = self._service_id(args[0])
            row = status_report(self._store, self._services, now, only=sid)["services"][0]
            recent = [transition_json(t) for t in self._store.transitions(sid, limit=5)]
            message = service_message(row, recent, now)
        else:
            message = status_message(status_report(self._store, self._services, now), now)
        return replace(message, ephemeral=not public)

    async def _subscribe(self, incoming: Incoming, command: Command) -> Message:
        if not await self._allowed(incoming):
            return self._refuse("change this channel's alerts")
        patterns = parse_patterns(command.args, self._ids) if command.args else [ALL]
        current = self._subscription(incoming)
        minimum = parse_min(command.options["min"]) if "min" in command.options else (
            current.min_state if current else State.DEGRADED)
        services = add_patterns(current.services if current else (), patterns, self._ids)
        sub = self._store.subscribe(incoming.platform, incoming.workspace, incoming.channel,
                                    services=services, min_state=minimum, by=incoming.user,
                                    now=self._clock())
        digest = (f"Daily digest at {sub.digest_time} {sub.digest_tz}." if sub.digest_time else
                  "No daily digest yet: `/sora digest 09:00 Europe/Berlin` sets one.")
        return Message(
            title="🔔 Alerts on in this channel",
            text=f"This channel hears about {describe(sub.services)} when they become "
                 f"{_at_least(sub.min_state)} and when they recover. {digest}",
            severity=Severity.INFO, context=f"set by {_mention(incoming)}")

    async def _unsubscribe(self, incoming: Incoming, command: Command) -> Message:
        if not await self._allowed(incoming):
            return self._refuse("change this channel's alerts")
        current = self._subscription(incoming)
        if current is None:
            return Message(title="This channel has no alerts to stop", ephemeral=True,
                           severity=Severity.NEUTRAL)
        left = remove_patterns(current.services, parse_patterns(command.args, self._ids),
                               self._ids) \
            if command.args else ()
        if not left:
            self._store.unsubscribe(incoming.platform, incoming.workspace, incoming.channel)
            return Message(title="🔕 Alerts off in this channel",
                           text="No more alerts or digests here. `/sora subscribe` turns them "
                                "back on.", severity=Severity.INFO,
                           context=f"by {_mention(incoming)}")
        sub = self._store.subscribe(incoming.platform, incoming.workspace, incoming.channel,
                                    services=left, min_state=current.min_state,
                                    by=current.created_by, now=self._clock())
        return Message(title="🔕 Fewer alerts in this channel",
                       text=f"This channel now hears about {describe(sub.services)}.",
                       severity=Severity.INFO, context=f"by {_mention(incoming)}")

    async def _subscriptions(self, incoming: Incoming, command: Command) -> Message:
        subs = self._store.subscriptions(incoming.platform, incoming.workspace)
        if not subs:
            return Message(title="No channel here has alerts yet",
                           text="`/sora subscribe` in a channel turns them on.",
                           severity=Severity.NEUTRAL, ephemeral=True)
        rows = tuple((_channel_ref(incoming.platform, s.channel) +
                      (" (this channel)" if s.channel == incoming.channel else ""),
                      describe(s.services), _at_least(s.min_state),
                      f"{s.digest_time} {s.digest_tz}" if s.digest_time else "off")
                     for s in subs)
        return Message(title=f"Alert subscriptions ({len(subs)})", severity=Severity.INFO,
                       table=Table(("Channel", "Services", "When", "Digest"), rows),
                       text="\n".join(" · ".join(r) for r in rows), ephemeral=True)

    async def _digest(self, incoming: Incoming, command: Command) -> Message:
        if not command.args:
            raise UsageError("say when: a time like 09:00, `off` or `now`", "digest")
        sub = self._subscription(incoming)
        what = command.args[0].lower()
        if what == "now":
            return await self._digest_now(incoming, sub)
        if not await self._allowed(incoming):
            return self._refuse("change this channel's digest")
        if sub is None:
            return Message(title="Subscribe this channel first",
                           text="A digest sums up the services a channel subscribes to: "
                                "`/sora subscribe` first, then `/sora digest 09:00`.",
                           severity=Severity.WARNING, ephemeral=True)
        if what == "off":
            if len(command.args) > 1:
                raise UsageError("`digest off` takes nothing more", "digest")
            self._store.set_digest(sub.id, None, sub.digest_tz, sub.last_digest_on)
            return Message(title="Daily digest off in this channel", severity=Severity.INFO,
                           context=f"by {_mention(incoming)}")
        if len(command.args) > 2:
            raise UsageError("too many words: `digest HH:MM [TIMEZONE]`", "digest")
        at = parse_digest_time(command.args[0])
        tz = parse_timezone(command.args[1]).key if len(command.args) > 1 else sub.digest_tz
        now = self._clock()
        # Once a day: a time moved later does not bring a second digest today.
        claimed = max((d for d in (sub.last_digest_on, first_claim(at, tz, now)) if d),
                      default=None)
        self._store.set_digest(sub.id, at, tz, claimed)
        today = now.astimezone(ZoneInfo(tz)).date()
        starts = "tomorrow" if claimed and claimed >= today else "today"
        return Message(title=f"🗞️ Daily digest at {at} {tz}",
                       text=f"Every day at {at} ({tz}) this channel gets the last 24 h: status, "
                            f"uptime, latency, incidents and a chart. First one {starts}.",
                       severity=Severity.INFO, context=f"by {_mention(incoming)}")

    async def _digest_now(self, incoming: Incoming, sub: Subscription | None) -> Message:
        if self._build_digest is None:
            raise UsageError("digests are not available in this process")
        scope = sub or Subscription(id=0, platform=incoming.platform,
                                    workspace=incoming.workspace, channel=incoming.channel,
                                    services=(ALL,))
        now = self._clock()
        message = await self._build_digest(scope, now)
        key = f"dnow:{incoming.channel}:{now.timestamp():.3f}@{incoming.platform}"
        self._store.enqueue([OutboxItem(key, incoming.platform, incoming.channel, message)], now)
        if self._on_change:
            await self._on_change()
        return Message(title="🗞️ Digest on its way", severity=Severity.INFO, ephemeral=True)

    async def _maintenance(self, incoming: Incoming, command: Command) -> Message:
        now = self._clock()
        if not command.args:
            return self._maintenance_list(now)
        if not await self._allowed(incoming):
            return self._refuse("declare maintenance")
        if command.args[0].lower() == "end":
            if len(command.args) != 2:
                raise UsageError("say which service: `maintenance end SERVICE`", "maintenance")
            sid = self._service_id(command.args[1])
            ended = self._store.end_maintenance(sid, now, source="admin")
            if not ended:
                return Message(title=f"{self._names[sid]} has no admin maintenance to end",
                               severity=Severity.NEUTRAL, ephemeral=True)
            if self._on_change:
                await self._on_change()
            return Message(title=f"🔧 Maintenance of {self._names[sid]} ended",
                           text="Alerts for it are on again.", severity=Severity.OK,
                           context=f"by {_mention(incoming)}")
        if len(command.args) < 2:
            raise UsageError("say for how long, e.g. `maintenance sora-2-relay 2h upgrade`",
                             "maintenance")
        sid = self._service_id(command.args[0])
        length = parse_duration(command.args[1])
        if length > MAX_MAINTENANCE:
            raise UsageError(f"{format_duration(length.total_seconds())} is too long; at most "
                             f"{MAX_MAINTENANCE.days} days", "maintenance")
        reason = " ".join(command.args[2:]).strip()
        if len(reason) > MAX_REASON:
            raise UsageError(f"the reason is too long ({len(reason)} characters, at most "
                             f"{MAX_REASON})", "maintenance")
        reason = reason or f"declared by {incoming.user}"
        self._store.add_maintenance(sid, now, now + length, reason, "admin",
                                    external_id=f"{incoming.platform}:{now.timestamp():.3f}")
        if self._on_change:
            await self._on_change()
        return Message(title=f"🔧 {self._names[sid]}: maintenance for "
                             f"{format_duration(length.total_seconds())}",
                       text=f"{neutralize(reason)}. Alerts for it are muted until "
                            f"{(now + length).strftime('%Y-%m-%d %H:%M UTC')}; "
                            f"`/sora maintenance end {sid}` ends it sooner.",
                       severity=Severity.INFO, context=f"by {_mention(incoming)}")

    def _maintenance_list(self, now: datetime) -> Message:
        rows = []
        for s in self._services:
            for w in self._store.active_maintenance(s.id, now):
                until = w.ends_at.strftime("%Y-%m-%d %H:%M UTC") if w.ends_at else "until ended"
                by = "admin" if w.source == "admin" else "status page"
                rows.append((s.name, until, by, neutralize(w.reason)))
        if not rows:
            return Message(title="Nothing is under maintenance", severity=Severity.OK,
                           ephemeral=True)
        return Message(title=f"🔧 Under maintenance ({len(rows)})", severity=Severity.INFO,
                       table=Table(("Service", "Until", "Source", "Reason"), tuple(rows)),
                       text="\n".join(" · ".join(r) for r in rows), ephemeral=True)

    async def _generate(self, incoming: Incoming, command: Command) -> Message:
        if self.generator is None:
            raise UsageError("test generations are not available in this process")
        return await self.generator.start(incoming, command, lambda: self._allowed(incoming))

    # --- helpers ---------------------------------------------------------------------------

    def _subscription(self, incoming: Incoming) -> Subscription | None:
        return self._store.subscription(incoming.platform, incoming.workspace, incoming.channel)

    def _service_id(self, text: str) -> str:
        sid = text.lower()
        if sid not in self._ids:
            raise ValueError(f"'{neutralize(text[:64])}' is not a service; known: "
                             f"{', '.join(self._ids)}")
        return sid


def _at_least(state: State) -> str:
    return "degraded or worse" if state is State.DEGRADED else f"{state.label} or worse"


def _mention(incoming: Incoming) -> str:
    """Who did it, as the platform renders a user (never a mass mention)."""
    return mention(incoming.platform, incoming.user)


def _channel_ref(platform: str, channel: str) -> str:
    ch = re.sub(r"[^A-Za-z0-9_.#-]", "", channel)[:40]
    return {"slack": f"<#{ch}>", "discord": f"<#{ch}>"}.get(platform, ch)


__all__ = ["Command", "Commands", "Incoming", "UsageError", "help_message", "parse",
           "parse_duration"]
