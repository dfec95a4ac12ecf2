"""``GET /healthz`` and ``GET /metrics`` over real HTTP on loopback, with an injected clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx2
from prometheus_client.parser import text_string_to_metric_families

from bot.app import make_http_client
from bot.config import load_settings
from bot.metrics import Metrics
from bot.models import Outcome, ProbeResult, State, Transition
from bot.monitor import Monitor
from bot.redact import Redactor
from bot.server import build_app, serve
from bot.store import Store
from tests.fakes.chat import FakeChat, FakeClock, wire
from tests.fakes.loopback import Loopback, json_handler

STALE_AFTER = 300.0


class LastCycle:
    """What the monitor reports as its last finished cycle (set by the test)."""

    def __init__(self) -> None:
        self.at: datetime | None = None

    def __call__(self) -> datetime | None:
        return self.at


@asynccontextmanager
async def running(*, metrics: Metrics, last_cycle: Callable[[], datetime | None],
                  clock: FakeClock, stale_after: float = STALE_AFTER
                  ) -> AsyncIterator[httpx2.AsyncClient]:
    """The bot's app on 127.0.0.1:0 and an HTTP client pointed at it."""
    app = build_app(metrics=metrics, last_cycle=last_cycle, clock=clock, started_at=clock(),
                    stale_after=stale_after)
    runner, port = await serve(app, host="127.0.0.1", port=0)
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            yield client
    finally:
        await runner.cleanup()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text → {(sample name, labels): value}."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def state_gauges(text: str, service: str) -> dict[str, float]:
    return {dict(labels)["state"]: value for (name, labels), value in samples(text).items()
            if name == "sora_service_state" and dict(labels).get("service") == service}


async def test_healthz_ok_while_cycles_are_recent_then_stale() -> None:
    clock = FakeClock()
    last = LastCycle()
    async with running(metrics=Metrics(), last_cycle=last, clock=clock) as client:
        clock.advance(30)
        cycle_at = last.at = clock()
        clock.advance(60)
        fresh = await client.get("/healthz")

        clock.advance(STALE_AFTER)  # 360 s since the last cycle finished
        stale = await client.get("/healthz")

        last.at = clock()  # the scheduler caught up
        recovered = await client.get("/healthz")

    assert fresh.status_code == 200
    assert fresh.json()["status"] == "ok"
    assert fresh.json()["seconds_since_last_cycle"] == 60
    assert datetime.fromisoformat(fresh.json()["last_cycle"]) == cycle_at
    assert stale.status_code == 503
    assert stale.json()["status"] == "stale"
    assert stale.json()["seconds_since_last_cycle"] == 60 + STALE_AFTER
    assert recovered.status_code == 200
    assert recovered.json()["status"] == "ok"


async def test_healthz_grants_start_up_grace_before_the_first_cycle() -> None:
    clock = FakeClock()
    async with running(metrics=Metrics(), last_cycle=LastCycle(), clock=clock) as client:
        clock.advance(STALE_AFTER - 1)
        starting = await client.get("/healthz")
        clock.advance(2)  # no cycle has ever finished, and the grace is over
        stuck = await client.get("/healthz")

    assert starting.status_code == 200
    assert starting.json()["status"] == "ok"
    assert starting.json()["last_cycle"] is None
    assert stuck.status_code == 503
    assert stuck.json()["status"] == "stale"


