"""``sora-bot``: run the monitor, ask for status, probe now, export history, try the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import shlex
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from adapters.console import ConsoleChat
from adapters.platforms import Platform, configured_platforms, running
from bot.app import LOCAL_WORKSPACE, Runtime, open_runtime, run_forever
from bot.chat import ChatPort, ChatStartError
from bot.commands import Command, Incoming, UsageError, parse_duration
from bot.config import ConfigError, Settings, load_settings_from_environment
from bot.demo import run_demo
from bot.digest import digest_message, digest_report, render_chart
from bot.messages import Message, Severity, Table, render_table
from bot.redact import Redactor, install_log_redaction
from bot.status import (
    result_json,
    service_message,
    status_message,
    status_report,
    transition_json,
)
from bot.store import Job, Store

CONSOLE = "console"
EPILOG = """\
environment:
  SORA_BOT_CONFIG     config file (same as --config)
  SORA_BOT_DB         SQLite database path (default ./sora-bot.db)
  PORT                port for /healthz and /metrics (default 8080)
  SORA_RELAY_BASE_URL, SORA_RELAY_API_KEY       official relay (OpenAI-compatible /v1)
  SORA_REVERSE_BASE_URL, SORA_REVERSE_API_KEY   reverse relay (OpenAI-compatible /v1)
  GEMINI_API_KEY      Veo 3.1 through the Gemini API (probes; generate uses it too)
  SLACK_BOT_TOKEN     Slack bot token (xoxb-), with SLACK_APP_TOKEN (xapp-, Socket Mode)
                      or SLACK_SIGNING_SECRET (HTTP mode: POST /slack/events on PORT)
  DISCORD_TOKEN       Discord bot token; DISCORD_GUILD_ID registers /sora in one server
                      only (instant, for development)
