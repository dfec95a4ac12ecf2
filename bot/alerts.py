"""Transitions → neutral messages → a ChatPort. Every alert is derived from a stored transition.

Delivery is at-least-once up to the platform accepting the post and exactly-once after: a
transition is marked delivered only after ``ChatPort.send`` returned, and pending transitions are
retried on the next cycle (and after a restart).
"""

from __future__ import annotations

import logging
from datetime import datetime

from bot.chat import ChatPort
from bot.messages import Field, Message, format_duration, neutralize, severity_of
from bot.models import State, Transition
from bot.store import Store

log = logging.getLogger(__name__)
_EPISODE_LOOKBACK = 100  # transitions read back to find where a bad episode began


def transition_message(t: Transition, *, name: str, bad_since: datetime | None = None
                       ) -> Message:
    """One alert for one transition; a recovery says how long the bad episode lasted."""
    to = t.to_state
    recovered = to is State.OPERATIONAL and t.from_state.is_bad
    if recovered:
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
        thread_key=f"{t.service}:episode")


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


async def deliver_pending(store: Store, chat: ChatPort, *, channel: str,
                          names: dict[str, str], now: datetime) -> int:
    """Post every undelivered transition in order; stop at the first failure (order is kept)."""
    delivered = 0
    for t in store.pending_transitions():
        if not _worth_posting(t):
            store.mark_delivered([t.id] if t.id is not None else [], now)
            continue
        message = transition_message(t, name=names.get(t.service, t.service),
                                     bad_since=bad_since(store, t))
        try:
            await chat.send(channel, message)
        except Exception as e:  # the platform refused: keep it pending, retry next cycle
            log.warning("alert for %s not delivered yet: %s", t.service, e)
            break
        store.mark_delivered([t.id] if t.id is not None else [], now)
        delivered += 1
    return delivered


def _worth_posting(t: Transition) -> bool:
    """Nobody needs to hear that an unconfigured service is unconfigured, or that data began."""
    if t.to_state is State.UNKNOWN and str(t.evidence.get("outcome")) == "not_configured":
        return False
    return not (t.from_state is State.UNKNOWN and t.to_state is State.OPERATIONAL)
