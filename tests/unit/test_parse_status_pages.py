"""The pure status-page parsers, table-driven, on the real captured payloads."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.probes.google_cloud import incident_status, parse_incidents
from bot.probes.incidentio import parse_proxy_incidents
from bot.probes.statuspage import parse_scheduled_maintenances, parse_summary, worst_status

Load = Callable[[str], Any]

OPENAI = "openai-incidentio-compat-summary.json"
OPENAI_DEGRADED = "openai-incidentio-compat-summary-degraded.json"
OPENAI_COMPONENTS = "openai-incidentio-compat-components.json"
GITHUB = "statuspage-summary-github.json"
ANTHROPIC = "statuspage-summary-anthropic.json"
MAINTENANCES = "statuspage-scheduled-maintenances.json"
PROXY_OPENAI = "incidentio-proxy-incidents-openai-tokenpace.json"
PROXY_PLEO = "incidentio-proxy-incidents-pleo-statusy.json"
GOOGLE = "google-cloud-incidents.json"

SORA_ID = "01K9G527YRPY1EFRMHTKB5BKT5"
SORA_INCIDENT = "01KX7Y6ETMKP3ATQ85Z33J0EHN"  # "Elevated Errors for Sora API", full_outage
CODEX_API_ID = "01KMP3KP5MGE23B80K1EK4S8PV"
PLEO_INVOICES_ID = "01JEV56RY027PA4NYX5H2RNAMC"
PLEO_MAINTAINED_ID = "01JEV56RY0GV18JSH8N9GECJ1G"
PLEO_MAINTENANCE = "01KFGG5S6TRSJJNNBB3TQATY24"
VERTEX_GEMINI = "Z0FZJAMvEB4j3NbCJs6B"
VERTEX_VEO = "p5rCvyraXdeC6HFE8XJJ"
GEMINI_INCIDENT = "41E5S3mkTGDfkZuJZH5k"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# --- Statuspage summary -----------------------------------------------------------------------

# fixture, component query, status, name, component id, incident id, page_wide, detail fragment
SUMMARY_CASES = [
    (OPENAI, "Sora", "operational", "Sora", SORA_ID, None, False, "Sora: operational"),
    (OPENAI, "sora", "operational", "Sora", SORA_ID, None, False, "Sora: operational"),
    (OPENAI, SORA_ID, "operational", "Sora", SORA_ID, None, False, "Sora: operational"),
    (OPENAI_DEGRADED, "Image Generation", "degraded_performance", "Image Generation",
     "01JQ7EKW990MSPSWVXC7VPV2ZJ", "01M3Q4RK1SM4EMK445GGPG7C0N", True,
     "Image Generation: degraded_performance — Elevated errors across ChatGPT"),
    (OPENAI_DEGRADED, "Ads API", "operational", "Ads API", "01KVR95C58GGWHV7RYBT32NP11", None,
     False, "Ads API: operational"),
    (GITHUB, "Git Operations", "major_outage", "Git Operations", "8l4ygp009s5s", "80d0cs6kpsps",
     True, "Git Operations: major_outage — Incident on 2020-04-02 20:20 UTC (page-wide"),
    (GITHUB, "github actions", "partial_outage", "GitHub Actions", "br0l2tvcx85d",
     "80d0cs6kpsps", True, "GitHub Actions: partial_outage"),
    (GITHUB, "Visit www.githubstatus.com for more information", "operational",
     "Visit www.githubstatus.com for more information", "0l2p9nhqnxpd", "80d0cs6kpsps", False,
     "operational — Incident on 2020-04-02"),
    (GITHUB, "GitHub Pages", "operational", "GitHub Pages", "vg70hn9s2tyj", None, False,
     "GitHub Pages: operational"),
    (ANTHROPIC, "Claude Console (platform.claude.com)", "degraded_performance",
     "Claude Console (platform.claude.com)", "0qbwn08sd68x", "978mjkgw6mh7", False,
     "degraded_performance — Elevated errors on platform.claude.com"),
    (ANTHROPIC, "claude.ai", "operational", "claude.ai", "rwppv331jlwc", None, False,
     "claude.ai: operational"),
    (OPENAI_COMPONENTS, "login", "operational", "Login", "01JSM5RTJWHRWDTS6Q604VEW3B", None,
     False, "Login: operational"),  # "Login" appears twice: the first one wins
]


@pytest.mark.parametrize(
    ("fixture", "query", "status", "name", "component_id", "incident_id", "page_wide", "detail"),
    SUMMARY_CASES, ids=[f"{c[0].split('.')[0]}:{c[1]}" for c in SUMMARY_CASES])
def test_parse_summary(load_fixture: Load, fixture: str, query: str, status: str, name: str,
                       component_id: str, incident_id: str | None, page_wide: bool,
                       detail: str) -> None:
    view = parse_summary(load_fixture(fixture), query)
    assert (view.status, view.name, view.component_id) == (status, name, component_id)
    assert (view.incident.id if view.incident else None) == incident_id
    assert view.page_wide is page_wide
    assert detail in view.detail
    assert view.maintenance is None and view.upcoming == ()


def test_summary_incident_fields_come_from_the_page(load_fixture: Load) -> None:
    github = parse_summary(load_fixture(GITHUB), "Git Operations").incident
    assert github is not None
    assert github.status == "investigating"
    assert github.started_at == at("2020-04-02T20:20:54.005Z")
    assert github.url == "http://stspg.io/n0wskg2n6bvy"
    anthropic = parse_summary(load_fixture(ANTHROPIC), "0qbwn08sd68x").incident
    assert anthropic is not None
    assert (anthropic.name, anthropic.status) == ("Elevated errors on platform.claude.com",
                                                  "monitoring")
    assert anthropic.url == "https://stspg.io/sjkw7njwf0mt"


def test_impact_none_incident_is_never_attached_page_wide(load_fixture: Load) -> None:
    view = parse_summary(load_fixture(OPENAI_DEGRADED), "Realtime")
    assert [i.name for i in view.incidents] == [
        "Elevated errors across ChatGPT, Codex, and the API including the Agents API"]


def test_component_not_found_lists_what_is_available(load_fixture: Load) -> None:
    view = parse_summary(load_fixture(OPENAI_DEGRADED), "Sora")
    assert view.status is None
    assert view.component_id is None
    assert view.name == "Sora"  # the query, so the classifier can say which one is missing
    assert view.detail.startswith(
        "component 'Sora' not found; available: Realtime, Compliance API, Ads API")
    assert view.detail.endswith("more)")  # 25 names do not all fit
    assert len(view.detail) < 300


def test_component_not_found_on_an_empty_page() -> None:
    view = parse_summary({"components": []}, "Sora")
    assert view.status is None
    assert "not found" in view.detail


def test_garbage_items_are_skipped_not_fatal() -> None:
    data = {"components": ["junk", {"id": ["x"], "name": None},
                           {"id": "c1", "name": "Sora", "status": "partial_outage"}],
            "incidents": [7, {"id": "i1", "name": "Boom", "status": "identified",
                              "components": [{"id": "c1"}], "impact": "major"}]}
    view = parse_summary(data, "SORA")
    assert (view.status, view.component_id) == ("partial_outage", "c1")
    assert view.incident is not None and view.incident.id == "i1"


# --- scheduled maintenances ---------------------------------------------------------------------

def test_completed_maintenances_are_neither_active_nor_upcoming(load_fixture: Load) -> None:
    data = load_fixture(MAINTENANCES)
    for component in ("rwppv331jlwc", "0qbwn08sd68x"):
        assert parse_scheduled_maintenances(data, component) == ([], [])


@pytest.mark.parametrize(("status", "component", "active_ids", "upcoming_ids"), [
    ("in_progress", "rwppv331jlwc", ["x017628t2rl5"], []),
    ("verifying", "rwppv331jlwc", ["x017628t2rl5"], []),
    ("scheduled", "rwppv331jlwc", [], ["x017628t2rl5"]),
    ("in_progress", "0qbwn08sd68x", [], []),  # that maintenance lists only claude.ai
    ("completed", "rwppv331jlwc", [], []),
])
def test_maintenance_status_decides_active_or_upcoming(
        load_fixture: Load, status: str, component: str, active_ids: list[str],
        upcoming_ids: list[str]) -> None:
    data = copy.deepcopy(load_fixture(MAINTENANCES))
    data["scheduled_maintenances"][0]["status"] = status
    active, upcoming = parse_scheduled_maintenances(data, component)
    assert [m.id for m in active] == active_ids
    assert [m.id for m in upcoming] == upcoming_ids


def test_maintenance_window_comes_from_scheduled_for_and_until(load_fixture: Load) -> None:
    data = copy.deepcopy(load_fixture(MAINTENANCES))
    data["scheduled_maintenances"][1]["status"] = "scheduled"
    _, upcoming = parse_scheduled_maintenances(data, "0qbwn08sd68x")
    assert len(upcoming) == 1
    assert upcoming[0].name == "Scheduled maintenance for Claude.ai and Anthropic Console"
    assert upcoming[0].started_at == at("2024-12-15T01:00:00Z")
    assert upcoming[0].ends_at == at("2024-12-15T01:30:00Z")
    assert upcoming[0].url == "https://stspg.io/6g6xhf17sbrb"


def test_unknown_component_has_no_maintenance(load_fixture: Load) -> None:
    assert parse_scheduled_maintenances(load_fixture(MAINTENANCES), None) == ([], [])


def test_summary_attaches_maintenance_in_progress(load_fixture: Load) -> None:
    summary = copy.deepcopy(load_fixture(ANTHROPIC))
    maintenance = copy.deepcopy(load_fixture(MAINTENANCES)["scheduled_maintenances"][0])
    maintenance["status"] = "in_progress"
    summary["scheduled_maintenances"] = [maintenance]
    view = parse_summary(summary, "claude.ai")
    assert view.maintenance is not None and view.maintenance.id == "x017628t2rl5"
    assert "maintenance in progress: Upgrades to Connector Auth Storage" in view.detail
    assert parse_summary(summary, "Claude Code").maintenance is None


# --- incident.io native feed ------------------------------------------------------------------

PROXY_CASES = [
    # fixture, component, now, incident id, maintenance id, worst status
    ("sora inside the impact window", PROXY_OPENAI, SORA_ID, "2026-07-11T06:50:00Z",
     SORA_INCIDENT, None, "full_outage"),
    ("sora after the impact ended", PROXY_OPENAI, SORA_ID, "2026-07-11T08:00:00Z",
     None, None, None),
    ("sora before the impact began", PROXY_OPENAI, SORA_ID, "2026-07-11T06:00:00Z",
     None, None, None),
    ("codex api inside its window", PROXY_OPENAI, CODEX_API_ID, "2026-08-20T17:00:00Z",
     "01M0G1RZER839AZXWMYKSZF3GR", None, "degraded_performance"),
    ("component never mentioned", PROXY_OPENAI, "01NOPE", "2026-07-11T06:50:00Z",
     None, None, None),
    ("pleo maintenance inside its window", PROXY_PLEO, PLEO_MAINTAINED_ID,
     "2026-01-25T01:00:00Z", None, PLEO_MAINTENANCE, "under_maintenance"),
    ("pleo maintenance over", PROXY_PLEO, PLEO_MAINTAINED_ID, "2026-01-25T03:00:00Z",
     None, None, None),
    ("pleo incident inside its window", PROXY_PLEO, PLEO_INVOICES_ID, "2026-01-30T11:00:00Z",
     "01KG77ZCW3ZCZBXCRP47BT0KFG", None, "degraded_performance"),
]


@pytest.mark.parametrize(("fixture", "component", "now", "incident_id", "maintenance_id",
                          "worst"), [c[1:] for c in PROXY_CASES],
                         ids=[c[0] for c in PROXY_CASES])
def test_parse_proxy_incidents(load_fixture: Load, fixture: str, component: str, now: str,
                               incident_id: str | None, maintenance_id: str | None,
                               worst: str | None) -> None:
    incident, maintenance, status = parse_proxy_incidents(load_fixture(fixture), component,
                                                          at(now))
    assert (incident.id if incident else None) == incident_id
    assert (maintenance.id if maintenance else None) == maintenance_id
    assert status == worst


def test_sora_incident_ref_carries_window_and_url(load_fixture: Load) -> None:
    incident, _, _ = parse_proxy_incidents(load_fixture(PROXY_OPENAI), SORA_ID,
                                           at("2026-07-11T06:50:00Z"),
                                           page_url="https://status.openai.com")
    assert incident is not None
    assert incident.name == "Elevated Errors for Sora API"
    assert incident.started_at == at("2026-07-11T06:35:19.763Z")
    assert incident.ends_at == at("2026-07-11T07:03:51.923Z")
    assert incident.url == f"https://status.openai.com/incidents/{SORA_INCIDENT}"


def test_pleo_maintenance_is_maintenance_not_incident(load_fixture: Load) -> None:
    incident, maintenance, _ = parse_proxy_incidents(
        load_fixture(PROXY_PLEO), PLEO_MAINTAINED_ID, at("2026-01-25T00:30:00Z"))
    assert incident is None
    assert maintenance is not None
    assert maintenance.name == "Scheduled Pleo Maintenance"
    assert maintenance.started_at == at("2026-01-25T00:00:00Z")
    assert maintenance.ends_at == at("2026-01-25T02:00:00Z")


def test_unresolved_incident_is_active_after_its_impact_ended(load_fixture: Load) -> None:
    data = copy.deepcopy(load_fixture(PROXY_OPENAI))
    sora = next(i for i in data["incidents"] if i["id"] == SORA_INCIDENT)
    sora["status"] = "monitoring"
    incident, _, status = parse_proxy_incidents(data, SORA_ID, at("2026-07-11T09:00:00Z"))
    assert incident is not None and incident.id == SORA_INCIDENT
    assert status == "full_outage"  # from affected_components, no impact covers now


def test_open_impact_counts_only_while_the_entry_is_open(load_fixture: Load) -> None:
    data = copy.deepcopy(load_fixture(PROXY_OPENAI))
    sora = next(i for i in data["incidents"] if i["id"] == SORA_INCIDENT)
    sora["component_impacts"][0]["end_at"] = None
    now = at("2026-07-12T00:00:00Z")
    assert parse_proxy_incidents(data, SORA_ID, now) == (None, None, None)  # resolved
    sora["status"] = "investigating"
    incident, _, status = parse_proxy_incidents(data, SORA_ID, now)
    assert incident is not None and status == "full_outage"


@pytest.mark.parametrize(("status", "now", "active"), [
    ("maintenance_scheduled", "2026-01-24T12:00:00Z", False),  # announced, window not begun
    ("maintenance_scheduled", "2026-01-25T01:00:00Z", True),  # window covers now
    ("maintenance_in_progress", "2026-01-24T12:00:00Z", True),
    ("maintenance_complete", "2026-01-25T03:00:00Z", False),
])
def test_maintenance_activity(load_fixture: Load, status: str, now: str, active: bool) -> None:
    data = copy.deepcopy(load_fixture(PROXY_PLEO))
    data["incidents"][1]["status"] = status
    _, maintenance, worst = parse_proxy_incidents(data, PLEO_MAINTAINED_ID, at(now))
    assert (maintenance is not None) is active
    assert worst == ("under_maintenance" if active else None)


def test_worst_incident_wins_when_several_are_active() -> None:
    def entry(entry_id: str, status: str, published: str) -> dict[str, Any]:
        return {"id": entry_id, "name": entry_id, "status": "investigating",
                "published_at": published,
                "affected_components": [{"component_id": "c", "status": status}]}
    data = {"incidents": [entry("minor", "degraded_performance", "2026-11-02T00:00:00Z"),
                          entry("major", "partial_outage", "2026-11-01T00:00:00Z"),
                          entry("newer-minor", "degraded_performance", "2026-11-03T00:00:00Z")]}
    incident, _, status = parse_proxy_incidents(data, "c", at("2026-11-05T00:00:00Z"))
    assert incident is not None and incident.id == "major"
    assert status == "partial_outage"


@pytest.mark.parametrize(("statuses", "worst"), [
    (("operational", "full_outage"), "full_outage"),
    (("major_outage", "full_outage"), "full_outage"),
    (("partial_outage", "major_outage"), "major_outage"),
    (("degraded_performance", "partial_outage"), "partial_outage"),
    (("under_maintenance", "degraded_performance"), "degraded_performance"),
    (("operational", "under_maintenance"), "under_maintenance"),
    (("operational", None), "operational"),
    ((None, None), None),
])
def test_worst_status_order(statuses: tuple[str | None, ...], worst: str | None) -> None:
    assert worst_status(*statuses) == worst


# --- Google Cloud -----------------------------------------------------------------------------

def test_google_as_captured_everything_has_ended(load_fixture: Load) -> None:
    view = parse_incidents(load_fixture(GOOGLE), [VERTEX_GEMINI, VERTEX_VEO],
                           at("2026-09-15T00:00:00Z"))
    assert view.status == "operational"
    assert view.incident is None
    assert "no active incident for 2 watched products" in view.detail


def test_google_open_gemini_incident_is_reported(load_fixture: Load) -> None:
    data = copy.deepcopy(load_fixture(GOOGLE))
    del next(i for i in data if i["id"] == GEMINI_INCIDENT)["end"]
    view = parse_incidents(data, [VERTEX_GEMINI, VERTEX_VEO], at("2026-02-27T13:00:00Z"))
    assert view.incident is not None
    assert view.incident.id == GEMINI_INCIDENT
    assert view.incident.url == f"https://status.cloud.google.com/incidents/{GEMINI_INCIDENT}"
    assert view.incident.started_at == at("2026-02-27T12:37:00Z")
    assert view.incident.ends_at is None
    assert view.incident.status == "AVAILABLE"  # most_recent_update.status as captured
    assert view.product_names == ("Gemini on Agent Platform",)  # current_title, not title
    # SERVICE_INFORMATION / low is advisory: operational, but named in the detail.
    assert view.status == "operational"
    assert "informational incident: Vertex AI Gemini API customers" in view.detail


def test_google_open_incident_outage_impact(load_fixture: Load) -> None:
    data = copy.deepcopy(load_fixture(GOOGLE))
    item = next(i for i in data if i["id"] == GEMINI_INCIDENT)
    del item["end"]
    item["status_impact"] = "SERVICE_OUTAGE"
    view = parse_incidents(data, [VERTEX_GEMINI], at("2026-02-27T13:00:00Z"))
    assert view.status == "major_outage"
    assert view.detail.startswith("Gemini on Agent Platform: major_outage — Vertex AI Gemini")
    # Other products do not see it; before it began nothing is active.
    assert parse_incidents(data, [VERTEX_VEO], at("2026-02-27T13:00:00Z")).incident is None
    assert parse_incidents(data, [VERTEX_GEMINI], at("2026-02-27T12:00:00Z")).incident is None


def test_google_end_in_the_future_is_still_active(load_fixture: Load) -> None:
    compute = "L3ggmi3Jy4xJmgodFA9K"  # Google Compute Engine, in J5ia5t9p3g9Q5Wi7r8Ev
    view = parse_incidents(load_fixture(GOOGLE), [compute], at("2026-09-01T15:00:00Z"))
    assert view.incident is not None and view.incident.id == "J5ia5t9p3g9Q5Wi7r8Ev"
    assert view.status == "partial_outage"  # SERVICE_DISRUPTION / medium
    assert parse_incidents(load_fixture(GOOGLE), [compute],
                           at("2026-09-01T19:00:00Z")).status == "operational"


@pytest.mark.parametrize(("impact", "severity", "status"), [
    ("SERVICE_OUTAGE", "low", "major_outage"),
    ("SERVICE_DISRUPTION", "medium", "partial_outage"),
    ("SERVICE_DISRUPTION", "high", "major_outage"),
    ("SERVICE_INFORMATION", "low", "operational"),
    ("SERVICE_INFORMATION", "medium", "partial_outage"),
    (None, "low", "degraded_performance"),
    (None, "high", "major_outage"),
    ("SOMETHING_NEW", None, "degraded_performance"),
])
def test_google_incident_status_mapping(impact: str | None, severity: str | None,
                                        status: str) -> None:
    assert incident_status({"status_impact": impact, "severity": severity}) == status
