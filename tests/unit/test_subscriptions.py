"""Channel subscriptions: pattern matching, the ``--min`` filter, the pattern algebra behind
subscribe/unsubscribe, input parsing, and when a daily digest is due (DST included)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import load_settings
from bot.models import State
from bot.subscriptions import (
    Subscription,
    SubscriptionError,
    add_patterns,
    covers,
    describe,
    digest_due,
    first_claim,
    local_date,
    parse_digest_time,
    parse_min,
    parse_patterns,
    parse_timezone,
    remove_patterns,
)

IDS = [s.id for s in load_settings(None, {}).services]
BERLIN = ZoneInfo("Europe/Berlin")


def sub(services: tuple[str, ...] = ("*",), *, min_state: State = State.DEGRADED,
        digest_time: str | None = None, digest_tz: str = "UTC",
        last_digest_on: date | None = None) -> Subscription:
    return Subscription(id=1, platform="slack", workspace="T1", channel="C1", services=services,
                        min_state=min_state, digest_time=digest_time, digest_tz=digest_tz,
                        last_digest_on=last_digest_on)


def covered(patterns: tuple[str, ...]) -> set[str]:
    return {i for i in IDS if covers(patterns, i)}


def test_catalog_has_the_ids_these_tests_use() -> None:
    assert {"sora-2-relay", "sora-2-pro-relay", "sora-2-reverse", "sora-2-pro-reverse", "veo-3.1",
            "sora-images", "seedance-relay", "kling-reverse", "openai-status",
            "gcp-status"} <= set(IDS)


# --- matching ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("patterns", "expected"), [
    (("*",), set(IDS)),
    ((), set()),
    (("veo-3.1",), {"veo-3.1"}),
    (("sora-2*",), {"sora-2-relay", "sora-2-pro-relay", "sora-2-reverse", "sora-2-pro-reverse"}),
    (("sora-2-*-reverse",), {"sora-2-pro-reverse"}),
    (("*-reverse",), {"sora-2-reverse", "sora-2-pro-reverse", "kling-reverse"}),
    (("veo-3.?",), {"veo-3.1"}),
    (("*-status",), {"openai-status", "gcp-status"}),
    (("*", "!sora-2-reverse"), set(IDS) - {"sora-2-reverse"}),
    (("sora-2*", "!sora-2-pro*"), {"sora-2-relay", "sora-2-reverse"}),
    (("*", "!*-status", "!*-reverse"),
     {"sora-2-relay", "sora-2-pro-relay", "veo-3.1", "sora-images", "seedance-relay"}),
    (("!sora-2-reverse",), set()),  # an exclusion alone includes nothing
    (("veo-3.1", "!veo-3.1"), set()),  # exclusion wins over inclusion
    (("sora-2", "veo"), set()),  # ids match whole, not as prefixes
])
def test_covers_globs_and_exclusions(patterns: tuple[str, ...], expected: set[str]) -> None:
    assert covered(patterns) == expected
    assert {i for i in IDS if sub(patterns).covers(i)} == expected


S = State
WANTS = [
    # min_state, from, to, wanted
    (S.DEGRADED, S.OPERATIONAL, S.DEGRADED, True),
    (S.DEGRADED, S.DEGRADED, S.OPERATIONAL, True),
    (S.DEGRADED, S.OPERATIONAL, S.RETIRED, True),
    (S.DEGRADED, S.UNKNOWN, S.OPERATIONAL, False),
    (S.DEGRADED, S.OPERATIONAL, S.MAINTENANCE, False),
    (S.RISK_CONTROL, S.OPERATIONAL, S.DEGRADED, False),
    (S.RISK_CONTROL, S.DEGRADED, S.OPERATIONAL, False),
    (S.RISK_CONTROL, S.DEGRADED, S.RISK_CONTROL, True),
    (S.RISK_CONTROL, S.RISK_CONTROL, S.OPERATIONAL, True),
    (S.RISK_CONTROL, S.OPERATIONAL, S.SUSPENDED, True),
    (S.SUSPENDED, S.OPERATIONAL, S.DEGRADED, False),
    (S.SUSPENDED, S.DEGRADED, S.OPERATIONAL, False),  # a degraded recovery: not for this channel
    (S.SUSPENDED, S.RISK_CONTROL, S.OPERATIONAL, False),
    (S.SUSPENDED, S.OPERATIONAL, S.SUSPENDED, True),
    (S.SUSPENDED, S.SUSPENDED, S.OPERATIONAL, True),  # the recovery from its outage: sent
    (S.SUSPENDED, S.SUSPENDED, S.DEGRADED, True),
    (S.SUSPENDED, S.OPERATIONAL, S.RETIRED, True),
]


@pytest.mark.parametrize(("minimum", "frm", "to", "wanted"), WANTS)
def test_wants_by_min_state(minimum: State, frm: State, to: State, wanted: bool) -> None:
    assert sub(min_state=minimum).wants(frm, to) is wanted


# --- the pattern algebra of subscribe / unsubscribe ---------------------------------------------

@pytest.mark.parametrize(("current", "added", "expected"), [
    ((), ["sora-2*"], ("sora-2*",)),
    ((), [], ("*",)),
    (("veo-3.1",), [], ("*",)),
    (("veo-3.1",), ["*"], ("*",)),
    (("*",), ["veo-3.1", "kling-reverse"], ("veo-3.1", "kling-reverse")),  # naming narrows
    (("veo-3.1",), ["kling-reverse"], ("veo-3.1", "kling-reverse")),
    (("veo-3.1",), ["veo-3.1"], ("veo-3.1",)),
    (("*", "!sora-2-reverse"), ["sora-2-reverse"], ("*",)),  # lifts the exclusion
    (("sora-2*", "!sora-2-reverse"), ["sora-2-reverse"], ("sora-2*", "sora-2-reverse")),
])
def test_add_patterns(current: tuple[str, ...], added: list[str],
                      expected: tuple[str, ...]) -> None:
    assert add_patterns(current, added, IDS) == expected


@pytest.mark.parametrize(("current", "added"), [
    (("*", "!sora-2-reverse"), ["sora-2*"]),
    (("sora-2*", "!sora-2-reverse"), ["sora-2*"]),
    (("veo-3.1", "!sora-2-pro*"), ["sora-2*"]),
    (("veo-3.1",), ["sora-2*", "kling-reverse"]),
])
def test_after_subscribing_every_service_the_patterns_name_is_covered(
        current: tuple[str, ...], added: list[str]) -> None:
    after = add_patterns(current, added, IDS)
    named = {i for i in IDS if covers(added, i)}
    assert named <= covered(after), f"{after} leaves out {sorted(named - covered(after))}"


@pytest.mark.parametrize(("current", "removed", "expected"), [
    (("*",), ["sora-2-reverse"], ("*", "!sora-2-reverse")),  # excluded from the glob
    (("sora-2*",), ["sora-2-reverse"], ("sora-2*", "!sora-2-reverse")),
    (("sora-2*",), ["sora-2-pro*"], ("sora-2*", "!sora-2-pro*")),
    (("veo-3.1", "kling-reverse"), ["veo-3.1"], ("kling-reverse",)),
    (("veo-3.1", "kling-reverse"), ["sora-images"], ("veo-3.1", "kling-reverse")),
    (("*", "!sora-2-reverse"), ["sora-2-reverse"], ("*", "!sora-2-reverse")),
    (("veo-3.1",), ["veo-3.1"], ()),  # nothing left: the subscription ends
    (("*",), ["*"], ()),
    (("veo-3.1", "kling-reverse"), ["veo-3.1", "kling-reverse"], ()),
    (("sora-2*", "!sora-2-reverse"), ["sora-2*"], ()),  # only an exclusion left
])
def test_remove_patterns(current: tuple[str, ...], removed: list[str],
                         expected: tuple[str, ...]) -> None:
    assert remove_patterns(current, removed, IDS) == expected


@pytest.mark.parametrize(("current", "removed"), [
    (("*",), ["sora-2-reverse"]),
    (("*",), ["*-status"]),
    (("sora-2*", "veo-3.1"), ["sora-2-pro*"]),
    (("sora-2-relay", "veo-3.1"), ["sora-2*"]),  # a glob over services named one by one
    (("sora-2-relay", "sora-2-pro-relay"), ["*"]),
    (("sora-2-relay", "kling-reverse", "veo-3.1"), ["*-reverse", "sora-2*"]),
])
def test_after_unsubscribing_nothing_the_patterns_name_is_covered_and_the_rest_is_kept(
        current: tuple[str, ...], removed: list[str]) -> None:
    after = remove_patterns(current, removed, IDS)
    named = {i for i in IDS if covers(removed, i)}
    assert not covered(after) & named, f"{after} still covers {sorted(covered(after) & named)}"
    assert covered(after) == covered(current) - named


@pytest.mark.parametrize(("patterns", "text"), [
    (("*",), "all services"),
    (("*", "!sora-2-reverse"), "all services (except sora-2-reverse)"),
    (("sora-2*", "veo-3.1", "!sora-2-pro*", "!sora-2-reverse"),
     "sora-2*, veo-3.1 (except sora-2-pro*, sora-2-reverse)"),
])
def test_describe(patterns: tuple[str, ...], text: str) -> None:
    assert describe(patterns) == text


# --- parsing user input -----------------------------------------------------------------------

@pytest.mark.parametrize(("words", "expected"), [
    (["sora-2*,veo-3.1", "kling-*"], ["sora-2*", "veo-3.1", "kling-*"]),
    (["SORA-2-RELAY"], ["sora-2-relay"]),
    (["veo-3.1,veo-3.1", "veo-3.1"], ["veo-3.1"]),
    (["*", "!sora-2-reverse"], ["*", "!sora-2-reverse"]),
    ([" , veo-3.1 ,"], ["veo-3.1"]),
    (["*-status"], ["*-status"]),
])
def test_parse_patterns(words: list[str], expected: list[str]) -> None:
    assert parse_patterns(words, IDS) == expected


@pytest.mark.parametrize(("words", "named", "allowed"), [
    (["nope"], "nope", IDS),  # matches no service: the known ids are listed
    (["sora-3*"], "sora-3*", IDS),
    (["veo-3.1,bad$id"], "bad$id", ["letters, digits", "*", "?"]),
    (["veo-3.1,[ab]"], "[ab]", ["letters, digits"]),
])
def test_parse_patterns_errors_name_the_input_and_what_is_allowed(
        words: list[str], named: str, allowed: list[str]) -> None:
    with pytest.raises(SubscriptionError) as e:
        parse_patterns(words, IDS)
    assert f"'{named}'" in str(e.value)
    for word in allowed:
        assert word in str(e.value)


@pytest.mark.parametrize(("text", "state"), [
    ("degraded", State.DEGRADED), ("DEGRADED", State.DEGRADED),
    ("risk_control", State.RISK_CONTROL), ("risk-control", State.RISK_CONTROL),
    ("risk", State.RISK_CONTROL), (" suspended ", State.SUSPENDED),
])
def test_parse_min(text: str, state: State) -> None:
    assert parse_min(text) is state


@pytest.mark.parametrize("text", ["loud", "operational", "retired", "", "3"])
def test_parse_min_errors_name_the_input_and_the_choices(text: str) -> None:
    with pytest.raises(SubscriptionError) as e:
        parse_min(text)
    message = str(e.value)
    assert f"'{text}'" in message
    for choice in ("degraded", "risk_control", "suspended"):
        assert choice in message


@pytest.mark.parametrize(("text", "expected"), [
    ("09:00", "09:00"), ("9:00", "09:00"), (" 7:05 ", "07:05"), ("00:00", "00:00"),
    ("23:59", "23:59"),
])
def test_parse_digest_time(text: str, expected: str) -> None:
    assert parse_digest_time(text) == expected


@pytest.mark.parametrize("text", ["24:00", "9", "09:60", "9am", "", "09:00:00", "-1:00", "9.30"])
def test_parse_digest_time_errors(text: str) -> None:
    with pytest.raises(SubscriptionError) as e:
        parse_digest_time(text)
    assert f"'{text}'" in str(e.value)
    assert "HH:MM" in str(e.value)


@pytest.mark.parametrize("text", ["Europe/Berlin", "America/New_York", "Asia/Shanghai", "UTC"])
def test_parse_timezone(text: str) -> None:
    assert parse_timezone(text).key == text


@pytest.mark.parametrize("text", ["Mars/Olympus_Mons", "Berlin", "", "../etc/passwd", "+02:00"])
def test_parse_timezone_errors(text: str) -> None:
    with pytest.raises(SubscriptionError) as e:
        parse_timezone(text)
    assert f"'{text}'" in str(e.value)
    assert "IANA" in str(e.value) and "Europe/Berlin" in str(e.value)


# --- when the digest is due -------------------------------------------------------------------

def run_digests(s: Subscription, start: datetime, end: datetime,
                step: timedelta = timedelta(minutes=1)) -> list[datetime]:
    """Ask ``digest_due`` at every step, claiming what it returns; the times it fired."""
    fired: list[datetime] = []
    now = start
    while now < end:
        on = digest_due(s, now)
        if on is not None:
            assert on == local_date(s, now)
            fired.append(now)
            s = replace(s, last_digest_on=on)
        now += step
    return fired


def test_no_digest_time_is_never_due() -> None:
    assert run_digests(sub(), datetime(2026, 11, 20, tzinfo=UTC),
                       datetime(2026, 11, 22, tzinfo=UTC), timedelta(minutes=10)) == []


@pytest.mark.parametrize(("at", "tz"), [
    ("09:00", "UTC"), ("09:00", "America/New_York"), ("07:30", "Asia/Shanghai"),
    ("00:00", "Europe/Berlin"), ("23:55", "Pacific/Auckland"),
])
def test_fires_once_per_local_day_at_the_local_time(at: str, tz: str) -> None:
    zone, start = ZoneInfo(tz), datetime(2026, 11, 10, tzinfo=UTC)
    end = start + timedelta(days=5)
    s = sub(digest_time=at, digest_tz=tz, last_digest_on=first_claim(at, tz, start))
    fired = run_digests(s, start, end, timedelta(minutes=5))
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    wall = [datetime.combine(first_day + timedelta(days=k), time.fromisoformat(at), zone)
            for k in range(8)]
    expected = [w.astimezone(UTC) for w in wall if start <= w < end]
    assert len(expected) >= 4
    assert fired == expected


def test_not_before_the_time_and_due_from_it() -> None:
    s = sub(digest_time="09:00", digest_tz="Europe/Berlin", last_digest_on=date(2026, 11, 20))
    assert digest_due(s, datetime(2026, 11, 21, 7, 59, 59, tzinfo=UTC)) is None  # 08:59:59
    assert digest_due(s, datetime(2026, 11, 21, 8, 0, tzinfo=UTC)) == date(2026, 11, 21)
    assert digest_due(s, datetime(2026, 11, 21, 22, 59, tzinfo=UTC)) == date(2026, 11, 21)
    claimed = replace(s, last_digest_on=date(2026, 11, 21))
    assert digest_due(claimed, datetime(2026, 11, 21, 22, 59, tzinfo=UTC)) is None
    # 23:30 UTC is already the 22nd in Berlin, but before 09:00 there
    assert digest_due(claimed, datetime(2026, 11, 21, 23, 30, tzinfo=UTC)) is None


def test_the_local_date_is_the_subscribers_not_utcs() -> None:
    s = sub(digest_time="08:00", digest_tz="Asia/Shanghai", last_digest_on=date(2026, 11, 20))
    # 01:00 UTC on the 21st is 09:00 on the 21st in Shanghai
    assert digest_due(s, datetime(2026, 11, 21, 1, 0, tzinfo=UTC)) == date(2026, 11, 21)
    # 23:30 UTC on the 20th is 07:30 on the 21st: not yet
    assert digest_due(s, datetime(2026, 11, 20, 23, 30, tzinfo=UTC)) is None


def test_catch_up_after_downtime_is_one_digest_for_today() -> None:
    s = sub(digest_time="09:00", digest_tz="Europe/Berlin", last_digest_on=date(2026, 11, 15))
    # back up at 14:00 Berlin on the 21st, after five missed days
    fired = run_digests(s, datetime(2026, 11, 21, 13, 0, tzinfo=UTC),
                        datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    assert fired == [datetime(2026, 11, 21, 13, 0, tzinfo=UTC)]


def test_back_up_before_the_time_waits_for_it() -> None:
    s = sub(digest_time="09:00", digest_tz="Europe/Berlin", last_digest_on=date(2026, 11, 15))
    fired = run_digests(s, datetime(2026, 11, 21, 5, 0, tzinfo=UTC),
                        datetime(2026, 11, 21, 23, 0, tzinfo=UTC))
    assert fired == [datetime(2026, 11, 21, 8, 0, tzinfo=UTC)]


def test_dst_spring_forward_a_skipped_time_fires_once_right_after_the_jump() -> None:
    # Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day
    s = sub(digest_time="02:30", digest_tz="Europe/Berlin", last_digest_on=date(2026, 3, 28))
    fired = run_digests(s, datetime(2026, 3, 28, 23, 0, tzinfo=UTC),  # 00:00 CET
                        datetime(2026, 3, 29, 22, 0, tzinfo=UTC))  # 00:00 CEST the next day
    assert fired == [datetime(2026, 3, 29, 1, 0, tzinfo=UTC)]  # 03:00 CEST, the first instant
    assert fired[0].astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"


def test_dst_fall_back_a_repeated_time_fires_once() -> None:
    # Europe/Berlin, 2026-10-25: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice
    s = sub(digest_time="02:30", digest_tz="Europe/Berlin", last_digest_on=date(2026, 10, 24))
    fired = run_digests(s, datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # 00:00 CEST
                        datetime(2026, 10, 25, 23, 0, tzinfo=UTC))  # 00:00 CET the next day
    assert fired == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # the first 02:30 (CEST)
    again = replace(s, last_digest_on=date(2026, 10, 25))
    assert digest_due(again, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) is None  # 02:30 CET


def test_dst_weeks_around_both_changes_one_digest_a_day() -> None:
    s = sub(digest_time="02:30", digest_tz="Europe/Berlin")
    for start in (datetime(2026, 3, 25, tzinfo=UTC), datetime(2026, 10, 21, tzinfo=UTC)):
        fired = run_digests(s, start, start + timedelta(days=8), timedelta(minutes=15))
        days = [f.astimezone(BERLIN).date() for f in fired]
        assert len(days) == len(set(days)) == 8


@pytest.mark.parametrize(("at", "tz", "now", "claimed"), [
    # set after today's time has passed: today counts as done, the first digest is tomorrow
    ("09:00", "UTC", datetime(2026, 11, 21, 10, 0, tzinfo=UTC), date(2026, 11, 21)),
    ("09:00", "UTC", datetime(2026, 11, 21, 9, 0, tzinfo=UTC), date(2026, 11, 21)),
    # still ahead today: nothing claimed
    ("09:00", "UTC", datetime(2026, 11, 21, 8, 59, tzinfo=UTC), None),
    # 09:00 UTC is 10:00 in Berlin: an 09:30 Berlin digest has passed, 18:00 has not
    ("09:30", "Europe/Berlin", datetime(2026, 11, 21, 9, 0, tzinfo=UTC), date(2026, 11, 21)),
    ("18:00", "Europe/Berlin", datetime(2026, 11, 21, 9, 0, tzinfo=UTC), None),
    # 20:00 UTC on the 21st is 04:00 on the 22nd in Shanghai: the local date is claimed
    ("03:00", "Asia/Shanghai", datetime(2026, 11, 21, 20, 0, tzinfo=UTC), date(2026, 11, 22)),
])
def test_first_claim(at: str, tz: str, now: datetime, claimed: date | None) -> None:
    assert first_claim(at, tz, now) == claimed


@pytest.mark.parametrize(("set_at", "first"), [
    (datetime(2026, 11, 21, 10, 0, tzinfo=UTC), datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
    (datetime(2026, 11, 21, 8, 0, tzinfo=UTC), datetime(2026, 11, 21, 9, 0, tzinfo=UTC)),
])
def test_a_digest_set_after_todays_time_starts_tomorrow(set_at: datetime,
                                                         first: datetime) -> None:
    s = sub(digest_time="09:00", last_digest_on=first_claim("09:00", "UTC", set_at))
    fired = run_digests(s, set_at, set_at + timedelta(days=2))
    assert fired[0] == first
    assert len(fired) == 2
