"""Benchmark: /sora generate under a burst — how fast users are answered, and what reaches upstream.

50 users ask at once against a daily budget that allows 10 generations; the relay answers every
request after 300 ms (a realistic create latency). Measured: the time each user waits for the
bot's answer (Slack allows 3 s, Discord 3 s before a deferral), the upstream creates, the money
held, and the time until all accepted jobs are posted. Baseline in the same run: answering only
after the upstream create returned (what a naive handler would do). Not a test.
Run: python tests/bench/bench_generate.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx2

from bot.app import open_runtime
from bot.commands import Incoming
from bot.config import load_settings
from bot.providers import VideoRequest
from bot.providers.openai_videos import OpenAIVideos
from bot.sim.relay import SimRelay
from tests.fakes.chat import FakeChat

KEY = "sk-bench-generate-0123456789"
USERS = 50
DELAY = 0.3


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def yes() -> bool:
    return True


async def main() -> None:
    async with SimRelay(api_key=KEY, delay=DELAY, polls_to_complete=2) as relay:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = Path(tmp) / "bot.toml"
            cfg.write_text(
                "[bot]\nbuiltin_catalog = false\n\n[generate]\ndaily_budget_usd = 8.0\n"
                "user_daily_quota = 0\npoll_min_seconds = 0.1\nedit_every_seconds = 10\n\n"
                '[[service]]\nid = "official"\nname = "Sora 2 · official relay"\n'
                'kind = "openai_compat"\nmodel = "sora-2"\naccess = "official"\n'
                f'base_url = "{relay.url}"\napi_key_env = "KEY"\nprice_per_second = 0.10\n',
                encoding="utf-8")
            settings = load_settings(cfg, {"SORA_BOT_DB": str(Path(tmp) / "bot.db"), "KEY": KEY})
            chat = FakeChat("slack")
            async with open_runtime(settings, chats=[chat]) as rt:

                async def ask(i: int) -> tuple[float, str]:
                    started = time.perf_counter()
                    reply = await rt.commands.handle(Incoming(
                        "slack", "T1", "C1", f"U{i}", f"generate fox {i} --seconds 8",
                        is_admin=yes))
                    return time.perf_counter() - started, reply.title

                burst = time.perf_counter()
                answers = await asyncio.gather(*(ask(i) for i in range(USERS)))
                jobs = [await rt.generator.wait(j.id) for j in rt.store.jobs()]
                await rt.monitor.deliver()
                settled = time.perf_counter() - burst
                spent = rt.store.spent_today("slack", "T1", rt.clock())

            # Baseline: answer only once the upstream create returned (same relay, same burst).
            async with httpx2.AsyncClient() as http:
                naive = OpenAIVideos(service=settings.services[0], http_client=http, timeout=30)

                async def naive_ask(i: int) -> float:
                    started = time.perf_counter()
                    await naive.submit(VideoRequest(f"fox {i}", 8, "1280x720"))
                    return time.perf_counter() - started

                baseline = await asyncio.gather(*(naive_ask(i) for i in range(USERS)))

    waits = [w * 1000 for w, _ in answers]
    started_n = sum("started" in t for _, t in answers)
    refused = sum("budget is used up" in t for _, t in answers)
    base = [b * 1000 for b in baseline]
    print(f"{USERS} concurrent /sora generate, budget for 10, relay answering in "
          f"{DELAY * 1000:.0f} ms")
    print(f"  answers: {started_n} started, {refused} refused for budget")
    print(f"  upstream creates by the bot: {relay.billable_calls - USERS} (goal: exactly 10)")
    print(f"  money held then settled: ${spent:.2f} of $8.00")
    began = [w * 1000 for w, t in answers if "started" in t]
    print(f"  user waits for the answer: p50 {statistics.median(waits):.1f} ms, "
          f"p99 {p(waits, 0.99):.1f} ms, max {max(waits):.1f} ms (started ones: p50 "
          f"{statistics.median(began):.1f} ms, max {max(began):.1f} ms, progress message "
          "posted included)")
    ratio = p(base, 0.99) / max(p(waits, 0.99), 1e-9)
    print(f"  baseline (answer after the create): p50 {statistics.median(base):.0f} ms, "
          f"p99 {p(base, 0.99):.0f} ms → {ratio:.0f}× slower at p99")
    print(f"  all {len(jobs)} accepted jobs done and posted {settled:.2f} s after the burst "
          f"({sum(j.status == 'completed' for j in jobs)} completed, "
          f"{len(chat.edits)} progress edits, {len(chat.posts)} posts)")


if __name__ == "__main__":
    asyncio.run(main())
