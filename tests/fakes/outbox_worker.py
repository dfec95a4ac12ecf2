"""A delivery worker in its own process, for the kill tests (tests/e2e/test_outbox_durability).

    python -m tests.fakes.outbox_worker DB_PATH PLATFORM_URL [--platform http] [--timeout 30]

Opens the SQLite database, runs ``Outbox.run`` with an ``HttpChat`` to the fake platform and the
real UTC clock, and exits 0 once no post is pending (2 if ``--timeout`` passes first).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

import httpx2

from bot.outbox import Outbox
from bot.store import Store
from tests.fakes.chat_platform import HttpChat


def utcnow() -> datetime:
    return datetime.now(UTC)


async def work(db: str, url: str, *, platform: str) -> None:
    """Deliver until the outbox is empty."""
    with Store(db) as store:
        async with httpx2.AsyncClient(timeout=httpx2.Timeout(30.0)) as client:
            chat = HttpChat(client, url, platform=platform)
            outbox = Outbox(store=store, chats={platform: chat}, clock=utcnow)
            stop = asyncio.Event()
            worker = asyncio.create_task(outbox.run(stop, idle=0.1))
            try:
                # the store has no change notification: poll it
                while store.pending_posts():  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            finally:
                stop.set()
                await worker


async def main(args: argparse.Namespace) -> int:
    try:
        async with asyncio.timeout(args.timeout):
            await work(args.db, args.url, platform=args.platform)
    except TimeoutError:
        print("timed out with posts pending", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("url")
    parser.add_argument("--platform", default="http")
    parser.add_argument("--timeout", type=float, default=30.0)
    sys.exit(asyncio.run(main(parser.parse_args())))
