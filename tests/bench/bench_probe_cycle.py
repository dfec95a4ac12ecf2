"""Benchmark: one probe cycle over 200 services on a loopback relay answering in 200 ms.

Prints the monitor's wall time (goal ≤ 1 s) and the ratio against a naive sequential loop doing
the same work (probe, classify, fold, persist) measured in the same run. Not a test.
Run: python tests/bench/bench_probe_cycle.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.app import make_http_client, utcnow
from bot.chat import MessageRef
from bot.classify import Context, classify
from bot.config import Settings, load_settings
from bot.messages import Message
from bot.models import Health, ProbeResult
from bot.monitor import Monitor
from bot.probes import run_probe
from bot.redact import Redactor
from bot.sim import SimRelay
from bot.state import step
from bot.store import Store

N = 200
DELAY = 0.2
KEY = "sk-bench-000000000000000000"


class NullChat:
    platform = "null"

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None
                   ) -> MessageRef:
        return MessageRef("null", channel, "0")

    async def edit(self, ref: MessageRef, message: Message) -> None:
        return None


def settings(tmp: Path, url: str) -> Settings:
    cfg = tmp / "bench.toml"
    cfg.write_text("[bot]\nbuiltin_catalog = false\nconcurrency = 200\n\n" + "".join(
        f'[[service]]\nid = "svc-{i}"\nname = "svc {i}"\nkind = "openai_compat"\n'
        f'model = "m-{i}"\nbase_url = "{url}"\napi_key_env = "K"\ntimeout = 5\n\n'
        for i in range(N)), encoding="utf-8")
    return load_settings(cfg, {"K": KEY, "SORA_BOT_DB": str(tmp / "bench.db")})


async def naive(s: Settings, store: Store) -> float:
    """What one would write first: probe each service after the other."""
    async with make_http_client(s) as client:
        started = time.perf_counter()
        for svc in s.services:
            now = utcnow()
            obs = await run_probe(svc, client=client, now=now)
            verdict = classify(obs, Context(now=now, slow_ms=svc.slow_ms))
            result = ProbeResult(svc.id, now, verdict.outcome, obs.latency_ms, obs.http_status)
            health = store.load_health(svc.id) or Health(service=svc.id)
            new, transition = step(health, result, svc.policy, now)
            store.record(result, new, transition)
        return time.perf_counter() - started


async def main() -> None:
    async with SimRelay(models=tuple(f"m-{i}" for i in range(N)), api_key=KEY,
                        delay=DELAY) as relay:
        with tempfile.TemporaryDirectory() as tmp:
            s = settings(Path(tmp), relay.url)
            store = Store(s.db_path)
            walls = []
            async with make_http_client(s) as client:
                monitor = Monitor(settings=s, store=store, client=client, outbox=None,
                                  clock=utcnow, redactor=Redactor(s.secrets()))
                for _ in range(5):
                    report = await monitor.run_cycle(force=True)
                    assert len(report.results) == N
                    assert all(r.outcome.value == "ok" for r in report.results), \
                        {r.outcome for r in report.results}
                    walls.append(report.wall_seconds)
            baseline = await naive(s, store)
            store.close()
    best, median = min(walls), statistics.median(walls)
    print(f"probe cycle: {N} services, loopback relay answering in {DELAY * 1000:.0f} ms")
    print(f"  monitor (concurrent, bounded at {s.concurrency}): "
          f"first {walls[0]:.3f}s  best {best:.3f}s  median {median:.3f}s  (goal ≤ 1 s: "
          f"{'met' if median <= 1.0 else 'NOT met'})")
    print(f"  naive sequential loop: {baseline:.2f}s")
    print(f"  speed-up: {baseline / median:.1f}× (median), {baseline / best:.1f}× (best)")
    print(f"  billable calls during the benchmark: {relay.billable_calls}")


if __name__ == "__main__":
    asyncio.run(main())
