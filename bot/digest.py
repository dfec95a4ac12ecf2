"""The daily digest: the last 24 h per service as JSON, a neutral message and a PNG chart.

Everything is read from the store (never probed); ``now`` is passed in. The chart is drawn with
matplotlib, imported only when a chart is drawn.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.config import ServiceConfig
from bot.messages import (
    Attachment,
    Field,
    Message,
    Severity,
    Table,
    format_duration,
    neutralize,
    severity_of,
)
from bot.models import State, Transition
from bot.status import (
    WORST_FIRST,
    format_ms,
    format_pct,
    iso_utc,
    service_status,
    status_cell,
    transition_json,
)
from bot.store import Job, MaintenanceWindow, OutboxItem, Store
from bot.subscriptions import Subscription, digest_due

__all__ = [
    "CHART_ALT",
    "LATENCY_COLOUR",
    "MAX_INCIDENT_FIELDS",
    "digest_message",
    "digest_report",
    "render_chart",
]

PERIOD = timedelta(hours=24)
MAX_INCIDENT_FIELDS = 10  # Slack allows 10 fields per section; the last says "+N more"
CHART_ALT = "Uptime over the last 24 h and 7 d per service, p50/p95 latency"
_MAX_REASON = 300
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # not %a: independent of the locale
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# --- the report (JSON-ready) ----------------------------------------------------------------


def digest_report(store: Store, services: Sequence[ServiceConfig], now: datetime, *,
                  include: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """The period (now - 24 h, now] for enabled services that ``include`` accepts (all if None).

    Services that are unknown because they are not configured go to ``not_configured`` instead
    of ``services``. ``generation`` sums the period's test generations (None when there were
    none: no invented numbers).
    """
    start = now - PERIOD
    chosen = [s for s in services if s.enabled and (include is None or include(s.id))]
    ids = {s.id for s in chosen}
    healths = store.all_health()
    transitions: dict[str, list[Transition]] = {}
    for t in store.transitions(since=start):
        if t.service in ids and start < t.at <= now:
            transitions.setdefault(t.service, []).append(t)
    leads: dict[str, list[dict[str, Any]]] = {}
    for lead in store.detection_leads(since=start):
        if lead.service in ids and lead.page_confirmed_at <= now:
            leads.setdefault(lead.service, []).append({
                "incident": lead.incident_name, "incident_id": lead.incident_id,
                "lead_seconds": lead.lead_seconds,
                "probe_first_bad_at": iso_utc(lead.probe_first_bad_at),
                "page_confirmed_at": iso_utc(lead.page_confirmed_at)})

    rows: list[dict[str, Any]] = []
    not_configured: list[dict[str, Any]] = []
    for svc in chosen:
        row = service_status(store, svc, healths.get(svc.id), now)
        if row["status"] == State.UNKNOWN.value and not row["configured"]:
            not_configured.append({"id": row["id"], "name": row["name"], "detail": row["detail"]})
            continue
        row["transitions_24h"] = [transition_json(t) for t in transitions.get(svc.id, [])]
        row["detection_leads"] = leads.get(svc.id, [])
        rows.append(row)

    incidents = [
        {**transition_json(t), "kind": "transition"}
        for ts in transitions.values() for t in ts if t.to_state.is_bad
    ] + [_maintenance_json(m) for m in store.maintenance_windows(None, start, now)
         if m.service in ids]
    incidents.sort(key=lambda i: (i["at"], i["service"]))
    states = [State(r["status"]) for r in rows]
    return {
        "generated_at": iso_utc(now),
        "period": {"from": iso_utc(start), "to": iso_utc(now)},
        "services": rows,
        "not_configured": not_configured,
        "incidents": incidents,
        "summary": {
            "services": len(rows),
            "operational": states.count(State.OPERATIONAL),
            "bad": sum(s.is_bad for s in states),
            "transitions": sum(map(len, transitions.values())),
            "incidents": sum(i["kind"] == "transition" for i in incidents),
            "maintenance": len({_window_key(i) for i in incidents if i["kind"] == "maintenance"}),
            "not_configured": len(not_configured),
        },
        "generation": _generation(store.jobs(since=start), ids, now),
    }


_FAILED = ("failed", "expired", "error")


def _generation(jobs: Sequence[Job], ids: set[str], now: datetime) -> dict[str, Any] | None:
    """The period's test generations on the digest's services (and those no route took)."""
    chosen = [j for j in jobs if j.created_at <= now and (j.service is None or j.service in ids)]
    if not chosen:
        return None
    statuses = [j.status for j in chosen]
    routes: dict[str, int] = {}
    for j in chosen:
        if j.status == "completed" and j.service:
            routes[j.service] = routes.get(j.service, 0) + 1
    return {
        "jobs": len(chosen), "completed": statuses.count("completed"),
        "failed": sum(statuses.count(s) for s in _FAILED), "refused": statuses.count("refused"),
        "uncertain": statuses.count("uncertain"), "unrouted": statuses.count("unrouted"),
        "running": sum(not j.finished for j in chosen),
        "fell_back": sum(1 for j in chosen
                         if any(a.get("result") == "retryable" for a in j.attempts)
                         and j.status == "completed"),
        "spend_usd": round(sum(j.cost or 0.0 for j in chosen), 2),
        "by_route": routes,
    }


def _maintenance_json(m: MaintenanceWindow) -> dict[str, Any]:
    return {"service": m.service, "kind": "maintenance", "at": iso_utc(m.starts_at),
            "until": iso_utc(m.ends_at), "reason": m.reason, "source": m.source,
            "external_id": m.external_id, "window_id": m.id}


def _window_key(incident: dict[str, Any]) -> tuple[Any, ...]:
    """One announced window is stored once per service it covers; this key groups them."""
    if incident["external_id"] is not None:
        return incident["source"], incident["external_id"]
    return incident["source"], incident["window_id"]


# --- the message ----------------------------------------------------------------------------


def digest_message(report: dict[str, Any], *, chart: bytes | None = None,
                   tz: ZoneInfo | None = None) -> Message:
    """Title with the date, a summary ``text`` that stands alone, the service table, one field
    per incident of the day (the latest ones when there are many), and the chart if given.
    Times are shown in ``tz`` (UTC when None)."""
    zone = tz or ZoneInfo("UTC")
    rows: list[dict[str, Any]] = report["services"]
    names = {r["id"]: r["name"] for r in rows} | {
        r["id"]: r["name"] for r in report["not_configured"]}
    end = _parse(report["period"]["to"]).astimezone(zone)
    start = _parse(report["period"]["from"]).astimezone(zone)

    table = Table(
        header=("", "Service", "Status", "Rating", "24h", "7d", "30d", "p50", "p95"),
        rows=tuple((State(r["status"]).emoji, r["name"], neutralize(status_cell(r)), r["stars"],
                    *(format_pct(r["uptime"][k]) for k in ("24h", "7d", "30d")),
                    *(format_ms(r["latency_ms"][k]) for k in ("p50", "p95"))) for r in rows))
    # A retired model is old news (Sora 2 stays retired): it does not colour every digest grey.
    live = [State(r["status"]) for r in rows if r["status"] != State.RETIRED.value]
    worst = min(live, key=WORST_FIRST.index, default=None)
    severity = (Severity.NEUTRAL if not rows
                else severity_of(worst) if worst is not None and worst.is_bad else Severity.OK)
    return Message(
        title=f"Daily digest — {_date(end)}",
        text=neutralize(_summary_text(report, rows)),
        severity=severity,
        fields=_incident_fields(report["incidents"], names, zone),
        table=table if rows else None,
        context=f"Last 24 h: {_date(start, year=False)} {start:%H:%M} → "
                f"{_date(end, year=False)} {end:%H:%M} {_zone_name(zone)}",
        attachments=(Attachment("digest.png", chart, alt=CHART_ALT),) if chart else (),
    )


def _summary_text(report: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    s = report["summary"]
    if not rows:
        parts = ["No services to report"]
    else:
        parts = [f"{s['operational']} of {_n(s['services'], 'service')} operational"]
    parts.append(f"{_n(s['transitions'], 'state change')} in the last 24 h")
    if s["maintenance"]:
        parts.append(_n(s["maintenance"], "maintenance window"))
    lead = _lead_clause(rows)
    if lead:
        parts.append(lead)
    lines = ["; ".join(parts) + "."]
    gen = report.get("generation")
    if gen:
        done = [f"{gen[k]} {label}" for k, label in (
            ("completed", "done"), ("failed", "failed"), ("refused", "refused"),
            ("uncertain", "uncertain"), ("unrouted", "without a route"), ("running", "running"))
            if gen[k]]
        fell = f", {gen['fell_back']} after a fallback" if gen["fell_back"] else ""
        lines.append(f"Test generations: {gen['jobs']} ({', '.join(done)}{fell}); "
                     f"${gen['spend_usd']:,.2f} spent.")
    attention = [f"{State(r['status']).emoji} {r['name']} {State(r['status']).phrase}"
                 for r in rows if State(r["status"]).is_bad]
    if attention:
        lines.append("Needs attention: " + ", ".join(attention) + ".")
    if report["not_configured"]:
        lines.append("Not configured: " + ", ".join(r["name"] for r in report["not_configured"])
                     + " (see `sora-bot check-config`).")
    return "\n".join(lines)


def _lead_clause(rows: list[dict[str, Any]]) -> str | None:
    """"our probes saw 2 incidents 4m–12m before the status page" (per incident, best lead)."""
    best: dict[str, float] = {}
    for row in rows:
        for lead in row["detection_leads"]:
            seconds = lead["lead_seconds"]
            if seconds is not None and seconds > 0:
                key = lead["incident_id"] or lead["incident"]
                best[key] = max(best.get(key, 0.0), seconds)
    if not best:
        return None
    low, high = format_duration(min(best.values())), format_duration(max(best.values()))
    ahead = low if low == high else f"{low}–{high}"
    return f"our probes saw {_n(len(best), 'incident')} {ahead} before the status page"


def _incident_fields(incidents: list[dict[str, Any]], names: dict[str, str], zone: ZoneInfo
                     ) -> tuple[Field, ...]:
    """One field per bad transition and per maintenance window (grouped across the services a
    status page covers), oldest first; over the cap the latest are kept with "+N more"."""
    items: list[tuple[str, Field]] = []
    windows: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for i in incidents:
        if i["kind"] == "maintenance":
            windows.setdefault(_window_key(i), []).append(i)
            continue
        to = State(i["to"])
        items.append((i["at"], Field(
            f"{to.emoji} {_when(i['at'], zone)} · {names.get(i['service'], i['service'])}",
            neutralize(f"{State(i['from']).label} → {to.label}: {_clip(i['reason'])}"),
            inline=False)))
    for group in windows.values():
        first = group[0]
        until = f"until {_when(first['until'], zone)}" if first["until"] else "open-ended"
        services = ", ".join(names.get(i["service"], i["service"]) for i in group)
        items.append((first["at"], Field(
            f"{State.MAINTENANCE.emoji} {_when(first['at'], zone)} · maintenance ({until})",
            neutralize(f"{services}: {_clip(first['reason'] or 'no reason given')}"),
            inline=False)))
    items.sort(key=lambda item: item[0])
    fields = [f for _, f in items]
    if len(fields) <= MAX_INCIDENT_FIELDS:
        return tuple(fields)
    hidden = len(fields) - (MAX_INCIDENT_FIELDS - 1)
    return (Field(f"+{hidden} more", "earlier incidents: see `sora-bot export`", inline=False),
            *fields[hidden:])


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


def _date(at: datetime, *, year: bool = True) -> str:
    text = f"{_DAYS[at.weekday()]} {at.day} {_MONTHS[at.month - 1]}"
    return f"{text} {at.year}" if year else text


def _when(iso: str, zone: ZoneInfo) -> str:
    at = _parse(iso).astimezone(zone)
    return f"{_DAYS[at.weekday()]} {at:%H:%M}"


def _zone_name(zone: ZoneInfo) -> str:
    return zone.key if zone.key else "UTC"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


# --- the chart ------------------------------------------------------------------------------

_WIDTH_PX, _BASE_PX, _ROW_PX, _DPI = 800, 200, 40, 100
_LABEL_CHARS = 30
LATENCY_COLOUR = "#5b5fc7"  # not a state colour: latency bars are not about state


def render_chart(report: dict[str, Any]) -> bytes:
    """PNG, 800 × (200 + 40·n) px: 24 h / 7 d uptime bars coloured by current state, and p50 /
    p95 latency bars; "no data" where a value is missing. Deterministic (no timestamps)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    rows: list[dict[str, Any]] = report["services"]
    n = len(rows)
    fig = Figure(figsize=(_WIDTH_PX / _DPI, (_BASE_PX + _ROW_PX * n) / _DPI), dpi=_DPI)
    FigureCanvasAgg(fig)
    if n == 0:
        fig.text(0.5, 0.5, "no services", ha="center", va="center", fontsize=14, color="#555555")
        return _png(fig)

    fig.subplots_adjust(left=0.27, right=0.98, top=1 - 70 / (_BASE_PX + _ROW_PX * n),
                        bottom=60 / (_BASE_PX + _ROW_PX * n), wspace=0.08)
    up_ax, lat_ax = fig.subplots(1, 2, sharey=True)
    ys = list(range(n))
    labels = [_label(r["name"]) for r in rows]
    h = 0.38
    grey, blue = Severity.NEUTRAL.hex, LATENCY_COLOUR

    for y, row in zip(ys, rows, strict=True):
        colour = severity_of(State(row["status"])).hex
        day, week = row["uptime"]["24h"], row["uptime"]["7d"]
        if day is None and week is None:
            up_ax.text(1, y, "no data", va="center", fontsize=8, color=grey)
        for value, offset, alpha in ((day, -h / 2, 1.0), (week, h / 2, 0.45)):
            if value is not None:
                up_ax.barh(y + offset, value, height=h, color=colour, alpha=alpha)
                inside = value > 25  # the label fits in the bar
                up_ax.text(value - 1 if inside else value + 1, y + offset, format_pct(value),
                           va="center", ha="right" if inside else "left", fontsize=7,
                           color="white" if inside else "black")
        p50, p95 = row["latency_ms"]["p50"], row["latency_ms"]["p95"]
        if p50 is None and p95 is None:
            lat_ax.text(0, y, " no data", va="center", fontsize=8, color=grey)
        for value, offset, alpha in ((p50, -h / 2, 1.0), (p95, h / 2, 0.45)):
            if value is not None:
                lat_ax.barh(y + offset, value / 1000, height=h, color=blue, alpha=alpha)
                lat_ax.text(value / 1000, y + offset, " " + format_ms(value), va="center",
                            fontsize=7, color="black")

    up_ax.set_xlim(0, 100)
    up_ax.set_yticks(ys, labels, fontsize=8)
    # First service on top, as in the table; a fixed pixel height per row whatever n is.
    up_ax.set_ylim(n + 0.375, -1.375)
    up_ax.set_xlabel("%", fontsize=8)
    lat_ax.set_xlabel("seconds", fontsize=8)
    peak = max((v for r in rows for v in r["latency_ms"].values() if v is not None), default=0)
    lat_ax.set_xlim(0, max(peak / 1000 * 1.3, 1.0))  # room for the value labels
    lat_ax.tick_params(axis="y", left=False)
    for ax, title, colour, keys in ((up_ax, "Uptime", grey, ("24 h", "7 d")),
                                    (lat_ax, "Latency, last 24 h", blue, ("p50", "p95"))):
        ax.set_title(title, fontsize=10, pad=24)
        ax.legend(handles=[Patch(color=colour, label=keys[0]),
                           Patch(color=colour, alpha=0.45, label=keys[1])],
                  loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize=7,
                  frameon=False, borderaxespad=0.2, handlelength=1.2)
    for ax in (up_ax, lat_ax):
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    return _png(fig)


