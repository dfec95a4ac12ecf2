"""The route plan (pure) and the pieces of generate that need no network: prompts, durations,
prices, the job store's reservation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from bot.config import GenerateSettings, ServiceConfig
from bot.generate import clean_prompt
from bot.models import Health, Outcome, State
from bot.providers.openai_videos import is_moderation, nearest_seconds
from bot.router import plan_routes, routes_for, video_models
from bot.store import Store

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
KEY = SecretStr("sk-test-0123456789")


def svc(sid: str, model: str, access: str, **kw: Any) -> ServiceConfig:
    return ServiceConfig(id=sid, name=sid.replace("-", " ").title(), kind="openai_compat",
                         model=model, access=access, base_url="http://relay.test/v1",
                         api_key=KEY, **kw)


OFFICIAL = svc("sora-official", "sora-2", "official", price_per_second=0.10)
REVERSE = svc("sora-reverse", "sora-2", "reverse", price_per_request=0.08)
SEEDANCE = svc("seedance", "seedance-1.0-pro", "official", successor_of=("sora-2",),
               price_per_second=0.05)
KLING = svc("kling", "kling-v2.1", "reverse", successor_of=("sora-2",), price_per_request=0.10)
IMAGES = svc("images", "sora-image", "official", media="image")
SERVICES = (KLING, SEEDANCE, REVERSE, OFFICIAL, IMAGES)
GEN = GenerateSettings()


def plan(model: str = "sora-2", *, prefer: str = "official", services: Any = SERVICES,
         health: dict[str, Health] | None = None, cooling: dict[str, datetime] | None = None,
         gen: GenerateSettings = GEN) -> Any:
    return plan_routes(model, prefer=prefer, services=services, gen=gen, health=health or {},
                       cooldown_until=cooling or {}, now=NOW)


def ids(p: Any) -> list[str]:
    return [s.id for s in p.candidates]


def test_own_routes_first_in_the_preferred_order_then_successors() -> None:
    assert ids(plan()) == ["sora-official", "sora-reverse", "seedance", "kling"]
    assert ids(plan(prefer="reverse")) == ["sora-reverse", "sora-official", "kling", "seedance"]
    assert plan().successors == {"seedance", "kling"}


def test_configured_routes_replace_the_default_order() -> None:
    gen = GenerateSettings(routes={"sora-2": ("kling", "sora-official")})
    assert ids(plan(gen=gen)) == ["kling", "sora-official"]
    assert routes_for("sora-2", SERVICES, gen, "official")[1] == {"kling"}


def test_image_services_are_never_video_routes() -> None:
    assert "sora-image" not in video_models(SERVICES)
    assert video_models(SERVICES) == ["kling-v2.1", "sora-2", "seedance-1.0-pro"]
    assert ids(plan("sora-image")) == []


@pytest.mark.parametrize(("state", "cause", "reason"), [
    (State.SUSPENDED, Outcome.UNAVAILABLE, "suspended"),
    (State.RETIRED, Outcome.GONE, "retired"),
    (State.RISK_CONTROL, Outcome.RISK_CONTROL, "in risk control"),
    (State.MAINTENANCE, Outcome.MAINTENANCE, "under maintenance"),
    (State.UNKNOWN, Outcome.MISCONFIGURED, "unknown — credentials rejected"),
])
def test_bad_states_are_skipped_with_their_reason(state: State, cause: Outcome,
                                                  reason: str) -> None:
    health = {"sora-official": Health(service="sora-official", state=state, cause=cause,
                                      reason="credentials rejected")}
    p = plan(health=health)
    assert "sora-official" not in ids(p)
    [skip] = [s for s in p.skipped if s.service == "sora-official"]
    assert skip.reason == reason


@pytest.mark.parametrize("state", [State.OPERATIONAL, State.DEGRADED, State.UNKNOWN])
def test_usable_states_are_tried(state: State) -> None:
    health = {"sora-official": Health(service="sora-official", state=state)}
    assert ids(plan(health=health))[0] == "sora-official"


def test_a_route_past_its_shutdown_date_is_retired_and_a_successor_says_why() -> None:
    retired = svc("sora-official", "sora-2", "official", shutdown_date=date(2026, 9, 24))
    p = plan(services=(retired, SEEDANCE))
    assert ids(p) == ["seedance"]
    assert p.skipped[0].reason == "retired (shut down 2026-09-24)"
    assert p.note(SEEDANCE) == "sora-2 retired → routed to Seedance"
    assert p.note(retired) is None


def test_not_configured_and_cooling_down_routes_are_skipped() -> None:
    no_key = ServiceConfig(id="nokey", name="No key", kind="openai_compat", model="sora-2",
                           base_url="http://relay.test/v1", api_key_env="NOKEY_KEY")
    no_url = ServiceConfig(id="nourl", name="No URL", kind="openai_compat", model="sora-2",
                           base_url_env="NOURL_BASE")
    p = plan(services=(no_key, no_url, OFFICIAL),
             cooling={"sora-official": NOW + timedelta(seconds=90)})
    assert ids(p) == []
    assert [s.reason for s in p.skipped] == ["not configured (set NOKEY_KEY)",
                                             "not configured (set NOURL_BASE)",
                                             "cooling down after a failure (1m left)"]
    assert ids(plan(cooling={"sora-official": NOW - timedelta(seconds=1)}))[0] == \
        "sora-official"


def test_prices_per_second_and_per_request() -> None:
    assert OFFICIAL.estimate(8) == 0.80 and REVERSE.estimate(12) == 0.08
    assert svc("free", "m", "official").estimate(4) is None


@pytest.mark.parametrize(("requested", "allowed", "made"), [
    (8, (), 8), (8, (4, 6, 8), 8), (12, (4, 6, 8), 8), (8, (5, 10), 5), (4, (5, 10), 5),
    (12, (5, 10), 10)])
def test_nearest_duration_a_model_makes(requested: int, allowed: tuple[int, ...],
                                        made: int) -> None:
    assert nearest_seconds(requested, allowed) == made


@pytest.mark.parametrize(("code", "message", "moderated"), [
    ("moderation_blocked", "", True), ("sentinel_block", None, True),
    ("content_policy_violation", "", True), (None, "blocked by our moderation system", True),
    ("invalid_request_error", "Invalid value for 'seconds'", False),
    ("model_not_found", "The model does not exist", False)])
def test_moderation_refusals_are_recognised(code: str | None, message: str | None,
                                            moderated: bool) -> None:
    assert is_moderation(code, message) is moderated


@pytest.mark.parametrize(("typed", "clean"), [
    ("a red fox", "a red fox"), ("  a\tred\r\nfox  ", "a red fox"), ("a\x00b\x1bc", "abc"),
    ("zero\u200bwidth\u202eflip", "zerowidthflip"), ("\x07\x08", ""), ("狐狸 🦊", "狐狸 🦊")])
def test_prompts_lose_control_characters(typed: str, clean: str) -> None:
    assert clean_prompt(typed) == clean


# --- the reservation ----------------------------------------------------------------------------

def reserve(store: Store, *, user: str = "U1", amount: float = 0.8, budget: float | None = 2.0,
            quota: int | None = 5, workspace: str = "T1", now: datetime = NOW) -> Any:
    return store.reserve_job(platform="slack", workspace=workspace, channel="C1", user=user,
                             prompt_hash="h", preview="p", model="sora-2", seconds=8,
                             size="1280x720", prefer="official", reserve=amount, budget=budget,
                             quota=quota, now=now)


def test_the_budget_counts_reserved_then_settled_money_per_workspace_and_day() -> None:
    with Store(":memory:") as store:
        first, second = reserve(store), reserve(store, user="U2")
        assert first.job and second.job
        third = reserve(store, user="U3")
        assert (third.job, third.refused, third.spent) == (None, "budget", pytest.approx(1.6))
        store.update_job(first.job.id, NOW, status="completed", cost=0.2, finished_at=NOW)
        assert store.spent_today("slack", "T1", NOW) == pytest.approx(1.0)
        assert reserve(store, user="U3").job is not None  # settling freed $0.60
        assert reserve(store, workspace="T2").job is not None  # another workspace's budget
        assert reserve(store, now=NOW + timedelta(days=1)).job is not None  # a new day


def test_the_quota_is_per_user_and_jobs_no_route_took_do_not_count() -> None:
    with Store(":memory:") as store:
        first = reserve(store, quota=2, budget=None)
        store.update_job(first.job.id, NOW, status="unrouted", cost=0.0, finished_at=NOW)
        assert reserve(store, quota=2, budget=None).job is not None
        assert reserve(store, quota=2, budget=None).job is not None
        over = reserve(store, quota=2, budget=None)
        assert (over.refused, over.used) == ("quota", 2)
        assert reserve(store, quota=2, budget=None, user="U2").job is not None


def test_only_job_fields_can_be_updated() -> None:
    with Store(":memory:") as store:
        job = reserve(store).job
        with pytest.raises(ValueError, match="not job fields: user"):
            store.update_job(job.id, NOW, user="someone else")
        with pytest.raises(KeyError):
            store.update_job(999, NOW, status="failed")
