"""``sora-bot demo``: the whole pipeline offline, on loopback simulators, in about 30 seconds.

Real HTTP, the real config loader, monitor, store and console alerts; only the providers are
simulated. The script: the official relay is fine; Sora 2 answers ``model_not_found`` (retired);
the reverse relay slides into risk control, then suspension (status.openai.com confirms it — the
detection lead is recorded), then recovers; a maintenance window opens and closes. Then one test
generation: with Sora 2 retired and the reverse relay back in risk control it is routed to a
successor, and the console shows its progress message being edited and the video arriving.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from adapters.console import ConsoleChat
from bot.app import LOCAL_WORKSPACE, Runtime, open_runtime, utcnow
from bot.commands import Incoming
from bot.config import load_settings
from bot.digest import digest_message, digest_report, render_chart
from bot.messages import format_duration
from bot.sim import SimRelay, SimStatusPage
from bot.status import status_message, status_report

DEMO_KEY = "sk-demo-0000000000000000000000"  # a fake key: shows that keys never reach output
STEP_SECONDS = 1.0
SERVICES = ("sora-2-relay", "sora-2-pro-relay", "sora-2-reverse", "sora-2-pro-reverse",
            "sora-images", "seedance-relay", "kling-reverse", "openai-status", "gcp-status")


@dataclass(frozen=True, slots=True)
class Beat:
    step: int
    say: str
    act: Callable[[], None]


def _config(path: Path) -> None:
    """Fast intervals for the demo; everything else is the built-in catalog."""
    lines = [f'[bot]\nconcurrency = 20\ntick_seconds = {STEP_SECONDS}\n',
             "[generate]\npoll_min_seconds = 0.2\nedit_every_seconds = 0\n"]
    for sid in SERVICES:
        lines.append(f'[[service]]\nid = "{sid}"\ninterval = {STEP_SECONDS}\ntimeout = 2\n')
    path.write_text("\n".join(lines), encoding="utf-8")


def _script(official: SimRelay, reverse: SimRelay, page: SimStatusPage) -> list[Beat]:
    ids: dict[str, str] = {}
    return [
        Beat(3, "reverse relay: upstream accounts hit risk control (风控)",
             lambda: reverse.set("sora-2", "risk_control")),
        Beat(8, "reverse relay: refusing everything (503)",
             lambda: reverse.set("sora-2", "unavailable")),
        Beat(10, "status.openai.com: incident opened for Sora (we saw it first)",
             lambda: ids.update(incident=page.open_incident("Elevated errors for Sora", "Sora",
                                                            "partial_outage"))),
        Beat(15, "reverse relay: recovers", lambda: reverse.set("sora-2", "ok")),
        Beat(16, "status.openai.com: incident resolved",
             lambda: page.resolve_incident(ids["incident"])),
        Beat(19, "status.openai.com: maintenance window for Sora starts",
             lambda: ids.update(maint=page.start_maintenance("Sora", "Sora API upgrade"))),
        Beat(23, "status.openai.com: maintenance over",
             lambda: page.end_maintenance(ids["maint"])),
    ]


async def run_demo(*, out: TextIO, steps: int = 27, step_seconds: float = STEP_SECONDS) -> int:
    models = ("sora-2", "sora-2-pro", "sora-image", "seedance-1.0-pro", "kling-v2.1")
    async with SimRelay(models=models, api_key=DEMO_KEY) as official, \
            SimRelay(models=models, api_key=DEMO_KEY) as reverse, \
            SimStatusPage(name="OpenAI", components=("Sora", "Images"), incidentio=True) as page:
        for m in ("sora-2", "sora-2-pro"):
            official.set(m, "not_found")  # OpenAI shut Sora 2 down on 2026-09-24
        with tempfile.TemporaryDirectory(prefix="sora-bot-demo-") as tmp:
            cfg = Path(tmp) / "demo.toml"
            _config(cfg)
            env = {"SORA_RELAY_BASE_URL": official.url, "SORA_RELAY_API_KEY": DEMO_KEY,
                   "SORA_REVERSE_BASE_URL": reverse.url, "SORA_REVERSE_API_KEY": DEMO_KEY,
                   "OPENAI_STATUS_URL": page.base_url, "GOOGLE_STATUS_URL": page.base_url,
                   "SORA_BOT_DB": str(Path(tmp) / "demo.db"), "PORT": "0"}
            settings = load_settings(cfg, env)
            out.write("sora-bot demo — simulated relays and status pages on loopback, real "
                      "monitor/store/alerts.\nVeo 3.1 stays 'unknown — not configured' (no "
                      "GEMINI_API_KEY): that is not an outage.\n\n")
            chat = ConsoleChat(out)
            async with open_runtime(settings, chats=[chat], local_channel="demo") as rt:
                beats = {b.step: b for b in _script(official, reverse, page)}
                for i in range(steps):
                    beat = beats.get(i)
                    if beat is not None:
                        out.write(f"\n── t+{i * step_seconds:>4.0f}s  {beat.say}\n")
                        beat.act()
                    await rt.monitor.run_cycle(force=True)
                    await asyncio.sleep(step_seconds)
                now = utcnow()
                out.write("\n" + status_message(status_report(rt.store, settings.services,
                                                              now), now).plain() + "\n")
                for lead in rt.store.detection_leads(since=now - timedelta(hours=1)):
                    if lead.lead_seconds is not None:
                        out.write(f"\nDetection lead: our probes saw '{lead.service}' fail "
                                  f"{format_duration(lead.lead_seconds)} before the status "
                                  f"page confirmed “{lead.incident_name}”.\n")
                billable = official.billable_calls + reverse.billable_calls
                out.write(f"\nBillable calls made by all this probing: {billable}\n")
                await _generate(rt, reverse, out)
                report = digest_report(rt.store, settings.services, now)
                chart = await asyncio.to_thread(render_chart, report)
                out.write("\nThe daily digest (a subscribed channel gets it at its own time, "
                          "chart attached):\n" + digest_message(report, chart=chart).plain()
                          + f"\n    📎 digest.png ({len(chart) / 1024:.0f} KB)\n")
    return 0


async def _generate(rt: Runtime, reverse: SimRelay, out: TextIO) -> None:
    """A test generation routed around what is down (the reverse relay in risk control again)."""
    out.write("\n── the reverse relay slips back into risk control; someone runs\n"
              "   /sora generate a red fox running through snow --seconds 8\n")
    reverse.set("sora-2", "risk_control")
    for _ in range(2):
        await rt.monitor.run_cycle(force=True)

    async def admin() -> bool:
        return True

    reply = await rt.commands.handle(Incoming(
        "console", LOCAL_WORKSPACE, "demo", "demo-user",
        "generate a red fox running through snow --seconds 8", is_admin=admin))
    out.write(f"(private answer) {reply.plain()}\n")
    await rt.generator.drain()
    await rt.monitor.deliver()
    spent = rt.store.spent_today("console", LOCAL_WORKSPACE, rt.clock())
    out.write(f"Spent on test generations today: ${spent:.2f}\n")