def _label(name: str) -> str:
    return name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1] + "…"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


# --- scheduling -----------------------------------------------------------------------------


Draw = Callable[[dict[str, Any]], bytes]


async def build_digest(store: Store, services: Sequence[ServiceConfig], sub: Subscription,
                       now: datetime, *, draw: Draw = render_chart) -> Message:
    """The digest of the services ``sub`` covers, dated in its timezone, with the chart (drawn
    in a worker thread: it is CPU work; the store is read here, on the loop's thread)."""
    report = digest_report(store, services, now, include=sub.covers)
    chart = await asyncio.to_thread(draw, report)
    return digest_message(report, chart=chart, tz=ZoneInfo(sub.digest_tz))


async def enqueue_due_digests(store: Store, services: Sequence[ServiceConfig], now: datetime,
                              *, draw: Draw = render_chart) -> int:
    """Put every digest that is due into the outbox, each claimed once per local day (a restart
    or a second run finds it claimed). Returns how many were enqueued."""
    enqueued = 0
    for sub in store.subscriptions():
        on = digest_due(sub, now)
        if on is None:
            continue
        message = await build_digest(store, services, sub, now, draw=draw)
        item = OutboxItem(f"d{sub.id}:{on.isoformat()}@{sub.platform}:{sub.channel}",
                          sub.platform, sub.channel, message)
        if store.claim_digest(sub.id, on, item, now):
            enqueued += 1
    return enqueued
