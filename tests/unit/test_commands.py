"""``/sora …`` commands: parsing, every subcommand against a real in-memory store, who may do
what, what is private, and that nothing a user typed comes back as a live mention."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bot.commands import Command, Commands, Incoming, UsageError, parse, parse_duration
from bot.config import load_settings
from bot.digest import build_digest
from bot.messages import Message, Severity
from bot.metrics import Metrics
from bot.models import Health, State
from bot.store import OutboxItem, Store
from bot.subscriptions import Subscription, digest_due
from tests.fakes.chat import FakeClock

SERVICES = load_settings(None, {}).services
IDS = [s.id for s in SERVICES]
NAMES = {s.id: s.name for s in SERVICES}
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
H = timedelta(hours=1)
WEEK_AROUND = (NOW - 7 * timedelta(days=1), NOW + 30 * timedelta(days=1))
LISTED = "U-listed"  # in the bot's ``admins`` config


class IsAdmin:
    """The platform's admin check: answers ``answer`` and records that it was asked."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.answer


class Bot:
    """``Commands`` over a real store, a fake clock and a recording digest builder."""

    def __init__(self, store: Store, *, digest: Any = "fake") -> None:
        self.store = store
        self.clock = FakeClock(NOW)
        self.enqueued = 0
        self.built: list[tuple[Subscription, datetime]] = []
        builder = self._fake_digest if digest == "fake" else digest
        self.commands = Commands(store=store, services=SERVICES, clock=self.clock,
                                 admins=(LISTED,), digest=builder, on_change=self._changed)

    async def _fake_digest(self, sub: Subscription, now: datetime) -> Message:
        self.built.append((sub, now))
        return Message(title=f"Digest for {sub.channel}", text="all fine",
                       severity=Severity.OK)

    async def _changed(self) -> None:
        self.enqueued += 1

    async def run(self, text: str, *, admin: bool = True, user: str = "U-alice",
                  channel: str = "C1", workspace: str = "T1",
                  platform: str = "slack") -> tuple[Message, IsAdmin]:
        check = IsAdmin(admin)
        message = await self.commands.handle(
            Incoming(platform, workspace, channel, user, text, is_admin=check))
        return message, check

    async def ok(self, text: str, **kw: Any) -> Message:
        """Run a command that must not be refused nor fail."""
        message, _ = await self.run(text, **kw)
        assert not message.title.startswith(("⚠️", "🚫")), message.plain()
        return message

    def sub(self, channel: str = "C1") -> Subscription | None:
        return self.store.subscription("slack", "T1", channel)

    def windows(self) -> list[Any]:
        return self.store.maintenance_windows(None, *WEEK_AROUND)

    def snapshot(self) -> tuple[Any, ...]:
        return (self.store.subscriptions(), self.windows(),
                [(p.key, p.channel) for p in self.store.pending_posts()])


@pytest.fixture
def bot(store: Store) -> Iterator[Bot]:
    yield Bot(store)


def strings(message: Message) -> list[str]:
    """Every piece of text a platform could render from the message."""
    out = [message.title, message.text, message.context]
    out += [s for f in message.fields for s in (f.name, f.value)]
    if message.table is not None:
        out += list(message.table.header) + [c for row in message.table.rows for c in row]
    return out


def is_usage_error(message: Message, command: str | None) -> bool:
    usage = f"Usage: `/sora {command}" if command else "Try `/sora help`."
    return (message.ephemeral and message.severity is Severity.WARNING
            and message.title.startswith("⚠️") and message.text.startswith(usage))


