"""Benchmark: the `/sora status` queries over a realistic database.

Run: ``python tests/bench/bench_status.py [--services 30] [--runs 200]``. Not collected by pytest.

Builds a temp-file database with N services × 90 days of history (raw probes once a minute for
the last 14 days, hourly rollups for the 76 days before, a few transitions per service per day,
some maintenance), then times the whole status query for every service — health, uptimes
24h/7d/30d, latency 24h p50/p95, stars — and prints percentiles against the 50 ms goal.
Wall-clock and CPU (thread) time are both shown: on a busy machine the wall-clock tail measures
the neighbours as much as the queries.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bot.config import ServiceConfig
from bot.models import Health, Outcome, State
from bot.status import status_report
from bot.store import Store

NOW = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
DAYS, RAW_DAYS = 90, 14
GOAL_MS = 50.0
SHOWN = ("24h", "7d", "30d")  # the uptime windows `/sora status` shows
STATES = [State.OPERATIONAL, State.DEGRADED, State.RISK_CONTROL, State.OPERATIONAL,
          State.SUSPENDED]


def build(path: Path, services: list[str], rng: random.Random) -> None:
    """Create the schema through Store, then bulk-load history with one raw connection."""
    Store(path).close()
    now = NOW.timestamp()
    with closing(sqlite3.connect(path)) as conn, conn:
        for service in services:
            conn.executemany(
                "INSERT INTO probes (service, at, outcome, latency_ms, http_status, passive)"
                " VALUES (?, ?, ?, ?, ?, 0)",
                _probes(service, now, rng),
            )
            conn.executemany(
                "INSERT INTO rollups (service, hour, count, successes, failures, outcomes,"
                " latency_count, latency_sum, latency_p50, latency_p95)"
                " VALUES (?, ?, 60, 58, 2, ?, 58, ?, ?, ?)",
                _rollups(service, now, rng),
            )
            conn.executemany(
                "INSERT INTO transitions (service, from_state, to_state, at, reason, evidence,"
                " delivered_at) VALUES (?, ?, ?, ?, 'bench', '{}', ?)",
                _transitions(service, now, rng),
            )


def _probes(service: str, now: float, rng: random.Random) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for minute in range(RAW_DAYS * 24 * 60):
        ok = rng.random() > 0.03
        rows.append((service, now - 60.0 * (minute + 1), "ok" if ok else "unavailable",
                     rng.lognormvariate(6.5, 0.4), 200 if ok else 503))
    return rows


def _rollups(service: str, now: float, rng: random.Random) -> list[tuple[object, ...]]:
    outcomes = json.dumps({"ok": 58, "unavailable": 2})
    first_raw_hour = now - RAW_DAYS * 86400.0
    rows: list[tuple[object, ...]] = []
    for hour in range(1, (DAYS - RAW_DAYS) * 24 + 1):
        p50 = rng.uniform(500, 900)
        rows.append((service, first_raw_hour - hour * 3600.0, outcomes, 58 * p50 * 1.1, p50,
                     p50 * 2.2))
    return rows


def _transitions(service: str, now: float, rng: random.Random) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    at, previous = now - DAYS * 86400.0, State.UNKNOWN
    while True:
        at += rng.uniform(2, 10) * 3600.0  # about four changes a day
        if at >= now:
            return rows
        state = rng.choice([s for s in STATES if s is not previous])
        rows.append((service, previous.value, state.value, at, at + 5))
        previous = state


def finish(store: Store, services: list[str], rng: random.Random) -> None:
    """Health rows and maintenance windows, through the public API."""
    for service in services:
        last = store.last_transition(service)
        assert last is not None
        store.save_health(Health(service, last.to_state, since=last.at, reason="bench",
                                 window=(True,) * 10, last_checked=NOW,
                                 last_outcome=Outcome.OK))
        for day in rng.sample(range(1, DAYS), 3):
            start = NOW - timedelta(days=day)
            store.add_maintenance(service, start, start + timedelta(hours=2), "bench",
                                  "statuspage:bench", external_id=f"m{day}")


@contextmanager
def history(services: list[str], seed: int = 42) -> Iterator[Store]:
    """A temporary database holding ``services`` × 90 days of history, rolled up."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        build(path, services, rng)
        with Store(path) as store:
            finish(store, services, rng)
            store.rollup(NOW)
            yield store


def status(store: Store, services: list[str]) -> list[dict[str, object]]:
    """Exactly what `sora-bot status` and `/sora status` run: ``bot.status.status_report``."""
    configs = tuple(ServiceConfig(id=s, name=s, kind="openai_compat", model="m",
                                  base_url="http://relay.invalid/v1") for s in services)
    rows: list[dict[str, object]] = status_report(store, configs, NOW)["services"]
    return rows


def percentile(ordered: list[float], p: float) -> float:
    return ordered[max(0, min(len(ordered) - 1, round(p / 100 * len(ordered)) - 1))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(42)
    services = [f"service-{i:02d}" for i in range(args.services)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        started = time.perf_counter()
        build(path, services, rng)
        with Store(path) as store:
            finish(store, services, rng)
            built = time.perf_counter() - started
            started = time.perf_counter()
            rolled = store.rollup(NOW)
            rollup_s = time.perf_counter() - started
            size_mb = path.stat().st_size / 1e6
            print(f"built {args.services} services x {DAYS} days in {built:.1f} s "
                  f"({size_mb:.0f} MB); first rollup of {RAW_DAYS} raw days: "
                  f"{rolled} hours in {rollup_s:.1f} s")
            status(store, services)  # warm the page cache
            wall, cpu = [], []
            for _ in range(args.runs):
                started, started_cpu = time.perf_counter(), time.thread_time()
                result = status(store, services)
                wall.append((time.perf_counter() - started) * 1000)
                cpu.append((time.thread_time() - started_cpu) * 1000)
    print(f"sample: {result[0]}")
    print(f"status query, all {args.services} services, {args.runs} runs (ms):")
    print("         wall     cpu")
    for p in (50, 95, 99):
        print(f"  p{p:<3} {percentile(sorted(wall), p):7.2f} {percentile(sorted(cpu), p):7.2f}")
    print(f"  mean {statistics.fmean(wall):7.2f} {statistics.fmean(cpu):7.2f}")
    print(f"  max  {max(wall):7.2f} {max(cpu):7.2f}")
    p99 = percentile(sorted(wall), 99)
    print(f"goal wall p99 <= {GOAL_MS:.0f} ms: {'MET' if p99 <= GOAL_MS else 'MISSED'}")
    return 0 if p99 <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
