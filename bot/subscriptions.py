"""Channel subscriptions: which services a channel hears about, how bad it must get, and when its
daily digest is due. Pure: the store keeps them, these functions decide with ``now`` passed in.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.messages import neutralize
from bot.models import State

ALL = "*"
# How bad a state is, for ``--min``: a transition is posted when either end reaches the minimum.
RANK: dict[State, int] = {State.DEGRADED: 1, State.RISK_CONTROL: 2, State.SUSPENDED: 3,
                          State.RETIRED: 3}
MIN_CHOICES: dict[str, State] = {
    "degraded": State.DEGRADED, "risk_control": State.RISK_CONTROL,
    "risk-control": State.RISK_CONTROL, "risk": State.RISK_CONTROL,
    "suspended": State.SUSPENDED,
}
_PATTERN = re.compile(r"!?[a-z0-9*?][a-z0-9._*?-]{0,63}")
_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class SubscriptionError(ValueError):
    """Bad user input for a subscription; the message says what is allowed."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """One channel's subscription (unique per platform, workspace and channel)."""

    id: int
    platform: str
    workspace: str
    channel: str
    services: tuple[str, ...]  # ids and globs; "!pattern" excludes; ("*",) = everything
    min_state: State = State.DEGRADED
    digest_time: str | None = None  # "HH:MM" local to ``digest_tz``; None = no digest
    digest_tz: str = "UTC"
    last_digest_on: date | None = None  # local date of the last digest claimed
    created_by: str = ""

    def covers(self, service: str) -> bool:
        return covers(self.services, service)

    def wants(self, from_state: State, to_state: State) -> bool:
        """A change is worth this channel's attention if either end is at least ``min_state``."""
        floor = RANK[self.min_state]
        return max(RANK.get(from_state, 0), RANK.get(to_state, 0)) >= floor


def covers(patterns: Sequence[str], service: str) -> bool:
    """Included by a pattern and not excluded by a ``!pattern``."""
    included = any(fnmatch.fnmatchcase(service, p) for p in patterns if not p.startswith("!"))
    return included and not any(fnmatch.fnmatchcase(service, p[1:]) for p in patterns
                                if p.startswith("!"))


def parse_patterns(text: Iterable[str], known: Sequence[str]) -> list[str]:
    """Split ``sora-2*,veo-3.1 kling-*`` into patterns; each must match a known service id."""
    patterns = [p.strip().lower() for chunk in text for p in chunk.split(",") if p.strip()]
    for p in patterns:
        if not _PATTERN.fullmatch(p):
            raise SubscriptionError(f"'{neutralize(p[:64])}' is not a service id or glob "
                                    "(letters, digits, . _ -, * and ?)")
        if not _matched(p.removeprefix("!"), known):
            raise SubscriptionError(f"'{p}' matches no service; known: {', '.join(known)}")
    return list(dict.fromkeys(patterns))


def _matched(pattern: str, known: Sequence[str]) -> set[str]:
    return {k for k in known if fnmatch.fnmatchcase(k, pattern)}


def add_patterns(current: Sequence[str], added: Sequence[str], known: Sequence[str]
                 ) -> tuple[str, ...]:
    """Subscribe to more. ``*`` replaces everything; naming services on a subscription to
    everything narrows it to them; an added pattern lifts the exclusions it covers; only
    ``!patterns`` exclude them from what there is (everything, for a new subscription)."""
    includes = [p for p in added if not p.startswith("!")]
    excludes = [p for p in added if p.startswith("!")]
    if not added or ALL in includes:
        return (ALL, *excludes)
    if not includes:
        return tuple(dict.fromkeys([*(current or (ALL,)), *excludes]))
    if tuple(current) == (ALL,):
        return tuple(dict.fromkeys([*includes, *excludes]))
    wanted = set().union(*(_matched(p, known) for p in includes))
    kept = [p for p in current if not (p.startswith("!") and _matched(p[1:], known) <= wanted)]
    if ALL not in kept:  # with everything in already, lifting the exclusions was the point
        kept += includes
    return tuple(dict.fromkeys([*kept, *excludes]))


def remove_patterns(current: Sequence[str], removed: Sequence[str], known: Sequence[str]
                    ) -> tuple[str, ...]:
    """Unsubscribe from some: drop the patterns whose services all fall under the removed
    ones; what a remaining glob still covers is excluded with ``!pattern``. Returns () when
    nothing is left (the subscription ends)."""
    left = list(current)
    for r in (p.removeprefix("!") for p in removed):
        gone = _matched(r, known)
        left = [p for p in left if p.startswith("!") or not _matched(p, known) <= gone]
        if any(covers(left, k) for k in gone):
            left.append("!" + r)
    if not any(not p.startswith("!") for p in left):
        return ()
    return tuple(dict.fromkeys(left))


def describe(patterns: Sequence[str]) -> str:
    """``all services``, ``sora-2*, veo-3.1 (except sora-2-reverse)``."""
    included = [p for p in patterns if not p.startswith("!")]
    excluded = [p[1:] for p in patterns if p.startswith("!")]
    text = "all services" if included == [ALL] else ", ".join(included)
    return text + (f" (except {', '.join(excluded)})" if excluded else "")


def parse_min(text: str) -> State:
    state = MIN_CHOICES.get(text.strip().lower())
    if state is None:
        raise SubscriptionError(f"--min '{neutralize(text[:40])}': use degraded, risk_control "
                                "or suspended")
    return state


def parse_digest_time(text: str) -> str:
    m = _HHMM.fullmatch(text.strip())
    if not m:
        raise SubscriptionError(f"'{neutralize(text[:40])}' is not a time; use HH:MM (24-hour), "
                                "e.g. 09:00")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def parse_timezone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise SubscriptionError(f"'{neutralize(text[:64])}' is not an IANA timezone (e.g. "
                                "Europe/Berlin, "
                                "America/New_York, Asia/Shanghai, UTC)") from None


def local_date(sub: Subscription, now: datetime) -> date:
    return now.astimezone(ZoneInfo(sub.digest_tz)).date()


def digest_due(sub: Subscription, now: datetime) -> date | None:
    """The local date whose digest is due now, or None.

    Due once the local wall clock has reached ``digest_time`` on a local date after the last
    one claimed. Catch-up after downtime posts one digest for today, not one per missed day; a
    time skipped by a DST jump fires at the first instant after it; a repeated hour fires once.
    """
    if sub.digest_time is None:
        return None
    local = now.astimezone(ZoneInfo(sub.digest_tz))
    hh, mm = (int(x) for x in sub.digest_time.split(":"))
    if local.time() < time(hh, mm):
        return None
    today = local.date()
    if sub.last_digest_on is not None and sub.last_digest_on >= today:
        return None
    return today


def first_claim(digest_time: str, tz: str, now: datetime) -> date | None:
    """When a digest time is set after today's time has passed, the first digest is tomorrow's:
    returns the date to record as already claimed (or None when today's is still ahead)."""
    local = now.astimezone(ZoneInfo(tz))
    hh, mm = (int(x) for x in digest_time.split(":"))
    return local.date() if local.time() >= time(hh, mm) else None