# --- parse ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ("", Command("help")),
    ("   ", Command("help")),
    ("help", Command("help")),
    ("STATUS Sora-2-Relay", Command("status", ("Sora-2-Relay",))),
    ("status public", Command("status", ("public",))),
    ('maintenance sora-2-relay 2h "db upgrade" now',
     Command("maintenance", ("sora-2-relay", "2h", "db upgrade", "now"))),
    ("maintenance sora-2-relay 2h 'it is \"fine\"'",
     Command("maintenance", ("sora-2-relay", "2h", 'it is "fine"'))),
    ("subscribe sora-2*,veo-3.1 --min degraded",
     Command("subscribe", ("sora-2*,veo-3.1",), {"min": "degraded"})),
    ("subscribe --min=suspended kling-reverse",
     Command("subscribe", ("kling-reverse",), {"min": "suspended"})),
    ("subscribe --min suspended", Command("subscribe", (), {"min": "suspended"})),
    ("generate 'a cat on a skateboard' --seconds 8 --size=1280x720",
     Command("generate", ("a cat on a skateboard",), {"seconds": "8", "size": "1280x720"})),
    ("digest 09:00 Europe/Berlin", Command("digest", ("09:00", "Europe/Berlin"))),
    ("generate --seconds 4 -- '--not a flag' --", Command("generate", ("--not a flag", "--"),
                                                         {"seconds": "4"})),
])
def test_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("text", "command", "says"), [
    ("subscribe --loud", "subscribe", "'--loud' is not an option of subscribe"),
    ("status --min degraded", "status", "is not an option of status"),
    ("maintenance sora-2-relay 2h --force", "maintenance", "'--force' is not an option"),
    ("subscribe --min", "subscribe", "--min needs a value"),
    ("subscribe --min=", "subscribe", "--min needs a value"),
    ('maintenance sora-2-relay 2h "unbalanced', None, "cannot read that"),
    ("status 'sora-2-relay", None, "cannot read that"),
    ("frobnicate now", None, "unknown command 'frobnicate'"),
])
def test_parse_errors(text: str, command: str | None, says: str) -> None:
    with pytest.raises(UsageError) as e:
        parse(text)
    assert e.value.command == command
    assert says in str(e.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("30m", timedelta(minutes=30)), ("90min", timedelta(minutes=90)),
    ("2h", timedelta(hours=2)), ("2H", timedelta(hours=2)), ("1d", timedelta(days=1)),
    ("1w", timedelta(weeks=1)), (" 45m ", timedelta(minutes=45)), ("3 h", timedelta(hours=3)),
])
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["0m", "0h", "2x", "h", "2", "-1h", "1.5h", "", "2h30m"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration like 30m, 2h or 1d"):
        parse_duration(text)


# --- help, generate, what needs no admin check ---------------------------------------------

async def test_help_lists_every_command_privately(bot: Bot) -> None:
    for text in ("help", ""):
        message = await bot.ok(text)
        assert message.ephemeral
        for usage in ("/sora status [SERVICE] [public]", "/sora subscribe [SERVICES]",
                      "/sora unsubscribe", "/sora subscriptions", "/sora digest HH:MM",
                      "/sora maintenance", "/sora generate", "/sora help"):
            assert usage in message.text


async def test_generate_without_a_generator_says_so_and_does_nothing(bot: Bot) -> None:
    message, check = await bot.run("generate 'a cat' --seconds 8")
    assert message.title == "⚠️ test generations are not available in this process"
    assert message.ephemeral and check.calls == 0
    assert bot.store.pending_posts() == [] and bot.store.jobs() == [] and bot.enqueued == 0


@pytest.mark.parametrize("text", [
    "help", "", "status", "status public", "status veo-3.1", "status veo-3.1 public",
    "subscriptions", "maintenance", "digest now",
])
async def test_the_admin_check_is_not_even_asked_when_not_needed(bot: Bot, text: str) -> None:
    message, check = await bot.run(text, admin=False)
    assert check.calls == 0
    assert not message.title.startswith(("🚫", "⚠️")), message.plain()


def test_service_names_for_autocomplete(bot: Bot) -> None:
    assert bot.commands.service_names == NAMES and list(bot.commands.service_names) == IDS


# --- status -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ephemeral"), [
    ("status", True), ("status public", False), ("status PUBLIC", False),
])
async def test_status_is_private_unless_public(bot: Bot, text: str, ephemeral: bool) -> None:
    message = await bot.ok(text)
    assert message.ephemeral is ephemeral
    assert message.title == "Video API status"
    assert message.table is not None
    assert [row[1] for row in message.table.rows] == [NAMES[i] for i in IDS]


