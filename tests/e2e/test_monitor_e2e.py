"""The real monitor, store and probes against loopback servers fed with real captured payloads."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from bot.app import make_http_client
from bot.config import Settings, load_settings
from bot.models import Outcome, State
from bot.monitor import Monitor
from bot.redact import Redactor
from bot.store import Store
from tests.fakes.chat import FakeChat, FakeClock, wire
from tests.fakes.loopback import Loopback, bytes_handler, json_handler, text_handler

SORA = "01K9G527YRPY1EFRMHTKB5BKT5"


def settings_for(tmp_path: Path, toml: str, env: dict[str, str] | None = None) -> Settings:
    cfg = tmp_path / "bot.toml"
    cfg.write_text("[bot]\nbuiltin_catalog = false\n\n" + toml, encoding="utf-8")
    return load_settings(cfg, {"SORA_BOT_DB": str(tmp_path / "bot.db"), **(env or {})})


@asynccontextmanager
async def monitor_for(settings: Settings, clock: FakeClock, chat: FakeChat | None = None
                      ) -> AsyncIterator[tuple[Monitor, Store, FakeChat]]:
    store = Store(settings.db_path)
    chat = chat or FakeChat()
    client = make_http_client(settings)
    try:
        yield (Monitor(settings=settings, store=store, client=client,
                       outbox=wire(store, chat, "#ops", clock),
                       clock=clock, redactor=Redactor(settings.secrets())), store, chat)
    finally:
        await client.aclose()
        store.close()


def page_service(sid: str, kind: str, url: str, **extra: Any) -> str:
    lines = [f'[[service]]\nid = "{sid}"\nname = "{sid}"\nkind = "{kind}"\nbase_url = "{url}"',
             "failure_threshold = 1\nsuccess_threshold = 1\ntimeout = 2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n\n"


async def test_real_status_page_payloads_drive_states(
        tmp_path: Path, load_fixture: Callable[[str], Any]) -> None:
    proxy = load_fixture("incidentio-proxy-incidents-openai-tokenpace.json")
    live = copy.deepcopy(proxy)  # the same feed while the Sora incident was still open
    sora = next(i for i in live["incidents"] if i["name"] == "Elevated Errors for Sora API")
    sora["status"] = "investigating"
    sora["component_impacts"][0]["end_at"] = None
    async with Loopback() as openai, Loopback() as github, Loopback() as google, \
            Loopback() as claude:
        openai.route("GET", "/api/v2/summary.json",
                     json_handler(load_fixture("openai-incidentio-compat-summary.json")))
        openai.route("GET", "/proxy/127.0.0.1/incidents", json_handler(live))
        github.route("GET", "/api/v2/summary.json",
                     json_handler(load_fixture("statuspage-summary-github.json")))
        claude.route("GET", "/api/v2/summary.json",
                     json_handler(load_fixture("statuspage-summary-anthropic.json")))
        google.route("GET", "/incidents.json",
                     json_handler(load_fixture("google-cloud-incidents.json")))
        settings = settings_for(tmp_path, "".join([
            page_service("openai", "incidentio", openai.url, component="Sora"),
            page_service("github", "statuspage", github.url, component="Git Operations"),
            page_service("claude", "statuspage", claude.url,
                         component="Claude Console (platform.claude.com)"),
            page_service("gcp", "google_cloud", google.url,
                         products=["Z0FZJAMvEB4j3NbCJs6B", "p5rCvyraXdeC6HFE8XJJ"]),
        ]))
        async with monitor_for(settings, FakeClock()) as (monitor, store, chat):
            report = await monitor.run_cycle()
            states = {sid: store.load_health(sid).state for sid in  # type: ignore[union-attr]
                      ("openai", "github", "claude", "gcp")}
            assert states == {"openai": State.SUSPENDED, "github": State.SUSPENDED,
                              "claude": State.DEGRADED, "gcp": State.OPERATIONAL}
            by_id = {r.service: r for r in report.results}
            assert "Elevated Errors for Sora API" in (by_id["openai"].error or "")
            assert "full_outage" in (by_id["openai"].error or "")
            assert "major_outage" in (by_id["github"].error or "")
            # three services went bad in one cycle: one batched post, each in plain words
            assert chat.titles == ["🔴 3 services in trouble"]
            text = chat.posts[0].message.text
            assert "openai is suspended" in text and "claude is degraded" in text


async def test_garbage_never_crashes_and_the_cycle_is_bounded(tmp_path: Path) -> None:
    async with Loopback() as srv:
        srv.route("GET", "/html/v1/models/m", text_handler("<html><body>Just a moment…</body>"))
        srv.route("GET", "/trunc/v1/models/m", bytes_handler(b'{"id": "m", "obj'))
        srv.route("GET", "/hang/v1/models/m", srv.hang())
        srv.route("GET", "/huge/v1/models/m", bytes_handler(b"[" + b"1," * 5_000_000 + b"1]",
                                                            chunked=True))
        srv.route("GET", "/trickle/v1/models/m", srv.trickle())
        srv.route("GET", "/fine/v1/models/m", json_handler({"id": "m", "object": "model"}))
        services = "".join(
            f'[[service]]\nid = "{name}"\nname = "{name}"\nkind = "openai_compat"\nmodel = "m"\n'
            f'base_url = "{srv.url}/{name}/v1"\ntimeout = 0.5\n\n'
            for name in ("html", "trunc", "hang", "huge", "trickle", "fine"))
        services += ('[[service]]\nid = "refused"\nname = "refused"\nkind = "openai_compat"\n'
                     'model = "m"\nbase_url = "http://127.0.0.1:9/v1"\ntimeout = 0.5\n')
        settings = settings_for(tmp_path, services)
        async with monitor_for(settings, FakeClock()) as (monitor, _, _):
            started = time.perf_counter()
            report = await monitor.run_cycle()
            elapsed = time.perf_counter() - started
    outcomes = {r.service: r.outcome for r in report.results}
    assert outcomes == {"html": Outcome.BAD_RESPONSE, "trunc": Outcome.BAD_RESPONSE,
                        "hang": Outcome.UNAVAILABLE, "huge": Outcome.BAD_RESPONSE,
                        "trickle": Outcome.UNAVAILABLE, "fine": Outcome.REACHABLE,
                        "refused": Outcome.UNAVAILABLE}
    assert elapsed < 3.0, f"cycle took {elapsed:.2f}s; every probe has a 0.5 s hard timeout"


async def test_restart_mid_outage_neither_repeats_nor_loses_a_transition(tmp_path: Path) -> None:
    from bot.sim import SimRelay

    clock = FakeClock()
    async with SimRelay(models=("sora-2",), api_key="sk-restart-test-key-000") as relay:
        settings = settings_for(
            tmp_path, '[[service]]\nid = "rev"\nname = "Reverse"\nkind = "openai_compat"\n'
            'model = "sora-2"\nbase_url_env = "REV_URL"\napi_key_env = "REV_KEY"\ninterval = 60\n',
            {"REV_URL": relay.url, "REV_KEY": "sk-restart-test-key-000"})

        async def cycles(n: int, monitor: Monitor) -> None:
            for _ in range(n):
                await monitor.run_cycle()
                clock.advance(60)

        chat = FakeChat()
        async with monitor_for(settings, clock, chat) as (monitor, _, _):
            await cycles(2, monitor)  # operational
            relay.set("sora-2", "unavailable")
            chat.refuse = True  # the outage alert is stored but cannot be posted yet …
            await cycles(3, monitor)
        # … and the process dies here, mid-outage.
        chat.refuse = False
        async with monitor_for(settings, clock, chat) as (monitor, store, _):
            await monitor.deliver()  # what `run` does first on start
            await cycles(3, monitor)  # still down: nothing new
            relay.set("sora-2", "ok")
            await cycles(3, monitor)
            flow = [(t.from_state.value, t.to_state.value) for t in store.transitions()]
            assert store.pending_transitions() == []
    assert flow == [("unknown", "operational"), ("operational", "suspended"),
                    ("suspended", "operational")]
    # suspended at t=180 s, operational again at t=540 s
    assert chat.titles == ["🔴 Reverse is suspended", "🟢 Reverse recovered after 6m"]


async def test_no_api_key_reaches_logs_database_or_output(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from adapters.console import ConsoleChat
    from bot.sim import SimRelay
    from bot.status import status_message, status_report

    leaked = "sk-LEAKCHECK-4f1d2a9b7c3e5f60718293a4b5c6d7e8"  # sent; the relay echoes it back
    caplog.set_level("DEBUG")
    async with SimRelay(models=("sora-2",), api_key="sk-the-right-one-0000000000") as relay:
        settings = settings_for(
            tmp_path, '[[service]]\nid = "r"\nname = "R"\nkind = "openai_compat"\n'
            'model = "sora-2"\nbase_url_env = "R_URL"\napi_key_env = "R_KEY"\n',
            {"R_URL": relay.url, "R_KEY": leaked})
        import io
        out = io.StringIO()
        clock = FakeClock()
        async with monitor_for(settings, clock) as (monitor, store, _):
            for _ in range(3):
                report = await monitor.run_cycle()
                clock.advance(60)
            console = ConsoleChat(out)
            rep = status_report(store, settings.services, clock())
            await console.send("c", status_message(rep, clock()))
            out.write(json.dumps(rep))
    assert report.results[0].outcome is Outcome.MISCONFIGURED
    echoed = [r for r in relay.requests if r[0] == "GET"]
    assert echoed, "the relay was probed"
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("bot.db*"))  # noqa: ASYNC240
    assert leaked.encode() not in db_bytes
    assert leaked not in caplog.text
    assert leaked not in out.getvalue()
    assert "credentials rejected" in out.getvalue()


async def test_monitor_probes_only_what_is_due(tmp_path: Path) -> None:
    async with Loopback() as srv:
        srv.route("GET", "/v1/models/m", json_handler({"id": "m"}))
        toml = "".join(
            f'[[service]]\nid = "{sid}"\nname = "{sid}"\nkind = "openai_compat"\nmodel = "m"\n'
            f'base_url = "{srv.url}/v1"\ninterval = {every}\n\n'
            for sid, every in (("fast", 30), ("slow", 300)))
        clock = FakeClock()
        async with monitor_for(settings_for(tmp_path, toml), clock) as (monitor, _, _):
            first = await monitor.run_cycle()
            clock.advance(30)
            second = await monitor.run_cycle()
            clock.advance(270)
            third = await monitor.run_cycle()
    assert [r.service for r in first.results] == ["fast", "slow"]
    assert [r.service for r in second.results] == ["fast"]
    assert sorted(r.service for r in third.results) == ["fast", "slow"]


async def test_unconfigured_services_make_no_request_and_no_alert(tmp_path: Path) -> None:
    settings = load_settings(None, {"SORA_BOT_DB": str(tmp_path / "bot.db"),
                                    "OPENAI_STATUS_URL": "http://127.0.0.1:9",
                                    "GOOGLE_STATUS_URL": "http://127.0.0.1:9"})
    requests: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return httpx2.Response(503)

    clock = FakeClock()
    store = Store(settings.db_path)
    chat = FakeChat()
    async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler)) as client:
        monitor = Monitor(settings=settings, store=store, client=client,
                          outbox=wire(store, chat, "c", clock),
                          clock=clock, redactor=Redactor())
        for _ in range(3):
            await monitor.run_cycle(force=True)
    hosts = {r.url.host for r in requests}
    assert hosts == {"127.0.0.1"}  # only the two status pages were asked
    relay = store.load_health("sora-2-reverse")
    assert relay is not None and relay.state is State.UNKNOWN
    assert relay.reason == "not configured (set SORA_REVERSE_BASE_URL)"
    assert all("reverse" not in t for t in chat.titles)  # unconfigured is not an outage
    store.close()
