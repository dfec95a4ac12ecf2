"""One contract suite for every Store flavour: in-memory and file-backed SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlite_utils import Database

import bot.store
from bot.messages import Attachment, Message, message_from_json
from bot.models import Health, Outcome, ProbeResult, State, Transition
from bot.store import MIGRATIONS, MaintenanceWindow, OutboxItem, Store

T0 = datetime(2026, 11, 3, 12, 0, 0, 123456, tzinfo=UTC)
OpenStore = Callable[[], Store]


@pytest.fixture(params=["memory", "file"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """A factory, so the file flavour can be reopened; every store it made is closed after."""
    opened: list[Store] = []

    def factory() -> Store:
        store = Store(":memory:" if request.param == "memory" else tmp_path / "bot.db")
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> Store:
    return open_store()


def _result(at: datetime = T0, outcome: Outcome = Outcome.OK, service: str = "sora-relay"
            ) -> ProbeResult:
    return ProbeResult(service, at, outcome, latency_ms=812.5, http_status=200,
                       detail="model sora-2 listed")


def _health(at: datetime = T0, service: str = "sora-relay") -> Health:
    return Health(
        service=service, state=State.RISK_CONTROL, since=at - timedelta(minutes=3),
        reason="success rate 40%", fail_streak=("risk_control", "throttled"), ok_streak=0,
        slow_streak=1, window=(True, False, False, True), last_checked=at,
        last_outcome=Outcome.THROTTLED, first_bad_at=at - timedelta(minutes=5),
    )


def _transition(at: datetime = T0, service: str = "sora-relay") -> Transition:
    return Transition(service, State.OPERATIONAL, State.RISK_CONTROL, at, "captcha wall",
                      evidence={"outcomes": ["risk_control", "throttled"], "rate": 0.4})


def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    assert store.schema_version == len(MIGRATIONS)
    assert store.migrate() == len(MIGRATIONS)


def test_a_future_migration_is_applied_once(store: Store, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    calls: list[int] = []

    def add_note(db: Database) -> None:
        calls.append(1)
        db.execute("ALTER TABLE health ADD COLUMN note TEXT")

    monkeypatch.setattr(bot.store, "MIGRATIONS", (*MIGRATIONS, add_note))
    assert store.migrate() == len(MIGRATIONS) + 1
    assert store.migrate() == len(MIGRATIONS) + 1
    assert calls == [1]
    store.save_health(_health())  # the new column does not break the store
    assert store.load_health("sora-relay") == _health()


def test_a_newer_schema_is_refused(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.store, "MIGRATIONS", ())
    with pytest.raises(RuntimeError, match="newer"):
        store.migrate()


def test_health_round_trips_exactly(store: Store) -> None:
    health = _health()
    store.record(_result(), health, None)

    loaded = store.load_health("sora-relay")

    assert loaded == health
    assert loaded is not None and loaded.since is not None
    assert loaded.since.tzinfo is not None and loaded.since.utcoffset() == timedelta(0)
    assert isinstance(loaded.fail_streak, tuple) and isinstance(loaded.window, tuple)
    assert loaded.state is State.RISK_CONTROL and loaded.last_outcome is Outcome.THROTTLED
    assert store.all_health() == {"sora-relay": health}
    assert store.load_health("veo") is None


def test_default_health_round_trips(store: Store) -> None:
    health = Health(service="veo")
    store.save_health(health)
    assert store.load_health("veo") == health


def test_save_health_replaces_the_row(store: Store) -> None:
    store.save_health(_health())
    newer = Health("sora-relay", State.OPERATIONAL, since=T0, reason="ok", ok_streak=2)
    store.save_health(newer)
    assert store.all_health() == {"sora-relay": newer}


def test_naive_datetimes_are_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        store.save_health(Health("veo", since=datetime(2026, 11, 3, 12, 0)))


def test_record_returns_the_transition_with_an_id(store: Store) -> None:
    stored = store.record(_result(), _health(), _transition())

    assert stored is not None and stored.id is not None
    assert stored == replace(_transition(), id=stored.id)
    assert store.transitions() == [stored]
    assert store.last_transition("sora-relay") == stored


def test_same_transition_twice_is_stored_once(store: Store) -> None:
    first = store.record(_result(), _health(), _transition())
    again = store.record(_result(T0 + timedelta(seconds=30)), _health(), _transition())

    assert first is not None and again == first
    assert store.transitions("sora-relay") == [first]
    assert len(list(store.probes("sora-relay"))) == 2  # the probe rows are both kept


def test_record_without_transition_writes_probe_and_health(store: Store) -> None:
    assert store.record(_result(), _health(), None) is None
    assert store.last_result("sora-relay") == _result()
    assert store.transitions() == []


def test_record_is_atomic(store: Store) -> None:
    bad = Transition("other-service", State.UNKNOWN, State.OPERATIONAL, T0, "x")
    with pytest.raises(ValueError):
        store.record(_result(), _health(), bad)
    naive = Transition("sora-relay", State.UNKNOWN, State.OPERATIONAL, T0.replace(tzinfo=None),
                       "x")
    with pytest.raises(ValueError):
        store.record(_result(), _health(), naive)  # fails after probe + health were written
    assert store.last_result("sora-relay") is None
    assert store.load_health("sora-relay") is None


def test_pending_and_mark_delivered(store: Store) -> None:
    a = store.record(_result(), _health(), _transition())
    b_at = T0 + timedelta(minutes=10)
    b = store.record(_result(b_at), _health(b_at),
                     Transition("sora-relay", State.RISK_CONTROL, State.OPERATIONAL, b_at, "ok"))
    assert a is not None and b is not None and a.id is not None and b.id is not None

    assert [t.id for t in store.pending_transitions()] == [a.id, b.id]
    store.mark_delivered([a.id], T0 + timedelta(minutes=11))
    assert store.pending_transitions() == [b]
    store.mark_delivered([b.id], T0 + timedelta(minutes=12))
    assert store.pending_transitions() == []
    assert store.transitions() == [a, b]  # delivery does not hide history


def test_transitions_filters_and_limit(store: Store) -> None:
    made = []
    for i, service in enumerate(["a", "b", "a", "a"]):
        at = T0 + timedelta(hours=i)
        t = Transition(service, State.UNKNOWN, State.OPERATIONAL if i % 2 else State.DEGRADED,
                       at, f"#{i}")
        made.append(store.record(_result(at, service=service), Health(service), t))

    assert store.transitions(limit=2) == made[2:]
    assert store.transitions("a") == [made[0], made[2], made[3]]
    assert store.transitions("a", since=T0 + timedelta(hours=2)) == made[2:]
    assert store.last_transition("b") == made[1]
    assert store.last_transition("c") is None


def test_probes_export_in_time_order(store: Store) -> None:
    times = [T0 + timedelta(minutes=m) for m in (5, 1, 3)]
    for at in times:
        store.record(_result(at), _health(at), None)
    store.record(_result(T0, service="veo"), _health(service="veo"), None)

    exported = list(store.probes("sora-relay"))

    assert [p.at for p in exported] == sorted(times)
    assert [p.at for p in store.probes(since=T0 + timedelta(minutes=2))] == sorted(times)[1:]
    assert len(list(store.probes())) == 4
    assert store.last_result("sora-relay") == _result(times[0])


def test_maintenance_upserts_on_external_id(store: Store) -> None:
    ends = T0 + timedelta(hours=2)
    first = store.add_maintenance("sora-relay", T0, ends, "DB upgrade", "statuspage:openai",
                                  external_id="inc_1")
    again = store.add_maintenance("sora-relay", T0, ends + timedelta(hours=1), "DB upgrade (ext)",
                                  "statuspage:openai", external_id="inc_1")

    day = timedelta(days=1)
    windows = store.maintenance_windows("sora-relay", T0 - day, T0 + day)
    assert again == first
    assert windows == [MaintenanceWindow(first, "sora-relay", T0, ends + timedelta(hours=1),
                                         "DB upgrade (ext)", "statuspage:openai", "inc_1")]


def test_admin_maintenance_without_external_id_never_merges(store: Store) -> None:
    a = store.add_maintenance("veo", T0, None, "one", "admin")
    b = store.add_maintenance("veo", T0, None, "two", "admin")
    assert a != b
    assert [w.reason for w in store.active_maintenance("veo", T0)] == ["one", "two"]


def test_maintenance_source_is_validated(store: Store) -> None:
    with pytest.raises(ValueError, match="source"):
        store.add_maintenance("veo", T0, None, "x", "someone")


def test_active_and_end_maintenance(store: Store) -> None:
    store.add_maintenance("veo", T0, None, "admin says", "admin")
    store.add_maintenance("veo", T0, None, "page says", "statuspage:google", external_id="m1")
    store.add_maintenance("veo", T0 + timedelta(days=1), None, "scheduled", "admin")
    later = T0 + timedelta(hours=1)

    assert store.active_maintenance("veo", T0 - timedelta(seconds=1)) == []
    assert len(store.active_maintenance("veo", later)) == 2
    assert store.end_maintenance("veo", later, source="admin") == 1
    assert [w.reason for w in store.active_maintenance("veo", later)] == ["page says"]
    assert store.end_maintenance("veo", later) == 1
    assert store.active_maintenance("veo", later) == []
    assert [w.ends_at for w in store.maintenance_windows("veo", T0, later)] == [later, later]
    assert store.active_maintenance("veo", T0 + timedelta(days=2))[0].reason == "scheduled"


def test_detection_leads_are_idempotent(store: Store) -> None:
    confirmed = T0 + timedelta(minutes=7)
    store.record_detection_lead("sora-relay", "inc_9", "Elevated errors", T0, confirmed)
    store.record_detection_lead("sora-relay", "inc_9", "Elevated errors (upd)", T0, confirmed)
    store.record_detection_lead("veo", "g1", "Veo outage", None, confirmed)

    leads = store.detection_leads(T0)

    assert [(d.service, d.incident_name, d.lead_seconds) for d in leads] == [
        ("sora-relay", "Elevated errors", 420.0), ("veo", "Veo outage", None)]
    assert leads[0].probe_first_bad_at == T0 and leads[0].page_confirmed_at == confirmed
    assert store.detection_leads(confirmed + timedelta(seconds=1)) == []


@pytest.mark.parametrize("open_store", ["file"], indirect=True)
def test_data_survives_reopen(open_store: OpenStore) -> None:
    first = open_store()
    transition = first.record(_result(), _health(), _transition())
    window = first.add_maintenance("veo", T0, None, "x", "admin")
    first.close()

    reopened = open_store()

    assert reopened.load_health("sora-relay") == _health()
    assert reopened.transitions() == [transition]
    assert reopened.last_result("sora-relay") == _result()
    assert [w.id for w in reopened.active_maintenance("veo", T0)] == [window]
    assert reopened.schema_version == len(MIGRATIONS)


@pytest.mark.parametrize("open_store", ["file"], indirect=True)
def test_file_store_uses_wal(open_store: OpenStore, tmp_path: Path) -> None:
    open_store().close()
    with closing(sqlite3.connect(tmp_path / "bot.db")) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_memory_path_object_stays_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    monkeypatch.chdir(tmp_path)
    with Store(Path(":memory:")) as store:
        store.save_health(Health("veo"))
        assert store.load_health("veo") == Health("veo")
    assert list(tmp_path.iterdir()) == []


def test_delivered_and_dropped_posts_do_not_keep_their_attachments(store: Store) -> None:
    video = Attachment("v.mp4", b"\x00" * 4096, "video/mp4")
    items = [OutboxItem(f"k{i}", "slack", "C1", Message(title=f"post {i}", attachments=(video,)))
             for i in range(3)]
    store.enqueue(items, T0)
    first, second, third = store.pending_posts()
    assert first.message.attachments == (video,)
    store.post_sent(first.id, "ts-1", T0)
    store.post_dead(second.id, "channel_not_found", T0)
    [left] = store.pending_posts()
    assert left.id == third.id and left.message.attachments == (video,)
    stored = store._db.execute("SELECT key, message FROM outbox ORDER BY id").fetchall()
    kept = {key: message_from_json(text) for key, text in stored}
    assert kept["k0"].attachments == () and kept["k0"].title == "post 0"
    assert kept["k1"].attachments == () and kept["k2"].attachments == (video,)


@pytest.mark.parametrize("open_store", ["file"], indirect=True)
def test_jobs_survive_reopen_with_their_attempts(open_store: OpenStore) -> None:
    first = open_store()
    job = first.reserve_job(platform="discord", workspace="G1", channel="1", user="7",
                            prompt_hash="h", preview="a fox", model="sora-2", seconds=8,
                            size="1280x720", prefer="official", reserve=0.8, budget=10.0,
                            quota=5, now=T0).job
    assert job is not None
    first.update_job(job.id, T0, status="queued", service="relay", upstream_id="video_1",
                     attempts=[{"service": "relay", "result": "accepted", "reason": ""}],
                     notes=["a note"])
    first.close()
    reopened = open_store()
    [active] = reopened.active_jobs()
    assert (active.id, active.status, active.upstream_id, active.reserved) == (
        job.id, "queued", "video_1", 0.8)
    assert active.attempts == ({"service": "relay", "result": "accepted", "reason": ""},)
    assert active.notes == ("a note",) and active.created_at == T0