@pytest.mark.parametrize(("text", "ephemeral"), [
    ("status veo-3.1", True), ("status VEO-3.1", True), ("status veo-3.1 public", False),
    ("status public veo-3.1", False),
])
async def test_status_of_one_service(bot: Bot, text: str, ephemeral: bool) -> None:
    message = await bot.ok(text)
    assert message.ephemeral is ephemeral
    assert NAMES["veo-3.1"] in message.title
    assert any(f.name == "Status" for f in message.fields)


async def test_status_of_an_unknown_service_lists_the_known_ids(bot: Bot) -> None:
    message, _ = await bot.run("status sora-3", admin=False)
    assert is_usage_error(message, "status [SERVICE] [public]")
    assert "'sora-3' is not a service" in message.title
    for sid in IDS:
        assert sid in message.title


# --- subscribe / unsubscribe / subscriptions ---------------------------------------------------

async def test_subscribe_to_everything_by_default(bot: Bot) -> None:
    message = await bot.ok("subscribe")
    sub = bot.sub()
    assert sub is not None
    assert (sub.services, sub.min_state, sub.created_by) == (("*",), State.DEGRADED, "U-alice")
    assert sub.digest_time is None
    assert not message.ephemeral  # announced in the channel
    assert "all services" in message.text and "degraded or worse" in message.text
    assert "<@U-alice>" in message.context


@pytest.mark.parametrize(("text", "services", "minimum"), [
    ("subscribe sora-2*,veo-3.1 --min suspended", ("sora-2*", "veo-3.1"), State.SUSPENDED),
    ("subscribe sora-2* veo-3.1 --min=risk", ("sora-2*", "veo-3.1"), State.RISK_CONTROL),
    ("subscribe KLING-REVERSE", ("kling-reverse",), State.DEGRADED),
    ("subscribe --min risk_control", ("*",), State.RISK_CONTROL),
])
async def test_subscribe_with_services_and_min(bot: Bot, text: str, services: tuple[str, ...],
                                               minimum: State) -> None:
    await bot.ok(text)
    sub = bot.sub()
    assert sub is not None and (sub.services, sub.min_state) == (services, minimum)


async def test_subscribe_again_narrows_then_widens_and_keeps_the_minimum(bot: Bot) -> None:
    await bot.ok("subscribe --min suspended")
    message = await bot.ok("subscribe veo-3.1")  # everything → just veo-3.1
    assert bot.sub().services == ("veo-3.1",)  # type: ignore[union-attr]
    assert bot.sub().min_state is State.SUSPENDED  # type: ignore[union-attr]
    assert "veo-3.1" in message.text and "suspended or worse" in message.text
    await bot.ok("subscribe kling-reverse")
    assert bot.sub().services == ("veo-3.1", "kling-reverse")  # type: ignore[union-attr]
    await bot.ok("subscribe *")
    assert bot.sub().services == ("*",)  # type: ignore[union-attr]


async def test_subscribe_only_an_exclusion_does_not_make_a_silent_subscription(bot: Bot) -> None:
    """``subscribe !sora-2-reverse`` must mean "all but sora-2-reverse" or be refused as bad
    input; a stored subscription that covers no service at all is neither."""
    message, _ = await bot.run("subscribe !sora-2-reverse")
    sub = bot.sub()
    if sub is None:
        assert is_usage_error(message, "subscribe")
    else:
        heard = {i for i in IDS if sub.covers(i)}
        assert heard == set(IDS) - {"sora-2-reverse"}, f"{sub.services} → {message.plain()}"


