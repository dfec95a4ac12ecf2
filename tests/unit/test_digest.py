"""The daily digest: report from a scripted day, the message built from it, the PNG chart."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from matplotlib.image import imread

from bot.config import ServiceConfig
from bot.digest import CHART_ALT, LATENCY_COLOUR, digest_message, digest_report, render_chart
from bot.messages import Severity
from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.store import Store

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # a Saturday
H = timedelta(hours=1)
DAY = timedelta(days=1)
MIN = timedelta(minutes=1)

RELAY = ServiceConfig(id="relay", name="Sora 2 · relay", kind="openai_compat", model="sora-2",
                      base_url="http://relay.test/v1")
REVERSE = ServiceConfig(id="reverse", name="Sora 2 · reverse", kind="openai_compat",
                        model="sora-2", base_url="http://reverse.test/v1")
PAGE = ServiceConfig(id="page", name="OpenAI status", kind="incidentio", component="Sora",
                     base_url="http://status.test", covers=("relay",))
VEO = ServiceConfig(id="veo", name="Veo 3.1", kind="gemini", model="veo-3.1",
                    base_url="http://gemini.test", api_key_env="GEMINI_API_KEY")  # no key
OFF = ServiceConfig(id="off", name="Switched off", kind="openai_compat", model="m",
                    base_url="http://off.test/v1", enabled=False)
SERVICES = (RELAY, REVERSE, PAGE, VEO, OFF)


def change(store: Store, service: str, at: datetime, frm: State, to: State,
           reason: str = "") -> Health:
    """A probe that moved ``service`` from ``frm`` to ``to`` at ``at`` (no latency sample)."""
    outcome = Outcome.OK if to is State.OPERATIONAL else Outcome.UNAVAILABLE
    health = Health(service, to, since=at, reason=reason or to.value, last_checked=at)
    store.record(ProbeResult(service, at, outcome, None), health,
                 Transition(service, frm, to, at, reason or to.value))
    return health


def probe(store: Store, health: Health, at: datetime, latency_ms: float,
          outcome: Outcome = Outcome.OK) -> None:
    """A probe that changed nothing."""
    store.record(ProbeResult(health.service, at, outcome, latency_ms), health, None)


@pytest.fixture
def day(store: Store) -> Store:
    """Relay: up for 3 days, a 3 h outage 6 h ago, ten latency samples of 100..1000 ms.
    Reverse: in risk control for the last hour. Page: operational for 2 days. Veo: never probed.
    A status-page maintenance 2 h ago covering page and relay, and one from yesterday."""
    h = change(store, "relay", NOW - 3 * DAY, State.UNKNOWN, State.OPERATIONAL)
    probe(store, h, NOW - 25 * H, 99_999.0)  # before the period: not in the latency
    for k in range(10):
        probe(store, h, NOW - 20 * H + k * 10 * MIN, 100.0 * (k + 1))
    h = change(store, "relay", NOW - 6 * H, State.OPERATIONAL, State.SUSPENDED,
               "<!channel> captcha wall @everyone")
    probe(store, h, NOW - 5 * H, 12_000.0, Outcome.UNAVAILABLE)  # failures: not in latency
    change(store, "relay", NOW - 3 * H, State.SUSPENDED, State.OPERATIONAL, "answers again")

    change(store, "reverse", NOW - 10 * DAY, State.UNKNOWN, State.OPERATIONAL)
    change(store, "reverse", NOW - H, State.OPERATIONAL, State.RISK_CONTROL, "风控: captcha")
    change(store, "page", NOW - 2 * DAY, State.UNKNOWN, State.OPERATIONAL)
    change(store, "off", NOW - 2 * H, State.OPERATIONAL, State.SUSPENDED)  # disabled: ignored

    for target in ("page", "relay"):
        store.add_maintenance(target, NOW - 2 * H, NOW - H, "Scheduled upgrade @here",
                              "statuspage:page", external_id="m-1")
    store.add_maintenance("relay", NOW - 30 * H, NOW - 26 * H, "old", "admin")
    store.record_detection_lead("relay", "inc-1", "Elevated errors <!here>", NOW - 6 * H,
                                NOW - 6 * H + 4 * MIN)
    return store


def row(report: dict[str, Any], service: str) -> dict[str, Any]:
    return next(r for r in report["services"] if r["id"] == service)


# --- report ---------------------------------------------------------------------------------


def test_report_of_a_scripted_outage(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW)
    relay = row(report, "relay")
    assert report["generated_at"] == "2026-11-21T09:00:00Z"
    assert report["period"] == {"from": "2026-11-20T09:00:00Z", "to": "2026-11-21T09:00:00Z"}
    assert relay["status"] == "operational"
    # 24 h: 3 h down of 24, the 1 h maintenance window (while up) left out → 20 of 23.
    assert relay["uptime"]["24h"] == pytest.approx(100 * 20 / 23, abs=1e-3)
    # 7 d / 30 d: known for 3 days (72 h), 3 h down, 1 h (+ 4 h old window) left out → 64/67.
    assert relay["uptime"]["7d"] == pytest.approx(100 * 64 / 67, abs=1e-3)
    assert relay["stars"] == "★★★★☆"
    assert relay["latency_ms"] == {"p50": 500.0, "p95": 1000.0}
    assert [(t["from"], t["to"], t["at"]) for t in relay["transitions_24h"]] == [
        ("operational", "suspended", "2026-11-21T03:00:00Z"),
        ("suspended", "operational", "2026-11-21T06:00:00Z"),
    ]
    assert relay["detection_leads"] == [{
        "incident": "Elevated errors <!here>", "incident_id": "inc-1", "lead_seconds": 240.0,
        "probe_first_bad_at": "2026-11-21T03:00:00Z",
        "page_confirmed_at": "2026-11-21T03:04:00Z"}]
    assert row(report, "page")["transitions_24h"] == []  # its change was 2 days ago
    assert report["generation"] is None


def test_report_incidents_and_summary(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW)
    assert [(i["kind"], i["service"], i.get("to"), i["at"]) for i in report["incidents"]] == [
        ("transition", "relay", "suspended", "2026-11-21T03:00:00Z"),
        ("maintenance", "page", None, "2026-11-21T07:00:00Z"),
        ("maintenance", "relay", None, "2026-11-21T07:00:00Z"),
        ("transition", "reverse", "risk_control", "2026-11-21T08:00:00Z"),
    ]  # the recovery is not an incident; yesterday's window ended before the period
    maintenance = report["incidents"][1]
    assert maintenance["until"] == "2026-11-21T08:00:00Z"
    assert maintenance["reason"] == "Scheduled upgrade @here"  # JSON keeps upstream text as is
    assert report["summary"] == {"services": 3, "operational": 2, "bad": 1, "transitions": 3,
                                 "incidents": 2, "maintenance": 1, "not_configured": 1}
    assert [r["id"] for r in report["services"]] == ["relay", "reverse", "page"]  # config order


def test_report_for_an_earlier_now_ignores_later_history(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW - 4 * H)
    assert [t["to"] for t in row(report, "relay")["transitions_24h"]] == ["suspended"]
    # Yesterday's window now overlaps the period; the one 2 h before NOW has not started.
    assert [(i["kind"], i["reason"]) for i in report["incidents"]] == [
        ("maintenance", "old"), ("transition", "<!channel> captcha wall @everyone")]


def test_include_filters_services_incidents_and_leads(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW, include=lambda sid: sid in ("reverse", "off"))
    assert [r["id"] for r in report["services"]] == ["reverse"]  # "off" is disabled
    assert [(i["service"], i["kind"]) for i in report["incidents"]] == [
        ("reverse", "transition")]
    assert report["not_configured"] == []
    assert report["summary"]["transitions"] == 1
    assert report["summary"]["maintenance"] == 0


def test_not_configured_services_are_listed_apart(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW)
    assert "veo" not in [r["id"] for r in report["services"]]
    assert report["not_configured"] == [
        {"id": "veo", "name": "Veo 3.1", "detail": "not configured (set GEMINI_API_KEY)"}]


def test_a_service_missing_config_but_with_a_known_state_stays_a_row(day: Store) -> None:
    change(day, "veo", NOW - 2 * H, State.UNKNOWN, State.DEGRADED)
    report = digest_report(day, SERVICES, NOW)
    assert row(report, "veo")["status"] == "degraded"
    assert report["not_configured"] == []


# --- message --------------------------------------------------------------------------------


def test_message_summary_table_and_incidents(day: Store) -> None:
    msg = digest_message(digest_report(day, SERVICES, NOW))
    assert msg.title == "Daily digest — Sat 21 Nov 2026"
    assert msg.severity is Severity.ALERT  # worst current state: risk control
    assert msg.text.splitlines() == [
        "2 of 3 services operational; 3 state changes in the last 24 h; 1 maintenance window; "
        "our probes saw 1 incident 4m before the status page.",
        "Needs attention: 🟠 Sora 2 · reverse is in risk control.",
        "Not configured: Veo 3.1 (see `sora-bot check-config`).",
    ]
    assert msg.table is not None
    assert msg.table.rows[0] == ("🟢", "Sora 2 · relay", "operational", "★★★★☆", "86.96%",
                                 "95.52%", "95.52%", "500ms", "1.0s")
    assert [f.name for f in msg.fields] == [
        "🔴 Sat 03:00 · Sora 2 · relay",
        "🔧 Sat 07:00 · maintenance (until Sat 08:00)",  # one window, two services
        "🟠 Sat 08:00 · Sora 2 · reverse",
    ]
    assert msg.fields[1].value.startswith("OpenAI status, Sora 2 · relay: Scheduled upgrade")
    assert msg.fields[2].value == "operational → risk control: 风控: captcha"
    assert msg.context == "Last 24 h: Fri 20 Nov 09:00 → Sat 21 Nov 09:00 UTC"
    assert msg.attachments == ()
    plain = msg.plain()
    assert msg.text in plain and "captcha wall" in plain and "Scheduled upgrade" in plain


def test_message_neutralizes_upstream_text(day: Store) -> None:
    plain = digest_message(digest_report(day, SERVICES, NOW)).plain()
    assert "captcha wall" in plain and "Scheduled upgrade" in plain
    for mention in ("<!channel>", "@everyone", "@here"):
        assert mention not in plain
    assert "<\u200b!channel>" in plain and "@\u200beveryone" in plain


def test_message_in_a_time_zone(day: Store) -> None:
    msg = digest_message(digest_report(day, SERVICES, NOW), tz=ZoneInfo("Asia/Tokyo"))
    assert msg.fields[0].name == "🔴 Sat 12:00 · Sora 2 · relay"  # 03:00 UTC
    assert msg.context.endswith("Sat 21 Nov 18:00 Asia/Tokyo")
    late = digest_report(day, SERVICES, NOW + 11 * H)  # 20:00 UTC is Sunday in Tokyo
    assert digest_message(late).title == "Daily digest — Sat 21 Nov 2026"
    assert digest_message(late, tz=ZoneInfo("Asia/Tokyo")).title == (
        "Daily digest — Sun 22 Nov 2026")


def test_incident_fields_are_capped_keeping_the_latest(store: Store) -> None:
    previous = State.OPERATIONAL
    for k in range(15):
        state = State.DEGRADED if k % 2 else State.SUSPENDED
        change(store, "relay", NOW - 20 * H + k * H, previous, state, f"flap {k}")
        previous = state
    msg = digest_message(digest_report(store, (RELAY,), NOW))
    assert len(msg.fields) == 10
    assert msg.fields[0].name == "+6 more"
    assert [f.value.rsplit(" ", 1)[1] for f in msg.fields[1:]] == [str(k) for k in range(6, 15)]
    assert "15 state changes" in msg.text


def test_chart_is_attached_when_given(day: Store) -> None:
    msg = digest_message(digest_report(day, SERVICES, NOW), chart=b"\x89PNG fake")
    (attachment,) = msg.attachments
    assert (attachment.filename, attachment.content, attachment.mime, attachment.alt) == (
        "digest.png", b"\x89PNG fake", "image/png", CHART_ALT)


def test_all_operational_is_ok(store: Store) -> None:
    change(store, "relay", NOW - 2 * DAY, State.UNKNOWN, State.OPERATIONAL)
    msg = digest_message(digest_report(store, (RELAY,), NOW))
    assert msg.severity is Severity.OK
    assert msg.text == "1 of 1 service operational; 0 state changes in the last 24 h."
    assert msg.fields == ()


def test_a_retired_model_does_not_colour_the_digest(store: Store) -> None:
    change(store, "relay", NOW - 2 * DAY, State.UNKNOWN, State.RETIRED)
    change(store, "reverse", NOW - 2 * DAY, State.UNKNOWN, State.OPERATIONAL)
    assert digest_message(digest_report(store, (RELAY, REVERSE), NOW)).severity is Severity.OK
    change(store, "reverse", NOW - DAY / 2, State.OPERATIONAL, State.DEGRADED)
    assert digest_message(digest_report(store, (RELAY, REVERSE), NOW)).severity is (
        Severity.WARNING)


def test_no_services(store: Store) -> None:
    report = digest_report(store, (), NOW)
    assert report["services"] == [] and report["incidents"] == []
    assert report["summary"]["services"] == 0
    msg = digest_message(report)
    assert msg.text == "No services to report; 0 state changes in the last 24 h."
    assert msg.table is None and msg.severity is Severity.NEUTRAL


# --- chart ----------------------------------------------------------------------------------


def _decode(png: bytes) -> Any:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return imread(io.BytesIO(png), format="png")


def _pixels(image: Any, hex_colour: str) -> int:
    """How many pixels have exactly this colour (solid fills are drawn exact)."""
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    return int((abs(image[:, :, :3] - rgb).max(axis=2) < 0.01).sum())


def _has_colour(image: Any, hex_colour: str) -> bool:
    return _pixels(image, hex_colour) > 300  # more than a legend swatch: a bar


def test_chart_height_grows_with_the_services(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW)
    image = _decode(render_chart(report))
    assert image.shape[:2] == (200 + 40 * 3, 800)
    one = {**report, "services": report["services"][:1]}
    assert _decode(render_chart(one)).shape[:2] == (240, 800)


def test_chart_bars_take_the_colour_of_the_current_state(day: Store) -> None:
    image = _decode(render_chart(digest_report(day, SERVICES, NOW)))
    assert _has_colour(image, Severity.OK.hex)  # relay and page
    assert _has_colour(image, Severity.ALERT.hex)  # reverse: risk control
    assert not _has_colour(image, Severity.DANGER.hex)  # nobody is suspended now


def test_chart_with_missing_values(store: Store) -> None:
    change(store, "relay", NOW - H, State.UNKNOWN, State.MAINTENANCE)  # no countable time
    report = digest_report(store, (RELAY,), NOW)
    assert row(report, "relay")["uptime"]["24h"] is None
    assert row(report, "relay")["latency_ms"] == {"p50": None, "p95": None}
    image = _decode(render_chart(report))
    assert image.shape[:2] == (240, 800)
    assert _pixels(image, Severity.INFO.hex) == 0  # no uptime bar in the maintenance colour
    assert not _has_colour(image, LATENCY_COLOUR)  # only the legend swatch, no latency bar
    with_latency = {**report, "services": [{**report["services"][0],
                                            "latency_ms": {"p50": 800.0, "p95": 2000.0}}]}
    assert _has_colour(_decode(render_chart(with_latency)), LATENCY_COLOUR)


def test_chart_for_no_services_is_a_valid_png(store: Store) -> None:
    image = _decode(render_chart(digest_report(store, (), NOW)))
    assert image.shape[:2] == (200, 800)
    assert (image[:, :, :3] < 0.5).any()  # the "no services" text is drawn


def test_chart_is_deterministic_and_carries_no_metadata(day: Store) -> None:
    report = digest_report(day, SERVICES, NOW)
    first, second = render_chart(report), render_chart(report)
    assert first == second
    assert b"matplotlib" not in first.lower() and b"Software" not in first


def test_the_days_test_generations_are_summed_without_invented_numbers(day: Store) -> None:
    def job(service: str | None, status: str, cost: float, *, at: datetime = NOW - H,
            attempts: tuple[dict[str, str], ...] = ()) -> None:
        reserved = day.reserve_job(
            platform="slack", workspace="T1", channel="C1", user="U1", prompt_hash="h",
            preview="p", model="sora-2", seconds=8, size="1280x720", prefer="official",
            reserve=1.0, budget=None, quota=None, now=at)
        assert reserved.job is not None
        day.update_job(reserved.job.id, at, status=status, service=service, cost=cost,
                       attempts=list(attempts), finished_at=at)

    fallback = ({"service": "relay", "result": "retryable"},
                {"service": "reverse", "result": "accepted"})
    job("relay", "completed", 0.80)
    job("reverse", "completed", 0.08, attempts=fallback)
    job("relay", "refused", 0.0)
    job(None, "unrouted", 0.0)
    job("relay", "completed", 0.80, at=NOW - 2 * DAY)  # before the period
    report = digest_report(day, SERVICES, NOW)
    assert report["generation"] == {
        "jobs": 4, "completed": 2, "failed": 0, "refused": 1, "uncertain": 0, "unrouted": 1,
        "running": 0, "fell_back": 1, "spend_usd": 0.88, "by_route": {"relay": 1, "reverse": 1}}
    text = digest_message(report).text
    assert ("Test generations: 4 (2 done, 1 refused, 1 without a route, 1 after a fallback); "
            "$0.88 spent.") in text
    only_page = digest_report(day, SERVICES, NOW, include=lambda sid: sid == "page")
    assert only_page["generation"]["jobs"] == 1  # only the unrouted one concerns every channel
