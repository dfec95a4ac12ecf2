"""Benchmark: ``/sora status`` in Discord, from the interaction arriving over the gateway to the
answer, with 90 days of history.

Run: ``python tests/bench/bench_discord_status.py [--services 30] [--runs 100]``. Not collected
by pytest.

The database is the one ``bench_status.py`` builds (N services × 90 days: raw probes once a
minute for 14 days, hourly rollups before, transitions, maintenance). The real discord.py client
logs in to the loopback fake Discord and holds its gateway; the real ``/sora`` command tree
answers through the core. Each run pushes a ``/sora status`` INTERACTION_CREATE over the
gateway and times (a) the interaction callback — Discord's 3-second limit to respond — from just
before the push to the callback being recorded, and (b) the same delay as the fake measured it
(``Callback.after``, from the push to the callback request).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from contextlib import suppress
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import discord

from adapters.discord import DiscordCommands, make_client
from bot.commands import Commands
from bot.config import ServiceConfig
from bot.store import Store
from tests.bench.bench_status import DAYS, NOW, history, percentile
from tests.fakes.discord_api import Callback, FakeDiscord, pointed_at

LIMIT_MS = 3000.0  # Discord forgets an interaction not responded to within 3 s
READY_WAIT = 10.0  # seconds to wait for the gateway's READY
MEMBER = discord.Permissions(view_channel=True, send_messages=True).value
ANSWERED, DEFERRED = 4, 5  # CHANNEL_MESSAGE_WITH_SOURCE, DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE


async def measure(store: Store, services: list[str], runs: int
                  ) -> tuple[list[float], list[float], list[Callback]]:
    configs = [ServiceConfig(id=s, name=s, kind="openai_compat", model="m",
                             base_url="http://relay.invalid/v1") for s in services]
    commands = Commands(store=store, services=configs, clock=lambda: NOW)
    firsts: list[float] = []
    afters: list[float] = []
    callbacks: list[Callback] = []
    async with FakeDiscord() as fake:
        with pointed_at(fake):
            client = make_client()
            DiscordCommands(client, commands)
            await client.login(fake.token)
            connecting = asyncio.create_task(client.connect())
            try:
                await asyncio.wait_for(client.wait_until_ready(), READY_WAIT)
                for run in range(runs + 1):  # the first one warms up (tree, page cache)
                    payload = fake.command_payload("status", permissions=MEMBER)
                    interaction_id = str(payload["id"])
                    started = time.perf_counter()
                    await fake.push("INTERACTION_CREATE", payload)
                    for _ in range(20_000):  # polled every 0.5 ms, for up to 10 s
                        found = [c for c in fake.callbacks if c.interaction_id == interaction_id]
                        if found:
                            break
                        await asyncio.sleep(0.0005)
                    else:
                        raise TimeoutError(f"run {run}: no interaction callback within 10 s")
                    done = time.perf_counter()
                    if run:
                        firsts.append((done - started) * 1000)
                        afters.append(found[0].after * 1000)
                        callbacks.append(found[0])
                await fake.wait_for(lambda: bool(fake.answers(interaction_id))
                                    and not fake.thinking(interaction_id), within=10)
                answer = fake.answers(interaction_id)
            finally:
                await client.close()
                connecting.cancel()
                with suppress(asyncio.CancelledError):
                    await connecting
    # The status table: a subtext header line, then one line per service (after the
    # "Usable now" text, and split over several embeds if it is long).
    lines = "\n".join(e.get("description", "") for m in answer for e in m.embeds).splitlines()
    [header] = [i for i, line in enumerate(lines) if line.startswith("-# Service")]
    table = [line for line in lines[header:] if line.strip()]
    assert len(table) == len(services) + 1, (len(table), lines)
    return firsts, afters, callbacks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    services = [f"service-{i:02d}" for i in range(args.services)]
    with history(services) as store:
        firsts, afters, callbacks = asyncio.run(measure(store, services, args.runs))
    print(f"/sora status in Discord, {args.services} services x {DAYS} days of history, "
          f"{args.runs} interactions over the loopback gateway (ms):")
    print("         first response   callback as the fake saw it")
    for p in (50, 95, 99):
        first, after = percentile(sorted(firsts), p), percentile(sorted(afters), p)
        print(f"  p{p:<3} {first:14.1f} {after:29.1f}")
    print(f"  max  {max(firsts):14.1f} {max(afters):29.1f}")
    worst = max(firsts)
    print(f"Discord's limit {LIMIT_MS:.0f} ms: slowest first response used "
          f"{worst / LIMIT_MS:.1%} of it")
    deferred = sum(c.type == DEFERRED for c in callbacks)
    refused = [c.error for c in callbacks if c.error is not None]
    if deferred:
        print(f"deferred anyway (callback type {DEFERRED}, not {ANSWERED}): "
              f"{deferred} of {len(callbacks)}")
    if refused:
        print(f"refused by the fake: {len(refused)} (codes {sorted(set(refused))})")
    answered = all(c.type == ANSWERED and c.error is None for c in callbacks)
    return 0 if worst < LIMIT_MS and answered else 1


if __name__ == "__main__":
    sys.exit(main())