@pytest.mark.parametrize(("text", "says"), [
    ("subscribe sora-3", "'sora-3' matches no service; known: " + ", ".join(IDS)),
    ("subscribe veo-3.1,bad$id", "'bad$id' is not a service id or glob"),
    ("subscribe --min loud", "--min 'loud': use degraded, risk_control or suspended"),
    ("subscribe --min operational veo-3.1", "use degraded, risk_control or suspended"),
])
async def test_subscribe_bad_input_changes_nothing(bot: Bot, text: str, says: str) -> None:
    await bot.ok("subscribe veo-3.1")
    before = bot.snapshot()
    message, _ = await bot.run(text)
    assert is_usage_error(message, "subscribe")
    assert says in message.title
    assert bot.snapshot() == before


async def test_unsubscribe_one_service_from_everything_excludes_it(bot: Bot) -> None:
    await bot.ok("subscribe --min risk")
    message = await bot.ok("unsubscribe sora-2-reverse", user="U-bob")
    sub = bot.sub()
    assert sub is not None
    assert sub.services == ("*", "!sora-2-reverse")
    assert sub.min_state is State.RISK_CONTROL and sub.created_by == "U-alice"
    assert not sub.covers("sora-2-reverse") and sub.covers("sora-2-relay")
    assert "except sora-2-reverse" in message.text
    assert not message.ephemeral and "<@U-bob>" in message.context


@pytest.mark.parametrize(("first", "then"), [
    ("subscribe", "unsubscribe"),
    ("subscribe sora-2*,veo-3.1", "unsubscribe"),
    ("subscribe veo-3.1", "unsubscribe veo-3.1"),
    ("subscribe veo-3.1 kling-reverse", "unsubscribe kling-reverse,veo-3.1"),
    ("subscribe", "unsubscribe *"),
])
async def test_unsubscribing_from_everything_ends_the_subscription(bot: Bot, first: str,
                                                                   then: str) -> None:
    await bot.ok(first)
    await bot.ok("digest 18:00")
    message = await bot.ok(then)
    assert bot.sub() is None
    assert "Alerts off" in message.title and not message.ephemeral


async def test_unsubscribe_where_there_is_nothing(bot: Bot) -> None:
    message = await bot.ok("unsubscribe")
    assert message.ephemeral and "no alerts to stop" in message.title
    assert bot.store.subscriptions() == []


async def test_unsubscribe_an_unknown_service_changes_nothing(bot: Bot) -> None:
    await bot.ok("subscribe")
    before = bot.snapshot()
    message, _ = await bot.run("unsubscribe sora-3")
    assert is_usage_error(message, "unsubscribe")
    assert bot.snapshot() == before


async def test_subscriptions_of_this_workspace(bot: Bot) -> None:
    message = await bot.ok("subscriptions")
    assert message.ephemeral and "No channel here" in message.title
    await bot.ok("subscribe", channel="C1")
    await bot.ok("digest 08:30 Europe/Berlin", channel="C1")
    await bot.ok("subscribe sora-2* --min suspended", channel="C2")
    await bot.ok("subscribe veo-3.1", channel="C9", workspace="T-other")
    message = await bot.ok("subscriptions", channel="C2", admin=False)
    assert message.ephemeral
    assert message.title == "Alert subscriptions (2)"
    assert message.table is not None
    assert message.table.rows == (
        ("<#C1>", "all services", "degraded or worse", "08:30 Europe/Berlin"),
        ("<#C2> (this channel)", "sora-2*", "suspended or worse", "off"),
    )


# --- digest -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "at", "tz", "claimed", "starts"), [
    ("digest 18:00 Europe/Berlin", "18:00", "Europe/Berlin", None, "today"),
    ("digest 08:00 Europe/Berlin", "08:00", "Europe/Berlin", date(2026, 11, 21), "tomorrow"),
    ("digest 7:05", "07:05", "UTC", date(2026, 11, 21), "tomorrow"),
    ("digest 23:00", "23:00", "UTC", None, "today"),
    ("digest 03:00 Asia/Shanghai", "03:00", "Asia/Shanghai", date(2026, 11, 21), "tomorrow"),
])
async def test_digest_set(bot: Bot, text: str, at: str, tz: str, claimed: date | None,
                          starts: str) -> None:
    await bot.ok("subscribe")
    message = await bot.ok(text)
    sub = bot.sub()
    assert sub is not None
    assert (sub.digest_time, sub.digest_tz, sub.last_digest_on) == (at, tz, claimed)
    assert message.title == f"🗞️ Daily digest at {at} {tz}"
    assert f"First one {starts}." in message.text and not message.ephemeral


