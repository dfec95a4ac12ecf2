"""Transitions → per-subscription filtering → messages → the durable outbox.

Every alert is derived from a stored transition. ``Alerts.enqueue`` turns the transitions not yet
handed over into outbox posts and marks them handed over in the same transaction, so a crash
either enqueues all of a pass or none of it, and an idempotency key per (transition, channel)
keeps a re-run from enqueueing twice. ``bot.outbox`` delivers the posts.

Per channel and pass: changes that start or worsen an episode are top-level posts (several at
once become one batched post) and open the service's alert thread; recoveries and easings are
replies in that thread. Maintenance windows mute the services they cover and are announced once
at their start and once at their end. Nothing is said about ``unknown — not configured``.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.messages import Field, Message, Table, format_duration, neutralize, severity_of
from bot.models import Health, Outcome, State, Transition
from bot.store import MaintenanceWindow, OutboxItem, Store
from bot.subscriptions import RANK, Subscription

log = logging.getLogger(__name__)
_EPISODE_LOOKBACK = 100  # transitions read back to find where a bad episode began
_STALE_NOTICE = timedelta(hours=1)  # a window that ended longer ago than this is not announced
_REMINDED = (State.DEGRADED, State.RISK_CONTROL, State.SUSPENDED)  # retired is final


def transition_message(t: Transition, *, name: str, bad_since: datetime | None = None
                       ) -> Message:
    """One alert for one transition; a recovery says how long the bad episode lasted."""
    to = t.to_state
    if _is_recovery(t):
        lasted = format_duration((t.at - bad_since).total_seconds()) if bad_since else None
        title = f"{to.emoji} {name} recovered" + (f" after {lasted}" if lasted else "")
    elif to is State.OPERATIONAL and t.from_state is State.MAINTENANCE:
        title = f"{to.emoji} {name}: maintenance over, operational"
    else:
        title = f"{to.emoji} {name} {to.phrase}"
    fields = [Field("State", f"{t.from_state.emoji} {t.from_state.label} → {to.emoji} {to.label}"),
              Field("Since", t.at.strftime("%Y-%m-%d %H:%M UTC"))]
    evidence = t.evidence
    if "http_status" in evidence:
        fields.append(Field("HTTP", str(evidence["http_status"])))
    if "success_rate" in evidence:
        fields.append(Field("Success rate", f"{float(str(evidence['success_rate'])):.0%}"))
    if "latency_ms" in evidence:
        fields.append(Field("Latency", f"{float(str(evidence['latency_ms'])):,.0f} ms"))
    return Message(
        title=neutralize(title), text=neutralize(t.reason), severity=severity_of(to),
        fields=tuple(fields), context=f"service {t.service} · transition #{t.id}",
        thread_key=t.service)


def batch_message(ts: Sequence[Transition], *, names: Mapping[str, str],
                  bad_since: Mapping[int, datetime | None]) -> Message:
    """Several changes in one post: a table, and a text that reads well on its own."""
    worst = max(ts, key=lambda t: RANK.get(t.to_state, 0)).to_state
    if all(_is_recovery(t) for t in ts):
        title = f"{State.OPERATIONAL.emoji} {len(ts)} services recovered"
    elif all(t.to_state is State.RETIRED for t in ts):
        title = f"{worst.emoji} {len(ts)} models retired"
    elif all(t.to_state.is_bad for t in ts):
        title = f"{worst.emoji} {len(ts)} services in trouble"
    else:
        title = f"{worst.emoji} {len(ts)} services changed state"
    rows, lines = [], []
    for t in ts:
        name = names.get(t.service, t.service)
        single = transition_message(t, name=name, bad_since=bad_since.get(t.id or 0))
        rows.append((t.to_state.emoji, name, f"{t.from_state.label} → {t.to_state.label}",
                     neutralize(t.reason)))
        lines.append(f"{single.title}: {single.text}")
    return Message(
        title=title, text="\n".join(lines), severity=severity_of(worst),
        table=Table(("", "Service", "Change", "Why"), tuple(rows)),
        context=f"{ts[0].at.strftime('%Y-%m-%d %H:%M UTC')} · transitions "
                + ", ".join(f"#{t.id}" for t in ts))


def reminder_message(name: str, health: Health, now: datetime) -> Message:
    since = health.since or now
    state = health.state
    return Message(
        title=f"{state.emoji} {name} still {state.label} after "
              f"{format_duration((now - since).total_seconds())}",
        text=neutralize(health.reason), severity=severity_of(state),
        context=f"since {since.strftime('%Y-%m-%d %H:%M UTC')} · reminder")


def maintenance_message(notices: Sequence[tuple[MaintenanceWindow, bool]],
                        names: Mapping[str, str], now: datetime) -> Message:
    """Announce the start and/or end of maintenance windows (one post per channel and pass);
    the windows one status-page announcement opened for several services share a line."""
    groups: dict[tuple[str, str, datetime | None, bool], list[str]] = defaultdict(list)
    for w, is_end in notices:
        groups[(w.reason, w.source, w.ends_at, is_end)].append(names.get(w.service, w.service))
    lines = []
    for (reason, source, ends_at, is_end), services in groups.items():
        what = neutralize(reason) or "maintenance"
        who = ", ".join(services)
        if is_end:
            lines.append(f"Over: {what} — {who}")
            continue
        until = f"until {ends_at.strftime('%Y-%m-%d %H:%M UTC')}" if ends_at else "until ended"
        by = "set by an admin" if source == "admin" else "announced on the status page"
        lines.append(f"{what} ({by}) — {who}, {until}. Alerts for these are muted.")
    ended = all(is_end for _, is_end in notices)
    subject = neutralize(notices[0][0].reason) if len(groups) == 1 else f"{len(groups)} windows"
    return Message(title=f"🔧 Maintenance {'over' if ended else 'started'}: {subject}",
                   text="\n".join(lines),
                   severity=severity_of(State.OPERATIONAL if ended else State.MAINTENANCE),
                   context=now.strftime("%Y-%m-%d %H:%M UTC"))


@dataclass(frozen=True, slots=True)
class _Post:
    transition: Transition
    reply: bool  # True: a reply under the service's thread; False: a top-level post


def _is_recovery(t: Transition) -> bool:
    return t.to_state is State.OPERATIONAL and t.from_state.is_bad


def _is_reply(t: Transition) -> bool:
    """Recoveries and easings (a bad state to a milder one) belong in the episode's thread."""
    if _is_recovery(t):
        return True
    return (t.from_state.is_bad and t.to_state.is_bad
            and RANK.get(t.to_state, 0) < RANK.get(t.from_state, 0))