Run 'sora-bot check-config' to see what is configured and what is missing.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sora-bot", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Can we generate video right now, and through which route? Probes Sora 2 / "
                    "Sora 2 Pro relays, Veo 3.1, Sora Images, successors and vendor status pages "
                    "without ever paying for a generation.")
    p.add_argument("--config", metavar="PATH", help="TOML config file (env SORA_BOT_CONFIG)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="monitor continuously; alerts to chat (console when no token)",
                   description="Probe every service on its interval, post alerts on state "
                               "changes, serve GET /healthz and GET /metrics. With SLACK_BOT_TOKEN "
                               "and/or DISCORD_TOKEN set, /sora works in Slack and/or Discord "
                               "and alerts go to the channels that subscribed. Ctrl-C stops.")
    st = sub.add_parser("status", help="current state from the database (instant, no probing)")
    st.add_argument("service", nargs="?", help="one service id for detail")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    pr = sub.add_parser("probe", help="run one probe cycle now and print the results")
    pr.add_argument("--json", action="store_true", help="machine-readable output")
    sub.add_parser("check-config", help="validate config; show what is configured or missing")
    ex = sub.add_parser("export", help="export services, transitions and probe history")
    ex.add_argument("--format", choices=("json", "csv"), default="json",
                    help="json: everything; csv: the probe results (default json)")
    ex.add_argument("--since", metavar="WHEN",
                    help="ISO-8601 time/date or a duration back from now like 24h, 7d, 90m")
    dg = sub.add_parser("digest", help="print the daily digest of the last 24 h now")
    dg.add_argument("--json", action="store_true", help="machine-readable output")
    dg.add_argument("--chart", metavar="PATH", help="also write the digest chart as a PNG")
    cm = sub.add_parser(
        "command", help="run a /sora command as an admin of the console channel",
        description="The same commands chat users type after /sora, run as an admin of the "
                    "console channel: e.g. 'maintenance sora-2-relay 2h upgrade', 'subscribe "
                    "sora-2* --min suspended', 'subscriptions', 'help'.")
    cm.add_argument("words", nargs=argparse.REMAINDER, metavar="WORDS",
                    help="the command and its arguments")
    gn = sub.add_parser(
        "generate", help="one test generation through the healthiest route (costs money)",
        description="Route one test generation around what is down (as /sora generate does, "
                    "as an admin of the console channel), wait for it, print where it ran and "
                    "what it cost. The daily budget and quota of [generate] apply. Exit 0 when "
                    "a video came back, 1 when the generation failed, 2 when nothing was sent.")
    gn.add_argument("prompt", nargs="+", help="what to generate")
    gn.add_argument("--seconds", type=int, default=4, help="4, 8 or 12 (default 4)")
    gn.add_argument("--size", default="1280x720",
                    help="1280x720, 720x1280, 1792x1024 or 1024x1792 (default 1280x720)")
    gn.add_argument("--model", help="model or service id (default: [generate] default_model)")
    gn.add_argument("--prefer", choices=("official", "reverse"),
                    help="which kind of relay to try first (default: [generate] prefer)")
    gn.add_argument("--out", metavar="FILE", help="write the video to FILE")
    gn.add_argument("--json", action="store_true", help="print the job as JSON")
    sub.add_parser("demo", help="offline demo: simulated providers, a scripted outage, ~30 s")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        _setup_logging(verbose=args.verbose, redactor=Redactor())
        return asyncio.run(run_demo(out=sys.stdout))
    try:
        settings = load_settings_from_environment(args.config)
    except ConfigError as e:
        print(f"sora-bot: config error:\n{e}", file=sys.stderr)
        return 2
    _setup_logging(verbose=args.verbose or settings.log_level == "DEBUG",
                   redactor=Redactor(settings.secrets()))
    if args.command == "check-config":
        return check_config(settings, sys.stdout)
    try:
        return asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    json_out = getattr(args, "json", False)
    chat = ConsoleChat(sys.stderr if json_out else sys.stdout)
    platforms = configured_platforms(settings) if args.command == "run" else []
    chats: list[ChatPort] = [chat, *(p.chat for p in platforms)]
    # The console channel is subscribed for local use; with a chat platform, channels subscribe.
    local = args.command in ("probe", "command") or (args.command == "run" and not platforms)
    async with open_runtime(settings, chats=chats,
                            local_channel=CONSOLE if local else None) as rt:
        now = rt.clock()
        if args.command == "status":
            if args.service:
                svc = settings.service(args.service)
                if svc is None or not svc.enabled:
                    known = ", ".join(s.id for s in settings.services if s.enabled)
                    why = "is disabled in the config" if svc else "is not a service"
                    print(f"sora-bot: {args.service!r} {why}; known: {known}", file=sys.stderr)
                    return 2
            report = status_report(rt.store, settings.services, now, only=args.service)
            if json_out:
                _print_json(report)
            elif args.service:
                print(_service_detail(rt, report["services"][0], now).plain())
            else:
                print(status_message(report, now).plain())
            return 0
        if args.command == "probe":
            cycle = await rt.monitor.run_cycle(force=True)
            report = status_report(rt.store, settings.services, rt.clock())
            if json_out:
                _print_json({"wall_seconds": round(cycle.wall_seconds, 3),
                             "results": [result_json(r) for r in cycle.results],
                             "transitions": [transition_json(t) for t in cycle.transitions],
                             "services": report["services"]})
            else:
                print(status_message(report, rt.clock()).plain())
                print(f"\n{len(cycle.results)} probes in {cycle.wall_seconds:.2f}s, "
                      f"{len(cycle.transitions)} state changes")
            return 0
        if args.command == "export":
            try:
                since = parse_since(args.since, now) if args.since else None
            except ValueError as e:
                print(f"sora-bot: --since: {e}", file=sys.stderr)
                return 2
            export(rt.store, settings, now, since=since, fmt=args.format, out=sys.stdout)
            return 0
        if args.command == "digest":
            return await _digest(rt, now, json_out=json_out, chart_path=args.chart)
        if args.command == "command":
            reply = await rt.commands.handle(Incoming(
                platform=CONSOLE, workspace=LOCAL_WORKSPACE, channel=CONSOLE, user="console",
                text=shlex.join(args.words), is_admin=_yes))
            print(reply.plain())
            if await rt.generator.drain():  # `command generate …` waits for its video
                await rt.monitor.deliver()
            refused = reply.ephemeral and reply.severity is Severity.WARNING
            return 2 if refused else 0
        if args.command == "generate":
            return await _generate(rt, chat, args)
        if args.command == "run":
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            return await _run(rt, platforms, stop)
    raise AssertionError(args.command)