async def test_digest_time_alone_keeps_the_timezone_and_off_stops_it(bot: Bot) -> None:
    await bot.ok("subscribe")
    await bot.ok("digest 08:00 Europe/Berlin")
    await bot.ok("digest 21:00")
    sub = bot.sub()
    assert sub is not None and (sub.digest_time, sub.digest_tz) == ("21:00", "Europe/Berlin")
    message = await bot.ok("digest off")
    sub = bot.sub()
    assert sub is not None and sub.digest_time is None
    assert sub.services == ("*",)  # the alerts stay
    assert "off" in message.title


@pytest.mark.parametrize("change", [["digest 18:00"], ["digest off", "digest 18:00"],
                                    ["digest 18:00 Europe/Berlin"]])
async def test_moving_the_digest_later_after_todays_went_out_gives_no_second_one(
        bot: Bot, change: list[str]) -> None:
    bot.clock.now = NOW - 2 * H  # 07:00 UTC
    await bot.ok("subscribe")
    await bot.ok("digest 08:00")
    sub = bot.sub()
    assert sub is not None and sub.last_digest_on is None  # today's is still ahead
    bot.clock.now = NOW - H  # 08:00 UTC: today's digest is due and goes out
    assert digest_due(sub, bot.clock()) == date(2026, 11, 21)
    bot.store.claim_digest(sub.id, date(2026, 11, 21),
                           OutboxItem("d1", "slack", "C1", Message(title="digest")), bot.clock())
    bot.clock.now = NOW  # 09:00 UTC: an admin moves it to the evening
    for text in change:
        await bot.ok(text)
    sub = bot.sub()
    assert sub is not None
    evening = datetime(2026, 11, 21, 18, 30, tzinfo=UTC)  # 18:30 or 19:30 local
    assert digest_due(sub, evening) is None, "a second digest the same day"
    assert digest_due(sub, evening + timedelta(days=1)) == date(2026, 11, 22)


async def test_digest_needs_a_subscription(bot: Bot) -> None:
    message = await bot.ok("digest 09:00")
    assert message.ephemeral and "Subscribe this channel first" in message.title
    assert bot.store.subscriptions() == []


@pytest.mark.parametrize(("text", "says"), [
    ("digest", "say when"),
    ("digest 25:00", "'25:00' is not a time; use HH:MM"),
    ("digest 9am", "'9am' is not a time"),
    ("digest 09:00 Mars/Olympus", "'Mars/Olympus' is not an IANA timezone"),
    ("digest 09:00 UTC please", "too many words"),
    ("digest off now", "takes nothing more"),
])
async def test_digest_bad_input_changes_nothing(bot: Bot, text: str, says: str) -> None:
    await bot.ok("subscribe")
    await bot.ok("digest 18:00 Europe/Berlin")
    before = bot.snapshot()
    message, _ = await bot.run(text)
    assert is_usage_error(message, "digest HH:MM [TIMEZONE] | off | now")
    assert says in message.title
    assert bot.snapshot() == before


async def test_digest_now_enqueues_exactly_one_post_for_the_channel(bot: Bot) -> None:
    await bot.ok("subscribe veo-3.1", channel="C1")
    await bot.ok("subscribe", channel="C2")
    message, check = await bot.run("digest now", channel="C1", admin=False)
    assert message.ephemeral and "on its way" in message.title
    assert check.calls == 0  # anyone may ask for one
    posts = bot.store.pending_posts()
    assert [(p.platform, p.channel) for p in posts] == [("slack", "C1")]
    assert posts[0].message.title == "Digest for C1"
    assert bot.enqueued == 1
    assert [(s.channel, s.services, now) for s, now in bot.built] == [("C1", ("veo-3.1",), NOW)]