def worth_posting(t: Transition) -> bool:
    """Nobody needs to hear that an unconfigured service is (or stops being) unconfigured, that
    data began, or about maintenance state changes (the windows themselves are announced)."""
    not_configured = Outcome.NOT_CONFIGURED.value
    if t.to_state is State.UNKNOWN and t.evidence.get("outcome") == not_configured:
        return False
    if t.from_state is State.UNKNOWN and t.evidence.get("from_cause") == not_configured:
        return False
    if t.to_state is State.MAINTENANCE or (
            t.from_state is State.MAINTENANCE and t.to_state is State.OPERATIONAL):
        return False
    return not (t.from_state is State.UNKNOWN and t.to_state is State.OPERATIONAL)


def plan_transitions(
    transitions: Sequence[Transition], subs: Sequence[Subscription], *,
    names: Mapping[str, str], bad_since: Mapping[int, datetime | None],
    opener: Callable[[str, str, str], str | None],
) -> list[OutboxItem]:
    """Pure fan-out: which channel hears about which transition, batched per channel.

    ``opener(platform, channel, service)`` gives the key of the post that opened the service's
    current thread there (from earlier passes); this pass's own openers take precedence.
    """
    items: list[OutboxItem] = []
    for sub in subs:
        chosen = [_Post(t, _is_reply(t)) for t in transitions
                  if sub.covers(t.service) and sub.wants(t.from_state, t.to_state)]
        if not chosen:
            continue
        where = f"{sub.platform}:{sub.channel}"
        top = [p.transition for p in chosen if not p.reply]
        opened: dict[str, str] = {}
        if top:
            key = _key(top, where)
            services = tuple(dict.fromkeys(t.service for t in top))
            items.append(OutboxItem(key, sub.platform, sub.channel,
                                    _message(top, names, bad_since), opens=services))
            opened = dict.fromkeys(services, key)
        by_thread: dict[str | None, list[Transition]] = defaultdict(list)
        for p in chosen:
            if p.reply:
                s = p.transition.service
                by_thread[opened.get(s) or opener(sub.platform, sub.channel, s)].append(
                    p.transition)
        for thread, ts in by_thread.items():
            items.append(OutboxItem(_key(ts, where), sub.platform, sub.channel,
                                    _message(ts, names, bad_since), reply_to_key=thread))
    return items