async def _run(rt: Runtime, platforms: Sequence[Platform], stop: asyncio.Event) -> int:
    s = rt.settings
    _announce_chats(rt)
    try:
        async with running(platforms, rt.commands) as routes:
            await run_forever(rt, stop=stop, routes=routes)
    except ChatStartError as e:
        print(f"sora-bot: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the port is taken, or not ours to bind
        print(f"sora-bot: cannot listen on {s.host}:{s.port}: {e.strerror or e}; set PORT "
              "(or [bot] port) to a free port", file=sys.stderr)
        return 2
    return 0


async def _yes() -> bool:
    return True


async def _generate(rt: Runtime, chat: ConsoleChat, args: argparse.Namespace) -> int:
    options = {"seconds": str(args.seconds), "size": args.size}
    options.update({k: v for k in ("model", "prefer") if (v := getattr(args, k))})
    incoming = Incoming(platform=CONSOLE, workspace=LOCAL_WORKSPACE, channel=CONSOLE,
                        user="console", text="generate", is_admin=_yes)
    try:
        reply, job = await rt.generator.begin(
            incoming, Command("generate", (" ".join(args.prompt),), options), _yes)
    except UsageError as e:
        print(f"sora-bot generate: {e}", file=sys.stderr)
        return 2
    if job is None:
        print(reply.plain(), file=sys.stderr)
        return 2
    job = await rt.generator.wait(job.id)
    await rt.monitor.deliver()
    video = next((a for _, m in reversed(chat.sent) for a in m.attachments
                  if a.filename == f"sora-bot-job-{job.id}.mp4"), None)
    if args.out and video is not None:
        await asyncio.to_thread(Path(args.out).write_bytes, video.content)
    if args.json:
        print(json.dumps({**job_json(job), "video": args.out if args.out and video else None},
                         indent=2))
    return 0 if job.status == "completed" else 1


def job_json(job: Job) -> dict[str, Any]:
    """A job as ``generate --json`` prints it (ISO-8601 UTC times)."""
    return {"id": job.id, "status": job.status, "model": job.model, "seconds": job.seconds,
            "size": job.size, "service": job.service, "upstream_id": job.upstream_id,
            "estimate_usd": job.estimate, "cost_usd": job.cost, "reserved_usd": job.reserved,
            "attempts": list(job.attempts), "notes": list(job.notes), "error": job.error,
            "prompt_sha256": job.prompt_hash, "created_at": job.created_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None}


async def _digest(rt: Runtime, now: datetime, *, json_out: bool, chart_path: str | None
                  ) -> int:
    report = digest_report(rt.store, rt.settings.services, now)
    if chart_path:
        png = await asyncio.to_thread(render_chart, report)
        try:
            await asyncio.to_thread(Path(chart_path).write_bytes, png)
        except OSError as e:
            print(f"sora-bot: cannot write {chart_path}: {e.strerror or e}", file=sys.stderr)
            return 2
    if json_out:
        _print_json(report)
    else:
        print(digest_message(report).plain())
    return 0


def _service_detail(rt: Runtime, row: dict[str, Any], now: datetime) -> Message:
    recent = rt.store.transitions(service=row["id"], limit=5)
    return service_message(row, [transition_json(t) for t in recent], now)


def check_config(settings: Settings, out: TextIO) -> int:
    """Print what is configured and what is missing; never prints a secret value."""
    redactor = Redactor(settings.secrets())
    rows = []
    for s in settings.services:
        key = ("set" if s.api_key else "not set") if s.api_key_env else "—"
        where = redactor(s.base_url) or "—"
        rows.append(("✔" if s.missing is None else "✘", s.id, s.kind, s.model or s.component
                     or ",".join(s.products), where, f"{s.api_key_env or '—'} ({key})",
                     f"{s.interval:g}s", s.missing or "ready"))
    table = Table(("", "id", "kind", "model/component", "base URL", "API key", "every",
                   "missing"), tuple(rows))
    out.write(f"config: {settings.config_path or 'none (built-in catalog)'}\n")
    out.write(f"database: {settings.db_path}\nhealth/metrics port: {settings.port}\n")
    slack_mode = {"socket": "slack (Socket Mode)",
                  "http": "slack (HTTP mode on POST /slack/events)"}.get(settings.slack_mode or "")
    chats = [slack_mode] if slack_mode else []
    if settings.discord_token:
        chats.append(f"discord (/sora synced to server {settings.discord_guild_id})"
                     if settings.discord_guild_id else "discord (/sora synced globally)")
    out.write(f"chat: {', '.join(chats) if chats else 'console (no chat token set)'}\n\n")
    out.write(render_table(table) + "\n\n")
    ready = sum(1 for s in settings.services if s.missing is None)
    out.write(f"{ready} of {len(settings.services)} services ready to probe; the others show "
              "as 'unknown — not configured' and are never counted as outages.\n")
    g = settings.generate
    who = [f"users {', '.join(g.allow_users)}" if g.allow_users else "",
           f"roles {', '.join(g.allow_roles)}" if g.allow_roles else "",
           f"in channels {', '.join(g.allow_channels)}" if g.allow_channels else ""]
    routes = [s.id for s in settings.services if s.can_generate_video and s.missing is None
              and s.api_key is not None]
    out.write(f"generate: default model {g.default_model}, {g.prefer} routes first; "
              f"budget ${g.daily_budget_usd:,.2f}/day per workspace; "
              f"{g.user_daily_quota or 'no'} per user per day; allowed: admins"
              f"{'; ' + ', '.join(w for w in who if w) if any(who) else ' only'}; "
              f"routes ready: {', '.join(routes) or 'none'}\n")
    return 0


def _announce_chats(rt: Runtime) -> None:
    """Say where alerts will go, so an empty channel list is not a silent mystery."""
    log = logging.getLogger("bot")
    for platform in rt.chats:
        count = len(rt.store.subscriptions(platform))
        if platform == CONSOLE:
            if count:
                log.info("alerts go to the console")
            continue
        log.info("%s: %d channel(s) subscribed%s", platform, count,
                 "" if count else " — type /sora subscribe in a channel to get alerts there")


def parse_since(text: str, now: datetime) -> datetime:
    with contextlib.suppress(ValueError):
        return now - parse_duration(text)
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither ISO-8601 nor a duration like 24h or 7d") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def export(store: Store, settings: Settings, now: datetime, *, since: datetime | None, fmt: str,
           out: TextIO) -> None:
    probes = (result_json(r) for r in store.probes(since=since))
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=["service", "at", "outcome", "latency_ms",
                                                 "http_status", "error"], lineterminator="\n")
        writer.writeheader()
        for row in probes:
            writer.writerow({k: row[k] for k in writer.fieldnames})
        return
    data = {"services": status_report(store, settings.services, now)["services"],
            "transitions": [transition_json(t) for t in store.transitions(since=since)],
            "probes": list(probes)}
    _print_json(data, out)


def _print_json(data: Any, out: TextIO | None = None) -> None:
    (out or sys.stdout).write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _setup_logging(*, verbose: bool, redactor: Redactor) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx2", "httpcore", "apscheduler", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    install_log_redaction(redactor)


if __name__ == "__main__":
    raise SystemExit(main())