async def test_digest_now_in_an_unsubscribed_channel_covers_everything(bot: Bot) -> None:
    await bot.ok("digest now", channel="C7")
    assert [p.channel for p in bot.store.pending_posts()] == ["C7"]
    assert [(s.channel, s.services) for s, _ in bot.built] == [("C7", ("*",))]
    assert bot.store.subscriptions() == []


async def test_digest_now_with_the_real_builder(store: Store) -> None:
    for sid, state in (("sora-2-relay", State.OPERATIONAL), ("sora-2-reverse", State.RISK_CONTROL),
                       ("veo-3.1", State.OPERATIONAL)):
        store.save_health(Health(sid, state, since=NOW - 3 * H, reason=state.value,
                                 last_checked=NOW - timedelta(minutes=1)))
    bot = Bot(store, digest=lambda sub, now: build_digest(store, SERVICES, sub, now))
    await bot.ok("subscribe sora-2*")
    await bot.ok("digest 08:00 Europe/Berlin")
    await bot.ok("digest now")
    posts = store.pending_posts()
    assert len(posts) == 1 and posts[0].channel == "C1"
    digest = posts[0].message
    assert digest.title == "Daily digest — Sat 21 Nov 2026"
    assert digest.table is not None
    assert [row[1] for row in digest.table.rows] == [NAMES["sora-2-relay"],
                                                     NAMES["sora-2-reverse"]]
    assert NAMES["veo-3.1"] not in digest.plain()  # not subscribed here
    assert "Europe/Berlin" in digest.context
    assert [a.filename for a in digest.attachments] == ["digest.png"]
    assert digest.attachments[0].content.startswith(b"\x89PNG")


async def test_digest_now_without_a_builder_says_so(store: Store) -> None:
    bot = Bot(store, digest=None)
    message, _ = await bot.run("digest now")
    assert message.ephemeral and "not available" in message.title
    assert store.pending_posts() == []


# --- maintenance ------------------------------------------------------------------------------

async def test_maintenance_mutes_a_service_until_it_ends(bot: Bot) -> None:
    message = await bot.ok("maintenance sora-2-relay 2h db upgrade")
    windows = bot.store.active_maintenance("sora-2-relay", NOW)
    assert [(w.source, w.starts_at, w.ends_at, w.reason) for w in windows] == [
        ("admin", NOW, NOW + 2 * H, "db upgrade")]
    assert bot.store.active_maintenance("sora-2-relay", NOW + 2 * H - timedelta(seconds=1))
    assert bot.store.active_maintenance("sora-2-relay", NOW + 2 * H) == []
    assert all(bot.store.active_maintenance(s, NOW) == [] for s in IDS if s != "sora-2-relay")
    assert bot.enqueued == 1  # announced and delivered now, not at the next probe cycle
    assert not message.ephemeral
    assert message.title == f"🔧 {NAMES['sora-2-relay']}: maintenance for 2h 0m"
    assert "db upgrade" in message.text and "2026-11-21 11:00 UTC" in message.text


async def test_maintenance_end_ends_it(bot: Bot) -> None:
    await bot.ok("maintenance sora-2-relay 2h")
    bot.clock.advance(1800)
    message = await bot.ok("maintenance end SORA-2-RELAY")
    later = NOW + timedelta(minutes=30)
    assert bot.store.active_maintenance("sora-2-relay", later) == []
    assert [w.ends_at for w in bot.windows()] == [later]
    assert "ended" in message.title and message.severity is Severity.OK
    message = await bot.ok("maintenance end sora-2-relay")
    assert message.ephemeral and "no admin maintenance to end" in message.title


async def test_maintenance_end_leaves_status_page_windows_alone(bot: Bot) -> None:
    bot.store.add_maintenance("sora-2-relay", NOW - H, NOW + H, "vendor work",
                              "statuspage:openai-status", external_id="inc-1")
    message = await bot.ok("maintenance end sora-2-relay")
    assert "no admin maintenance" in message.title
    assert len(bot.store.active_maintenance("sora-2-relay", NOW)) == 1


