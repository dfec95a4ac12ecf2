"""``sora-bot demo``: the scripted outage, end to end on loopback simulators, told in order."""

from __future__ import annotations

import io
import time

from bot.catalog import BUILTIN_SERVICES
from bot.demo import DEMO_KEY, run_demo


def _index(text: str, needle: str, start: int = 0) -> int:
    at = text.find(needle, start)
    assert at >= 0, f"{needle!r} not found after offset {start} in:\n{text}"
    return at


async def test_demo_tells_the_scripted_outage_in_order() -> None:
    out = io.StringIO()
    started = time.perf_counter()

    code = await run_demo(out=out, steps=27, step_seconds=0.05)

    elapsed = time.perf_counter() - started
    text = out.getvalue()
    assert code == 0
    assert elapsed < 30, f"the shortened demo took {elapsed:.1f}s"
    assert DEMO_KEY not in text

    # the story, in order: each alert is found after the previous one
    at = 0
    for needle in (
        "Sora 2 · official relay is retired",
        "Sora 2 · reverse relay is in risk control",
        "Sora 2 · reverse relay is suspended",
        "status.openai.com · Sora is degraded",
        "Sora 2 · reverse relay recovered",
        "🔧 Maintenance started: Sora API upgrade",
        "(announced on the status page) — status.openai.com · Sora, Sora 2 · official relay",
        "🔧 Maintenance over: Sora API upgrade",
        "Video API status",  # the final table
        "Detection lead: our probes saw 'sora-2-reverse' fail",
        "Billable calls made by all this probing: 0\n",
        "The daily digest",
        "Daily digest — ",
        "📎 digest.png",
    ):
        at = _index(text, needle, at) + len(needle)

    # the official relay's Sora 2 Pro is retired too; the reverse relay alerts only once each way
    assert "⚫ 2 models retired" in text and "Sora 2 Pro · official relay is retired" in text
    assert text.count("Sora 2 · reverse relay is suspended") == 1
    assert text.count("Sora 2 · reverse relay recovered") == 1
    assert "  ↳ 🟢 Sora 2 · reverse relay recovered" in text  # a reply in the outage's thread
    assert text.count("Maintenance started") == 1 and text.count("Maintenance over") == 1

    table = text[_index(text, "Video API status"):_index(text, "Detection lead")]
    for svc in BUILTIN_SERVICES:
        assert svc["name"] in table, f"{svc['name']!r} missing from the final table"
    rows = {line.split("  ")[1].strip(): line for line in table.splitlines()
            if any(line.startswith(e) for e in "🟢🟡🟠🔴🔧⚫⚪")}
    assert "retired" in rows["Sora 2 · official relay"]
    assert "operational" in rows["Sora 2 · reverse relay"]
    assert "operational" in rows["status.openai.com · Sora"]
    assert "unknown — not configured" in rows["Veo 3.1 · Gemini API"]
