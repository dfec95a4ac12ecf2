"""``sora-bot`` as users run it: ``bot.cli.main(argv)`` with a real SQLite file and real config.

History is written with the real ``Store`` at times relative to the wall clock (the CLI reads
the wall clock); the one probing test points its only service at a refused loopback port, which
fails fast and offline.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import BUILTIN_SERVICES
from bot.cli import main
from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.store import Store

BUILTIN_IDS = [s["id"] for s in BUILTIN_SERVICES]
BUILTIN_NAMES = [s["name"] for s in BUILTIN_SERVICES]
SUBCOMMANDS = ("run", "status", "probe", "digest", "command", "generate", "check-config", "export",
               "demo")
FAKE_SECRET = "sk-CHECKCONFIG-0123456789abcdef"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_INHERITED = ("SORA_RELAY_BASE_URL", "SORA_RELAY_API_KEY", "SORA_REVERSE_BASE_URL",
              "SORA_REVERSE_API_KEY", "GEMINI_API_KEY", "GEMINI_BASE_URL", "OPENAI_STATUS_URL",
              "GOOGLE_STATUS_URL", "SORA_BOT_CONFIG", "PORT")


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A clean environment: no relay/chat variables inherited, the database in ``tmp_path``."""
    for name in list(os.environ):
        if name in _INHERITED or name.startswith(("SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    path = tmp_path / "bot.db"
    monkeypatch.setenv("SORA_BOT_DB", str(path))
    monkeypatch.chdir(tmp_path)  # a stray ./sora-bot.db would land here, not in the repo
    yield path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    capsys.readouterr()  # drop anything printed before this run
    code = main(list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


def write_config(tmp_path: Path, text: str, name: str = "bot.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def record(store: Store, service: str, at: datetime, outcome: Outcome, state: State, *,
           latency_ms: float | None = 120.0, http_status: int | None = 200,
           error: str | None = None, came_from: State | None = None, since: datetime | None = None,
           reason: str = "answering normally") -> None:
    """One probe row + the health it left + (with ``came_from``) the transition it caused."""
    result = ProbeResult(service=service, at=at, outcome=outcome, latency_ms=latency_ms,
                         http_status=http_status, error=error)
    health = Health(service=service, state=state, since=since or at, reason=reason,
                    last_checked=at, last_outcome=outcome)
    transition = (None if came_from is None else
                  Transition(service=service, from_state=came_from, to_state=state, at=at,
                             reason=reason))
    store.record(result, health, transition)


def reverse_relay_outage(db: Path, now: datetime) -> dict[str, datetime]:
    """sora-2-reverse: up 3 h ago, still up 2 h ago, suspended 10 min ago (3 probes, 2 changes)."""
    up, still = now - timedelta(hours=3), now - timedelta(hours=2)
    down = now - timedelta(minutes=10)
    with Store(db) as store:
        record(store, "sora-2-reverse", up, Outcome.OK, State.OPERATIONAL,
               came_from=State.UNKNOWN, latency_ms=110.0)
        record(store, "sora-2-reverse", still, Outcome.OK, State.OPERATIONAL, since=up,
               latency_ms=130.5)
        record(store, "sora-2-reverse", down, Outcome.UNAVAILABLE, State.SUSPENDED,
               came_from=State.OPERATIONAL, latency_ms=45.0, http_status=503,
               error="HTTP 503: upstream overloaded", reason="HTTP 503: upstream overloaded")
    return {"up": up, "still": still, "down": down}


def parse_z(text: str) -> datetime:
    assert ISO_Z.match(text), f"{text!r} is not an ISO-8601 UTC time ending in Z"
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- status ---------------------------------------------------------------------------------


def test_status_json_has_the_documented_shape(db: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    now = now_utc()
    times = reverse_relay_outage(db, now)

    run = cli(capsys, "status", "--json")

    assert run.code == 0
    data = run.json()
    rows = data["services"]
    assert [r["id"] for r in rows] == BUILTIN_IDS
    for row in rows:
        assert {"id", "name", "status", "since", "uptime", "latency_ms", "last_checked",
                "detail"} <= set(row), row
        assert set(row["uptime"]) == {"24h", "7d", "30d"}
        assert set(row["latency_ms"]) == {"p50", "p95"}
        assert row["status"] in {s.value for s in State}
    by_id = {r["id"]: r for r in rows}

    reverse = by_id["sora-2-reverse"]
    assert reverse["name"] == "Sora 2 · reverse relay"
    assert reverse["status"] == "suspended"
    assert parse_z(reverse["since"]) == times["down"]
    assert parse_z(reverse["last_checked"]) == times["down"]
    assert reverse["detail"] == "HTTP 503: upstream overloaded"
    # 2 h 50 min up, then 10 min suspended, out of 3 h of data
    assert reverse["uptime"]["24h"] == pytest.approx(170 / 180 * 100, abs=0.01)
    assert reverse["latency_ms"]["p50"] is not None

    never = by_id["sora-2-pro-reverse"]
    assert never["status"] == "unknown"
    assert never["since"] is None and never["last_checked"] is None
    assert never["detail"] == "not configured (set SORA_REVERSE_BASE_URL)"
    assert never["uptime"] == {"24h": None, "7d": None, "30d": None}


def test_status_json_of_an_unconfigured_service_says_what_to_set(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "status", "sora-2-reverse", "--json")

    assert run.code == 0
    [row] = run.json()["services"]
    assert row["id"] == "sora-2-reverse"
    assert row["status"] == "unknown"
    assert row["detail"] == "not configured (set SORA_REVERSE_BASE_URL)"


def test_status_of_one_service_shows_detail_and_recent_transitions(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reverse_relay_outage(db, now_utc())

    run = cli(capsys, "status", "sora-2-reverse")

    assert run.code == 0
    assert "Sora 2 · reverse relay" in run.out
    assert "suspended" in run.out
    assert "HTTP 503: upstream overloaded" in run.out
    assert "Recent transitions" in run.out
    assert "unknown → operational" in run.out
    assert "operational → suspended" in run.out
    assert "Sora 2 Pro" not in run.out  # one service, not the table


def test_status_of_an_unknown_service_exits_2_naming_the_known_ids(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "status", "nope")

    assert run.code == 2
    assert "nope" in run.err
    for sid in BUILTIN_IDS:
        assert sid in run.err
    assert run.out == ""


def test_status_table_lists_every_builtin_service(db: Path, capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    reverse_relay_outage(db, now_utc())

    run = cli(capsys, "status")

    assert run.code == 0
    for name in BUILTIN_NAMES:
        assert name in run.out, f"{name!r} missing from the status table"
    assert "not configured" in run.out
    reverse_line = next(line for line in run.out.splitlines()
                        if "Sora 2 · reverse relay" in line)
    assert "suspended" in reverse_line


def test_status_of_a_disabled_service_does_not_crash(
        tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A service switched off in the config is still a known id: answer, or refuse cleanly."""
    cfg = write_config(tmp_path, '[[service]]\nid = "sora-2-relay"\nenabled = false\n')

    run = cli(capsys, "--config", str(cfg), "status", "sora-2-relay")

    if run.code == 0:
        assert "Sora 2 · official relay" in run.out
    else:
        assert run.code == 2
        assert "sora-2-relay" in run.err


# --- probe ----------------------------------------------------------------------------------

REFUSED_SERVICE = """\
[bot]
builtin_catalog = false

[[service]]
id = "dead"
name = "Dead relay"
kind = "openai_compat"
model = "sora-2"
base_url = "http://127.0.0.1:9/v1"
failure_threshold = 1
timeout = 2
"""


def test_probe_json_reports_a_refused_relay_as_unavailable(
        tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, REFUSED_SERVICE)

    run = cli(capsys, "--config", str(cfg), "probe", "--json")

    assert run.code == 0
    data = run.json()  # stdout is pure JSON: the alert went elsewhere
    [result] = data["results"]
    assert result["service"] == "dead"
    assert result["outcome"] == "unavailable"
    assert result["http_status"] is None
    parse_z(result["at"])
    assert [(t["from"], t["to"]) for t in data["transitions"]] == [("unknown", "suspended")]
    assert [s["status"] for s in data["services"]] == ["suspended"]
    assert "Dead relay is suspended" in run.err  # the console alert goes to stderr
    # and it was stored: a later `status --json` reads it back without probing
    again = cli(capsys, "--config", str(cfg), "status", "--json")
    assert [s["status"] for s in again.json()["services"]] == ["suspended"]


def test_probe_never_prints_the_api_key(tmp_path: Path, db: Path,
                                        capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, REFUSED_SERVICE.replace(
        'base_url = "http://127.0.0.1:9/v1"',
        'base_url_env = "DEAD_URL"\napi_key_env = "DEAD_KEY"'))
    monkeypatch.setenv("DEAD_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("DEAD_KEY", FAKE_SECRET)

    run = cli(capsys, "-v", "--config", str(cfg), "probe", "--json")
    text = cli(capsys, "--config", str(cfg), "probe")

    assert run.code == 0 and text.code == 0
    assert run.json()["results"][0]["outcome"] == "unavailable"
    for output in (run.out, run.err, text.out, text.err):
        assert FAKE_SECRET not in output


# --- export ---------------------------------------------------------------------------------


def test_export_json_has_services_transitions_and_probes(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    times = reverse_relay_outage(db, now_utc())

    run = cli(capsys, "export", "--format", "json")

    assert run.code == 0
    data = run.json()
    assert {"services", "transitions", "probes"} <= set(data)
    assert [s["id"] for s in data["services"]] == BUILTIN_IDS
    assert all({"id", "name", "status", "since", "uptime", "latency_ms", "last_checked",
                "detail"} <= set(s) for s in data["services"])
    transitions = data["transitions"]
    assert all(set(t) == {"service", "from", "to", "at", "reason"} for t in transitions)
    assert [(t["service"], t["from"], t["to"], parse_z(t["at"])) for t in transitions] == [
        ("sora-2-reverse", "unknown", "operational", times["up"]),
        ("sora-2-reverse", "operational", "suspended", times["down"])]
    probes = data["probes"]
    assert all({"service", "at", "outcome", "latency_ms", "http_status", "error"} <= set(p)
               for p in probes)
    assert [(p["outcome"], parse_z(p["at"]), p["http_status"]) for p in probes] == [
        ("ok", times["up"], 200), ("ok", times["still"], 200),
        ("unavailable", times["down"], 503)]
    assert probes[2]["error"] == "HTTP 503: upstream overloaded"
    assert probes[1]["latency_ms"] == 130.5


def test_export_csv_writes_one_row_per_probe(db: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    times = reverse_relay_outage(db, now_utc())

    run = cli(capsys, "export", "--format", "csv")

    assert run.code == 0
    lines = run.out.splitlines()
    assert lines[0] == "service,at,outcome,latency_ms,http_status,error"
    rows = list(csv.DictReader(io.StringIO(run.out)))
    assert len(rows) == 3
    assert [(r["service"], parse_z(r["at"]), r["outcome"]) for r in rows] == [
        ("sora-2-reverse", times["up"], "ok"), ("sora-2-reverse", times["still"], "ok"),
        ("sora-2-reverse", times["down"], "unavailable")]
    assert rows[2]["http_status"] == "503"
    assert float(rows[2]["latency_ms"]) == 45.0
    assert rows[2]["error"] == "HTTP 503: upstream overloaded"
    assert rows[0]["error"] == ""


def test_export_since_excludes_older_rows(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = now_utc()
    times = reverse_relay_outage(db, now)

    as_csv = cli(capsys, "export", "--format", "csv", "--since", "1h")
    as_json = cli(capsys, "export", "--since", "1h")
    iso = cli(capsys, "export", "--format", "csv", "--since",
              (now - timedelta(minutes=150)).isoformat().replace("+00:00", "Z"))

    assert as_csv.code == 0 and as_json.code == 0 and iso.code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.out)))
    assert [parse_z(r["at"]) for r in rows] == [times["down"]]
    data = as_json.json()
    assert [parse_z(p["at"]) for p in data["probes"]] == [times["down"]]
    assert [(t["from"], t["to"]) for t in data["transitions"]] == [("operational", "suspended")]
    assert [parse_z(r["at"]) for r in csv.DictReader(io.StringIO(iso.out))] == [
        times["still"], times["down"]]


def test_export_since_garbage_exits_2_with_a_clear_message(
        db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "export", "--since", "garbage")

    assert run.code == 2
    assert "--since" in run.err
    assert "garbage" in run.err
    assert "24h" in run.err or "ISO" in run.err
    assert run.out == ""


# --- check-config ---------------------------------------------------------------------------


def _rows_by_id(text: str) -> dict[str, str]:
    rows = {}
    for line in text.splitlines():
        tokens = line.split()
        if len(tokens) > 1 and tokens[1] in BUILTIN_IDS:
            rows[tokens[1]] = line
    return rows


def test_check_config_lists_every_service_and_never_prints_a_secret(
        db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_RELAY_API_KEY", FAKE_SECRET)
    monkeypatch.setenv("SORA_REVERSE_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("SORA_REVERSE_API_KEY", FAKE_SECRET + "-reverse")

    run = cli(capsys, "check-config")

    assert run.code == 0
    rows = _rows_by_id(run.out)
    assert set(rows) == set(BUILTIN_IDS)
    # key set, base URL missing: says exactly what is missing, and that the key is there
    assert "set SORA_RELAY_BASE_URL" in rows["sora-2-relay"]
    assert "SORA_RELAY_API_KEY (set)" in rows["sora-2-relay"]
    assert "ready" in rows["sora-2-reverse"]
    assert "SORA_REVERSE_API_KEY (set)" in rows["sora-2-reverse"]
    assert "set GEMINI_API_KEY" in rows["veo-3.1"]
    assert "(not set)" in rows["veo-3.1"]
    assert "ready" in rows["openai-status"]
    assert "ready" in rows["gcp-status"]
    for sid in ("sora-2-relay", "sora-2-pro-relay", "sora-images", "seedance-relay"):
        assert "ready" not in rows[sid]
    assert FAKE_SECRET not in run.out + run.err


def test_check_config_with_nothing_set(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = cli(capsys, "check-config")

    assert run.code == 0
    rows = _rows_by_id(run.out)
    assert "set SORA_REVERSE_BASE_URL" in rows["sora-2-reverse"]
    assert "SORA_REVERSE_API_KEY (not set)" in rows["sora-2-reverse"]
    assert str(db) in run.out


# --- config errors --------------------------------------------------------------------------


def test_unknown_key_in_a_service_names_the_key_and_the_line(
        tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, """\
[bot]
builtin_catalog = false

[[service]]
id = "x"
name = "X"
colour = "red"
kind = "openai_compat"
model = "m"
""")

    run = cli(capsys, "--config", str(cfg), "status")

    assert run.code == 2
    assert "colour" in run.err
    assert "bot.toml:7" in run.err
    assert run.out == ""


def test_unknown_key_in_bot_and_a_bad_value_name_key_and_line(
        tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    unknown = write_config(tmp_path, "[bot]\nconcurency = 4\n", name="unknown.toml")
    bad = write_config(tmp_path, '[[service]]\nid = "sora-2-reverse"\n\ninterval = -5\n',
                       name="bad.toml")

    first = cli(capsys, "--config", str(unknown), "check-config")
    second = cli(capsys, "--config", str(bad), "check-config")

    assert first.code == 2
    assert "concurency" in first.err and "unknown.toml:2" in first.err
    assert second.code == 2
    assert "interval" in second.err and "bad.toml:4" in second.err


def test_invalid_toml_exits_2(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
                              ) -> None:
    cfg = write_config(tmp_path, '[bot\nport = "x\n')

    run = cli(capsys, "--config", str(cfg), "status")

    assert run.code == 2
    assert "invalid TOML" in run.err
    assert "bot.toml" in run.err


def test_api_key_in_the_file_is_refused_secrets_come_from_env(
        tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write_config(tmp_path, f'[[service]]\nid = "sora-2-relay"\napi_key = "{FAKE_SECRET}"\n')

    run = cli(capsys, "--config", str(cfg), "check-config")

    assert run.code == 2
    assert "api_key" in run.err
    assert "environment" in run.err
    assert "bot.toml:3" in run.err
    assert FAKE_SECRET not in run.out + run.err


def test_missing_config_file_exits_2(db: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    by_flag = cli(capsys, "--config", "/nonexistent/bot.toml", "status")
    monkeypatch.setenv("SORA_BOT_CONFIG", "/nonexistent/from-env.toml")
    by_env = cli(capsys, "status")

    assert by_flag.code == 2 and "/nonexistent/bot.toml" in by_flag.err
    assert by_env.code == 2 and "/nonexistent/from-env.toml" in by_env.err


def test_config_flag_wins_over_env(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, REFUSED_SERVICE)
    monkeypatch.setenv("SORA_BOT_CONFIG", "/nonexistent/from-env.toml")

    run = cli(capsys, "--config", str(cfg), "status", "--json")

    assert run.code == 0
    assert [s["id"] for s in run.json()["services"]] == ["dead"]


# --- help -----------------------------------------------------------------------------------


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])

    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert re.search(rf"^\s+{re.escape(command)}\b", out, re.MULTILINE), command
    assert "--config" in out
    assert "SORA_BOT_DB" in out


def test_run_help_says_what_run_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", "--help"])

    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "/healthz" in out
    assert "/metrics" in out
    assert "alert" in out.lower()


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])

    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


# --- digest and command ---------------------------------------------------------------------


def test_digest_json_and_text_and_chart(tmp_path: Path, db: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    reverse_relay_outage(db, now_utc())
    run = cli(capsys, "digest", "--json")
    assert run.code == 0
    report = run.json()
    row = next(r for r in report["services"] if r["id"] == "sora-2-reverse")
    assert row["status"] == "suspended"
    assert [t["to"] for t in row["transitions_24h"]] == ["operational", "suspended"]
    assert report["generation"] is None  # no invented numbers

    chart = tmp_path / "digest.png"
    run = cli(capsys, "digest", "--chart", str(chart))
    assert run.code == 0 and run.out.startswith("Daily digest — ")
    assert "Sora 2 · reverse relay" in run.out and "HTTP 503: upstream overloaded" in run.out
    assert chart.read_bytes().startswith(b"\x89PNG")

    run = cli(capsys, "digest", "--chart", str(tmp_path / "no-such-dir" / "c.png"))
    assert run.code == 2 and "cannot write" in run.err


def test_command_manages_the_console_channel(db: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    run = cli(capsys, "command", "subscribe", "sora-2*", "--min", "suspended")
    assert run.code == 0 and "suspended or worse" in run.out
    run = cli(capsys, "command", "maintenance", "sora-2-relay", "2h", "<!channel>", "upgrade")
    assert run.code == 0
    assert "<!channel>" not in run.out and "<\u200b!channel> upgrade" in run.out
    assert "🔧 Maintenance started" in run.out  # announced to the console subscription
    with Store(db) as store:
        sub = store.subscription("console", "local", "console")
        assert sub is not None and sub.services == ("sora-2*",)
        assert sub.min_state is State.SUSPENDED
        windows = store.active_maintenance("sora-2-relay", now_utc() + timedelta(seconds=1))
        assert [w.source for w in windows] == ["admin"]

    run = cli(capsys, "command", "subscribe", "nope*")
    assert run.code == 2 and "matches no service" in run.out
    run = cli(capsys, "command", "frobnicate")
    assert run.code == 2 and "unknown command" in run.out


def test_run_on_a_taken_port_exits_2_saying_what_to_do(
        db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        monkeypatch.setenv("PORT", str(taken.getsockname()[1]))
        run = cli(capsys, "run")
    assert run.code == 2
    assert "cannot listen on" in run.err and "set PORT" in run.err