async def test_maintenance_list(bot: Bot) -> None:
    message = await bot.ok("maintenance", admin=False)
    assert message.ephemeral and message.title == "Nothing is under maintenance"
    await bot.ok("maintenance veo-3.1 30m quota reset")
    await bot.ok("maintenance kling-reverse 1d", user="U-carol")
    message = await bot.ok("maintenance", admin=False)
    assert message.ephemeral
    assert message.table is not None
    assert set(message.table.rows) == {
        (NAMES["veo-3.1"], "2026-11-21 09:30 UTC", "admin", "quota reset"),
        (NAMES["kling-reverse"], "2026-11-22 09:00 UTC", "admin", "declared by U-carol"),
    }


@pytest.mark.parametrize("text", [
    "maintenance sora-2-relay 14d", "maintenance sora-2-relay 2w",
    "maintenance sora-2-relay 1m", "maintenance sora-2-relay 2h " + "x" * 200,
])
async def test_maintenance_limits_are_inclusive(bot: Bot, text: str) -> None:
    await bot.ok(text)
    assert len(bot.store.active_maintenance("sora-2-relay", NOW)) == 1


@pytest.mark.parametrize(("text", "says"), [
    ("maintenance sora-2-relay 0m", "'0m' is not a duration"),
    ("maintenance sora-2-relay 15d", "is too long; at most 14 days"),
    ("maintenance sora-2-relay 3w", "is too long"),
    ("maintenance sora-2-relay 2x", "'2x' is not a duration"),
    ("maintenance sora-2-relay 2h " + "x" * 201, "the reason is too long (201 characters"),
    ("maintenance sora-2-relay 2h " + "word " * 60, "the reason is too long"),
    ("maintenance sora-2-relay", "say for how long"),
    ("maintenance sora-3 2h", "'sora-3' is not a service; known: " + ", ".join(IDS)),
    ("maintenance end", "say which service"),
    ("maintenance end sora-3", "'sora-3' is not a service"),
    ("maintenance sora-2-relay 9999999999d", "9999999999d"),  # too big for a timedelta
    ("maintenance sora-2-relay 99999999999999999999w", "w"),
])
async def test_maintenance_bad_input_stores_no_window(bot: Bot, text: str, says: str) -> None:
    message, _ = await bot.run(text)
    assert is_usage_error(message, "maintenance"), message.plain()
    assert says in message.title
    assert bot.windows() == []
    assert bot.enqueued == 0


# --- who may do what --------------------------------------------------------------------------

ADMIN_ONLY = [
    "subscribe", "subscribe veo-3.1 --min suspended", "unsubscribe", "unsubscribe sora-2-reverse",
    "digest 09:00", "digest 10:00 Europe/Berlin", "digest off", "maintenance sora-2-relay 2h",
    "maintenance end veo-3.1",
]


async def _set_up(bot: Bot) -> None:
    await bot.ok("subscribe sora-2* --min risk")
    await bot.ok("digest 07:00")
    await bot.ok("maintenance veo-3.1 3h")


@pytest.mark.parametrize("text", ADMIN_ONLY)
async def test_non_admins_are_refused_and_nothing_changes(bot: Bot, text: str) -> None:
    await _set_up(bot)
    before = bot.snapshot()
    enqueued = bot.enqueued
    message, check = await bot.run(text, admin=False, user="U-mallory")
    assert message.title.startswith("🚫 Only admins can")
    assert message.ephemeral and message.severity is Severity.WARNING
    assert check.calls == 1
    assert bot.snapshot() == before
    assert bot.enqueued == enqueued


@pytest.mark.parametrize("text", ADMIN_ONLY)
async def test_a_configured_admin_is_allowed_when_the_platform_says_no(bot: Bot,
                                                                       text: str) -> None:
    await _set_up(bot)
    before = bot.snapshot()
    message, _ = await bot.run(text, admin=False, user=LISTED)
    assert not message.title.startswith(("🚫", "⚠️")), message.plain()
    assert bot.snapshot() != before