def _key(ts: Sequence[Transition], where: str) -> str:
    """The idempotency key of a post about ``ts`` in one channel."""
    return "t" + ",".join(str(t.id) for t in ts) + f"@{where}"


def _message(ts: Sequence[Transition], names: Mapping[str, str],
             bad_since: Mapping[int, datetime | None]) -> Message:
    """One transition's own alert, or a batch of several."""
    if len(ts) > 1:
        return batch_message(ts, names=names, bad_since=bad_since)
    t = ts[0]
    return transition_message(t, name=names.get(t.service, t.service),
                              bad_since=bad_since.get(t.id or 0))


class Alerts:
    """Fills the outbox from the store: transitions, reminders and maintenance notices."""

    def __init__(self, *, store: Store, names: Mapping[str, str],
                 remind_every: timedelta | None = None) -> None:
        self._store = store
        self._names = names
        self._remind_every = remind_every

    def enqueue(self, now: datetime) -> int:
        """One pass; returns the posts added to the outbox."""
        subs = self._store.subscriptions()
        added = self._maintenance(subs, now)
        added += self._transitions(subs, now)
        if self._remind_every:
            added += self._reminders(subs, now, self._remind_every)
        return added

    def _transitions(self, subs: Sequence[Subscription], now: datetime) -> int:
        pending = self._store.pending_transitions()
        if not pending:
            return 0
        posted = [t for t in pending if worth_posting(t) and not self._muted(t)]
        since = {t.id or 0: bad_since(self._store, t) for t in posted if _is_recovery(t)}
        items = plan_transitions(posted, subs, names=self._names, bad_since=since,
                                 opener=self._store.thread_opener)
        return self._store.enqueue(items, now, fanned_out=[t.id for t in pending if t.id])

    def _muted(self, t: Transition) -> bool:
        return bool(self._store.active_maintenance(t.service, t.at))

    def _maintenance(self, subs: Sequence[Subscription], now: datetime) -> int:
        notices = self._store.unannounced_maintenance(now)
        if not notices:
            return 0
        fresh = [(w, end) for w, end in notices
                 if (w.ends_at is None or now - w.ends_at <= _STALE_NOTICE)]
        items = []
        for sub in subs:
            mine = [(w, end) for w, end in fresh if sub.covers(w.service)]
            if mine:
                key = "m" + ",".join(f"{w.id}{'e' if end else 's'}" for w, end in mine) + \
                      f"@{sub.platform}:{sub.channel}"
                items.append(OutboxItem(key, sub.platform, sub.channel,
                                        maintenance_message(mine, self._names, now)))
        self._store.maintenance_announced([(w.id, end) for w, end in notices], now, items)
        return len(items)

    def _reminders(self, subs: Sequence[Subscription], now: datetime, every: timedelta) -> int:
        items = []
        for service, h in self._store.all_health().items():
            if h.state not in _REMINDED or h.since is None or service not in self._names:
                continue
            due = int((now - h.since) / every)
            if due < 1 or self._store.active_maintenance(service, now):
                continue
            for sub in subs:
                if not (sub.covers(service) and sub.wants(State.OPERATIONAL, h.state)):
                    continue
                key = f"r{service}:{h.since.timestamp():.0f}:{due}@{sub.platform}:{sub.channel}"
                if self._store.has_post(key):
                    continue
                items.append(OutboxItem(
                    key, sub.platform, sub.channel,
                    reminder_message(self._names[service], h, now),
                    reply_to_key=self._store.thread_opener(sub.platform, sub.channel, service)))
        return self._store.enqueue(items, now) if items else 0


def bad_since(store: Store, t: Transition) -> datetime | None:
    """When the bad episode that ``t`` ends began (the first transition out of operational)."""
    start = None
    for prev in reversed(store.transitions(service=t.service, limit=_EPISODE_LOOKBACK)):
        if prev.id is not None and t.id is not None and prev.id >= t.id:
            continue
        if not prev.to_state.is_bad:
            break
        start = prev.at
    return start
