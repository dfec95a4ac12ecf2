"""Benchmark: ``/sora status`` in Slack, from the signed request to the answer, with 90 days of
history.

Run: ``python tests/bench/bench_slack_status.py [--services 30] [--runs 100]``. Not collected by
pytest.

The database is the one ``bench_status.py`` builds (N services × 90 days: raw probes once a
minute for 14 days, hourly rollups before, transitions, maintenance). The real Bolt app serves
``POST /slack/events`` on the bot's aiohttp server; each run signs a ``/sora status`` request,
posts it over loopback HTTP, and times (a) the HTTP answer — Slack's 3-second ack limit — and
(b) the Block Kit table arriving at the response URL of the loopback fake Slack.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx2

from adapters.slack import EVENTS_PATH, SlackCommands, make_web_client
from bot.commands import Commands
from bot.config import ServiceConfig
from bot.metrics import Metrics
from bot.server import Route, build_app, serve
from bot.store import Store
from tests.bench.bench_status import DAYS, NOW, history, percentile
from tests.fakes.slack_api import FakeSlack, signed_slash_command

SECRET = "bench-signing-secret"
LIMIT_MS = 3000.0  # Slack drops a slash command not answered within 3 s


async def measure(store: Store, services: list[str], runs: int) -> tuple[list[float], list[float]]:
    configs = [ServiceConfig(id=s, name=s, kind="openai_compat", model="m",
                             base_url="http://relay.invalid/v1") for s in services]
    commands = Commands(store=store, services=configs, clock=lambda: NOW)
    async with FakeSlack() as slack, httpx2.AsyncClient() as http:
        bolt = SlackCommands(client=make_web_client(slack.bot_token, base_url=slack.api_url),
                             commands=commands, signing_secret=SECRET)
        app = build_app(metrics=Metrics(), last_cycle=lambda: NOW, clock=lambda: NOW,
                        started_at=NOW, stale_after=60,
                        routes=[Route("POST", EVENTS_PATH, bolt.handle_http)])
        runner, port = await serve(app, host="127.0.0.1", port=0)
        acks, answers = [], []
        try:
            for run in range(runs + 1):  # the first one warms up (auth.test, page cache)
                url = slack.response_url()
                body, headers = signed_slash_command(SECRET, "status", response_url=url)
                started = time.perf_counter()
                response = await http.post(f"http://127.0.0.1:{port}{EVENTS_PATH}",
                                           content=body, headers=headers)
                acked = time.perf_counter()
                assert response.status_code == 200, response.text
                path = urlparse(url).path
                for _ in range(20_000):  # polled every 0.5 ms, for up to 10 s
                    if any(r.path == path for r in slack.responses):
                        break
                    await asyncio.sleep(0.0005)
                done = time.perf_counter()
                if run:
                    acks.append((acked - started) * 1000)
                    answers.append((done - started) * 1000)
            [reply] = [r.body for r in slack.responses if r.path == path]
            [table] = [b for b in reply["blocks"] if b["type"] == "table"]
            assert len(table["rows"]) == len(services) + 1
        finally:
            await runner.cleanup()
    return acks, answers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    services = [f"service-{i:02d}" for i in range(args.services)]
    with history(services) as store:
        acks, answers = asyncio.run(measure(store, services, args.runs))
    print(f"/sora status in Slack, {args.services} services x {DAYS} days of history, "
          f"{args.runs} signed requests over loopback HTTP (ms):")
    print("         ack (HTTP 200)   answer at response URL")
    for p in (50, 95, 99):
        ack, answer = percentile(sorted(acks), p), percentile(sorted(answers), p)
        print(f"  p{p:<3} {ack:10.1f} {answer:18.1f}")
    print(f"  max  {max(acks):10.1f} {max(answers):18.1f}")
    worst = max(answers)
    print(f"Slack's limit {LIMIT_MS:.0f} ms: slowest answer used {worst / LIMIT_MS:.1%} of it")
    return 0 if worst < LIMIT_MS else 1


if __name__ == "__main__":
    sys.exit(main())
