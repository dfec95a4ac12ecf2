"""The status report: stored state → the ``status --json`` shape → a neutral table message.

Answers from the store only (never probes), so it is instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import ServiceConfig
from bot.messages import (
    Field,
    Message,
    Severity,
    Table,
    format_duration,
    neutralize,
    severity_of,
)
from bot.models import Health, ProbeResult, State, Transition
from bot.store import Store, stars

WORST_FIRST = [State.SUSPENDED, State.RISK_CONTROL, State.DEGRADED, State.RETIRED,
                State.MAINTENANCE, State.UNKNOWN, State.OPERATIONAL]


def iso_utc(dt: datetime | None) -> str | None:
    """ISO-8601 UTC with a ``Z``, the form every JSON output uses."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


def result_json(r: ProbeResult) -> dict[str, Any]:
    """One probe result in the ``export`` shape."""
    return {"service": r.service, "at": iso_utc(r.at), "outcome": r.outcome.value,
            "latency_ms": None if r.latency_ms is None else round(r.latency_ms, 1),
            "http_status": r.http_status, "error": r.error, "detail": r.detail}


def transition_json(t: Transition) -> dict[str, Any]:
    """One transition in the ``export`` shape."""
    return {"service": t.service, "from": t.from_state.value, "to": t.to_state.value,
            "at": iso_utc(t.at), "reason": t.reason}


def service_status(store: Store, svc: ServiceConfig, health: Health | None, now: datetime
                   ) -> dict[str, Any]:
    """One service in the documented JSON shape (plus a few extra fields)."""
    h = health or Health(service=svc.id)
    reason = h.reason
    if svc.missing and h.state is State.UNKNOWN:
        reason = f"not configured ({svc.missing})"
    uptime = store.uptimes(svc.id, now, keys=("24h", "7d", "30d"))
    p50, p95 = store.latency(svc.id, timedelta(hours=24), now)
    return {
        "id": svc.id,
        "name": svc.name,
        "status": h.state.value,
        "since": iso_utc(h.since),
        "uptime": {k: None if v is None else round(v, 3) for k, v in uptime.items()},
        "latency_ms": {"p50": None if p50 is None else round(p50, 1),
                       "p95": None if p95 is None else round(p95, 1)},
        "last_checked": iso_utc(h.last_checked),
        "detail": reason,
        "stars": stars(uptime.get("30d")),
        "kind": svc.kind,
        "access": svc.access,
        "model": svc.model,
        "configured": svc.missing is None,
        "risk_control_episodes_7d": store.risk_control_episodes(svc.id, now, weeks=1),
    }


def status_report(store: Store, services: tuple[ServiceConfig, ...], now: datetime,
                  *, only: str | None = None) -> dict[str, Any]:
    healths = store.all_health()
    rows = [service_status(store, s, healths.get(s.id), now) for s in services
            if s.enabled and (only is None or s.id == only)]
    return {"generated_at": iso_utc(now), "services": rows}


def format_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}%" if value < 99.995 else "100%"


def format_ms(value: float | None) -> str:
    return "—" if value is None else f"{value / 1000:.1f}s" if value >= 1000 else f"{value:.0f}ms"


def _ago(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    return format_duration((now - datetime.fromisoformat(iso)).total_seconds()) + " ago"


def status_cell(row: dict[str, Any]) -> str:
    """``unknown`` always says which kind: not configured, no data, credentials rejected."""
    state = State(row["status"])
    if state is not State.UNKNOWN:
        return state.label
    if not row["configured"]:
        return "unknown — not configured"
    why = (row["detail"] or "no data").split(":")[0].split("(")[0].strip()
    return f"unknown — {why}"


def status_message(report: dict[str, Any], now: datetime) -> Message:
    """The whole table: emoji + status + stars + uptime + latency + since."""
    rows = report["services"]
    table = Table(
        header=("", "Service", "Status", "30d", "Uptime 24h", "p50", "Since"),
        rows=tuple((State(r["status"]).emoji, r["name"], status_cell(r), r["stars"],
                    format_pct(r["uptime"]["24h"]), format_ms(r["latency_ms"]["p50"]),
                    _ago(r["since"], now)) for r in rows))
    worst = min((State(r["status"]) for r in rows), key=WORST_FIRST.index, default=None)
    usable = [r["name"] for r in rows if r["status"] == "operational" and r["kind"] in
              ("openai_compat", "gemini")]
    text = ("Usable now: " + ", ".join(usable)) if usable else "No generation route is " \
        "confirmed operational right now."
    checked = [r["last_checked"] for r in rows if r["last_checked"]]
    return Message(
        title="Video API status", text=neutralize(text), table=table,
        severity=severity_of(worst) if worst and worst.is_bad else Severity.OK,
        context=f"last checked {_ago(max(checked), now)}" if checked else "not checked yet")


def service_message(row: dict[str, Any], transitions: list[dict[str, str]], now: datetime
                    ) -> Message:
    """One service in detail: state, reason, uptime windows, latency, recent transitions."""
    state = State(row["status"])
    up = row["uptime"]
    fields = (
        Field("Status", f"{state.emoji} {state.label} for "
              f"{_ago(row['since'], now).removesuffix(' ago')}" if row["since"]
              else f"{state.emoji} {state.label}"),
        Field("Uptime 24h / 7d / 30d", " / ".join(format_pct(up[k]) for k in ("24h", "7d", "30d"))),
        Field("Rating (30d)", row["stars"]),
        Field("Latency p50 / p95 (24h)",
              f"{format_ms(row['latency_ms']['p50'])} / {format_ms(row['latency_ms']['p95'])}"),
        Field("Risk-control episodes (7d)", str(row["risk_control_episodes_7d"])),
        Field("Last checked", _ago(row["last_checked"], now)),
    )
    recent = "\n".join(f"{t['at']}  {t['from']} → {t['to']}: {t['reason']}" for t in transitions)
    return Message(title=f"{state.emoji} {row['name']}", text=neutralize(row["detail"] or ""),
                   severity=severity_of(state), fields=fields,
                   context=neutralize("Recent transitions:\n" + recent) if recent else
                   "No transitions recorded.")