@pytest.mark.parametrize("text", ADMIN_ONLY)
async def test_a_platform_admin_is_allowed(bot: Bot, text: str) -> None:
    await _set_up(bot)
    before = bot.snapshot()
    message, check = await bot.run(text, admin=True, user="U-someone")
    assert not message.title.startswith(("🚫", "⚠️")), message.plain()
    assert check.calls == 1
    assert bot.snapshot() != before


# --- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "usage"), [
    ("frobnicate", None),
    ('status "oops', None),
    ("status veo-3.1 kling-reverse", "status [SERVICE] [public]"),
    ("status --json", "status [SERVICE] [public]"),
    ("subscribe sora-3", "subscribe [SERVICES] [--min degraded|risk_control|suspended]"),
    ("unsubscribe --min degraded", "unsubscribe [SERVICES]"),
    ("digest", "digest HH:MM [TIMEZONE] | off | now"),
    ("maintenance sora-2-relay 2x", "maintenance [SERVICE DURATION [REASON] | end SERVICE]"),
    ("generate --colour red", "generate PROMPT"),
])
async def test_errors_are_private_and_show_the_usage(bot: Bot, text: str,
                                                     usage: str | None) -> None:
    message, _ = await bot.run(text)
    assert is_usage_error(message, usage), message.plain()


# --- neutralisation of what users typed -------------------------------------------------------

MENTIONS = ("<!channel>", "<!here>", "@everyone", "@here", "<@U123>")
ALL_MENTIONS = " ".join(MENTIONS)


def leaks(message: Message) -> list[str]:
    """Mentions that would still notify someone: the raw text, in any case."""
    return [m for s in strings(message) for m in MENTIONS if m.lower() in s.lower()]


@pytest.mark.parametrize("template", [
    # a maintenance reason, in the reply and in the listing
    "maintenance sora-2-relay 2h {all}",
    "maintenance",
    # unknown command, option, service or duration
    "{one}",
    "{one} status",
    "status {one}",
    "status --{one}",
    "maintenance {one} 2h",
    "maintenance end {one}",
    "maintenance sora-2-relay {one}",
    "subscribe {one}",
    "subscribe veo-3.1,{one}",
    "unsubscribe {one}",
    "subscribe --min {one}",
    "digest {one}",
    "digest 09:00 {one}",
    "generate {all}",
])
async def test_nothing_typed_comes_back_as_a_live_mention(bot: Bot, template: str) -> None:
    await bot.ok("subscribe")
    await bot.ok(f"maintenance veo-3.1 1h '{ALL_MENTIONS}'")
    found: dict[str, list[str]] = {}
    for one in MENTIONS:
        message, _ = await bot.run(template.format(one=f"'{one}'", all=ALL_MENTIONS))
        if leaks(message):
            found[one] = leaks(message)
    assert found == {}, f"live mentions in the reply to {template!r}: {found}"


async def test_a_bug_is_answered_privately_and_every_command_is_counted(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    async def broken(sub: Subscription, now: datetime) -> Message:
        raise RuntimeError("the digest builder has a bug")

    metrics = Metrics()
    commands = Commands(store=store, services=SERVICES, clock=FakeClock(NOW),
                        digest=broken, metrics=metrics)
    for text in ("digest now", "status", "frobnicate"):
        message = await commands.handle(Incoming("discord", "G1", "1", "7", text,
                                                 is_admin=IsAdmin(True)))
    failed = await commands.handle(Incoming("discord", "G1", "1", "7", "digest now",
                                            is_admin=IsAdmin(True)))
    assert failed.title == "⚠️ Something went wrong on our side" and failed.ephemeral
    assert "the digest builder has a bug" not in failed.plain()
    assert "the digest builder has a bug" in caplog.text
    assert message.title.startswith("⚠️ unknown command")
    counted = {s.labels["command"]: s.value for m in metrics.commands.collect()
               for s in m.samples if s.name.endswith("_total")
               and s.labels["platform"] == "discord"}
    assert counted == {"digest": 2, "status": 1, "unknown": 1}