async def test_metrics_exposes_state_and_probe_counters() -> None:
    clock = FakeClock()
    metrics = Metrics()
    at = clock()
    metrics.observe(ProbeResult(service="sora-2-reverse", at=at, outcome=Outcome.OK,
                                latency_ms=120.0, http_status=200), State.OPERATIONAL, None)
    metrics.observe(ProbeResult(service="sora-2-reverse", at=at, outcome=Outcome.UNAVAILABLE,
                                latency_ms=40.0, http_status=503, error="HTTP 503"),
                    State.SUSPENDED,
                    Transition(service="sora-2-reverse", from_state=State.OPERATIONAL,
                               to_state=State.SUSPENDED, at=at, reason="HTTP 503"))
    async with running(metrics=metrics, last_cycle=LastCycle(), clock=clock) as client:
        response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE sora_service_state gauge" in text
    assert "# TYPE sora_probes_total counter" in text
    gauges = state_gauges(text, "sora-2-reverse")
    assert gauges["suspended"] == 1.0
    assert all(v == 0.0 for state, v in gauges.items() if state != "suspended")
    assert set(gauges) == {s.value for s in State}
    found = samples(text)
    probes = frozenset({("service", "sora-2-reverse"), ("outcome", "unavailable")})
    assert found[("sora_probes_total", probes)] == 1.0
    ok = frozenset({("service", "sora-2-reverse"), ("outcome", "ok")})
    assert found[("sora_probes_total", ok)] == 1.0
    to_suspended = frozenset({("service", "sora-2-reverse"), ("to", "suspended")})
    assert found[("sora_transitions_total", to_suspended)] == 1.0
    latency = frozenset({("service", "sora-2-reverse")})
    assert found[("sora_probe_latency_seconds_count", latency)] == 2.0


async def test_a_real_monitor_cycle_shows_up_in_metrics_and_health(tmp_path: Path) -> None:
    async with Loopback() as relay:
        relay.route("GET", "/v1/models/sora-2", json_handler({"id": "sora-2", "object": "model"}))
        cfg = tmp_path / "bot.toml"
        cfg.write_text(
            "[bot]\nbuiltin_catalog = false\n\n"
            '[[service]]\nid = "up"\nname = "Up relay"\nkind = "openai_compat"\n'
            f'model = "sora-2"\nbase_url = "{relay.url}/v1"\n'
            "failure_threshold = 1\nsuccess_threshold = 1\ntimeout = 2\n\n"
            '[[service]]\nid = "down"\nname = "Down relay"\nkind = "openai_compat"\n'
            'model = "sora-2"\nbase_url = "http://127.0.0.1:9/v1"\n'
            "failure_threshold = 1\nsuccess_threshold = 1\ntimeout = 2\n",
            encoding="utf-8")
        settings = load_settings(cfg, {"SORA_BOT_DB": str(tmp_path / "bot.db")})
        clock = FakeClock()
        metrics = Metrics()
        store = Store(settings.db_path)
        client = make_http_client(settings)
        chat = FakeChat()
        try:
            monitor = Monitor(settings=settings, store=store, client=client,
                              outbox=wire(store, chat, "#ops", clock),
                               clock=clock, redactor=Redactor(), metrics=metrics)
            async with running(metrics=metrics, last_cycle=lambda: monitor.last_cycle_at,
                               clock=clock) as http:
                before = await http.get("/metrics")
                report = await monitor.run_cycle()
                clock.advance(5)
                health = await http.get("/healthz")
                after = await http.get("/metrics")
        finally:
            await client.aclose()
            store.close()

    assert {r.service: r.outcome for r in report.results} == {
        "up": Outcome.REACHABLE, "down": Outcome.UNAVAILABLE}  # no key: reachable
    assert state_gauges(before.text, "up") == {}
    up, down = state_gauges(after.text, "up"), state_gauges(after.text, "down")
    assert up["operational"] == 1.0 and sum(up.values()) == 1.0
    assert down["suspended"] == 1.0 and sum(down.values()) == 1.0
    found = samples(after.text)
    assert found[("sora_probes_total",
                  frozenset({("service", "down"), ("outcome", "unavailable")}))] == 1.0
    assert monitor.last_cycle_at == clock.now - timedelta(seconds=5)
    assert found[("sora_probe_cycle_last_timestamp_seconds", frozenset())] == \
        monitor.last_cycle_at.timestamp()
    assert health.status_code == 200
    assert monitor.last_cycle_at is not None
    assert health.json() == {"status": "ok", "last_cycle": monitor.last_cycle_at.isoformat(),
                             "seconds_since_last_cycle": 5.0}
    assert chat.titles == ["🔴 Down relay is suspended"]
