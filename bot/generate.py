"""``/sora generate``: validate, authorise, reserve the money, route, poll, deliver.

Order matters and is the point of this module:

1. Input and permission are checked first; a refusal sends nothing upstream.
2. The routes are planned (pure); when none can serve, the user is told why, for each.
3. The user's daily quota and the workspace's daily budget are checked and the job is created
   holding the most expensive candidate's estimate — one SQLite transaction, so concurrent
   requests can never overspend. Only then is anything sent upstream.
4. A background task submits through the router (one create, fallback only when it certainly
   was not accepted), polls with backoff honouring the provider's hints, edits the progress
   message at most every ``edit_every_seconds``, then settles the cost and hands the video to
   the durable outbox in the same transaction that finishes the job. A restarted bot resumes
   polling unfinished jobs, so a result is posted once.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.chat import ChatPort, MessageRef
from bot.commands import PREFER, VIDEO_SECONDS, VIDEO_SIZES, Command, Incoming, UsageError
from bot.config import GenerateSettings, ServiceConfig
from bot.job_messages import (
    money,
    no_route_message,
    preview,
    progress_message,
    result_message,
)
from bot.messages import Attachment, Message, Severity, neutralize
from bot.metrics import Metrics
from bot.models import Health
from bot.providers import JobStatus, PollError, TooLarge, VideoProvider, VideoRequest
from bot.router import Attempt, Plan, Router, Skip, plan_routes, video_models
from bot.store import Job, OutboxItem, Store

log = logging.getLogger(__name__)

_POLL_ERRORS_MAX = 10  # consecutive failed polls before a job is given up


@dataclass(frozen=True, slots=True)
class Ask:
    """A validated generate request."""

    request: VideoRequest
    model: str
    prefer: str
    pinned: str | None = None  # ``--model SERVICE-ID``: that route first


def clean_prompt(text: str) -> str:
    """Control and format characters removed, whitespace runs folded to one space."""
    kept = "".join(" " if c in "\t\r\n" else c for c in text
                   if c in "\t\r\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"))
    return " ".join(kept.split())


class Generator:
    """Runs generations. Everything it touches is injected (store, chats, providers, clock)."""

    def __init__(self, *, gen: GenerateSettings, services: Sequence[ServiceConfig], store: Store,
                 chats: Mapping[str, ChatPort],
                 providers: Callable[[ServiceConfig], VideoProvider], router: Router,
                 health: Callable[[], Mapping[str, Health]], clock: Callable[[], datetime],
                 deliver: Callable[[], Awaitable[object]] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 metrics: Metrics | None = None) -> None:
        """``health``: current state per service (the monitor's). ``deliver``: flush the
        outbox now (the result post). ``sleep``: waits between polls. ``metrics`` counts
        finished jobs and their spend."""
        self._gen = gen
        self._services = tuple(s for s in services if s.enabled)
        self._by_id = {s.id: s for s in self._services}
        self._names = {s.id: s.name for s in self._services}
        self._models = video_models(self._services)
        self._store = store
        self._chats = chats
        self._providers = providers
        self._router = router
        self._health = health
        self._clock = clock
        self._deliver = deliver
        self._sleep = sleep
        self._metrics = metrics
        self._tasks: dict[int, asyncio.Task[Job]] = {}
        self._last_edit: dict[int, datetime] = {}
        self._skipped: dict[int, tuple[Skip, ...]] = {}

    @property
    def models(self) -> list[str]:
        """Models a user can ask for (adapters offer them)."""
        return list(self._models)

    # --- starting a job ---------------------------------------------------------------------

    def validate(self, command: Command) -> Ask:
        """The request in ``command``, or ``UsageError`` saying what is wrong (nothing sent)."""
        gen = self._gen
        prompt = clean_prompt(" ".join(command.args))
        if not prompt:
            raise UsageError("say what to generate: `generate a red fox running through snow`",
                             "generate")
        if len(prompt) > gen.max_prompt_chars:
            raise UsageError(f"the prompt is too long ({len(prompt)} characters, at most "
                             f"{gen.max_prompt_chars})", "generate")
        model = command.options.get("model", gen.default_model)
        pinned = None
        if model in self._by_id and self._by_id[model].can_generate_video:
            pinned, model = model, str(self._by_id[model].model)
        if model not in self._models:
            raise UsageError(f"'{neutralize(model[:64])}' is not a video model here; known: "
                             f"{', '.join(self._models) or 'none'}", "generate")
        prefer = command.options.get("prefer", gen.prefer).lower()
        if prefer not in PREFER:
            raise UsageError("--prefer is `official` or `reverse`", "generate")
        allowed = self._seconds_for(model)
        text = command.options.get("seconds", "4").lower().removesuffix("s")
        if not text.isdigit() or int(text) not in allowed:
            raise UsageError(f"--seconds is one of {', '.join(map(str, allowed))}", "generate")
        size = command.options.get("size", VIDEO_SIZES[0]).lower()
        if size not in VIDEO_SIZES:
            raise UsageError(f"--size is one of {', '.join(VIDEO_SIZES)}", "generate")
        return Ask(VideoRequest(prompt, int(text), size), model, prefer, pinned)

    def _seconds_for(self, model: str) -> tuple[int, ...]:
        """Sora's durations, plus any a service of ``model`` declares it makes."""
        extra = {n for s in self._services if s.model == model for n in s.video_seconds}
        return tuple(sorted(set(VIDEO_SECONDS) | extra))

    async def may_generate(self, incoming: Incoming, is_admin: Callable[[], Awaitable[bool]]
                           ) -> bool:
        """Allow-lists of users, roles and channels; none set means admins only."""
        gen = self._gen
        in_channel = not gen.allow_channels or incoming.channel in gen.allow_channels
        if gen.allow_users or gen.allow_roles:
            listed = incoming.user in gen.allow_users or bool(
                set(incoming.roles) & set(gen.allow_roles))
        else:
            listed = bool(gen.allow_channels)
        if in_channel and listed:
            return True
        return await is_admin()

    def _estimate(self, svc: ServiceConfig, request: VideoRequest) -> float | None:
        """The price of ``request`` on ``svc`` at the duration that route actually makes."""
        return svc.estimate(self._providers(svc).adapt(request).seconds)

    def plan(self, model: str, prefer: str) -> Plan:
        return plan_routes(model, prefer=prefer, services=self._services, gen=self._gen,
                           health=self._health(), cooldown_until=self._router.cooldown_until,
                           now=self._clock())

    async def start(self, incoming: Incoming, command: Command,
                    is_admin: Callable[[], Awaitable[bool]]) -> Message:
        """Check, reserve, post the progress message and start the job in the background;
        the answer is private to the user who asked."""
        message, _ = await self.begin(incoming, command, is_admin)
        return message

    async def begin(self, incoming: Incoming, command: Command,
                    is_admin: Callable[[], Awaitable[bool]]) -> tuple[Message, Job | None]:
        """``start``, also returning the job when one was started."""
        ask = self.validate(command)
        if not await self.may_generate(incoming, is_admin):
            return _refusal("🚫 You are not allowed to run test generations here",
                            "Generations cost money: an admin decides who may run them "
                            "(`[generate] allow_users`, `allow_roles`, `allow_channels`)."), None
        chat = self._chats.get(incoming.platform)
        if chat is None:
            raise UsageError("generations need a chat connection to report to")
        plan = self.plan(ask.model, ask.prefer)
        if ask.pinned is not None:
            plan = replace(plan, candidates=tuple(sorted(plan.candidates,
                                                         key=lambda s: s.id != ask.pinned)))
        if not plan.candidates:
            return no_route_message(ask.model, plan.skipped), None
        now = self._clock()
        estimates = [self._estimate(s, ask.request) for s in plan.candidates]
        priced = [e for e in estimates if e is not None]
        reserve = max(priced, default=0.0)
        gen = self._gen
        reservation = self._store.reserve_job(
            platform=incoming.platform, workspace=incoming.workspace, channel=incoming.channel,
            user=incoming.user, prompt_hash=hashlib.sha256(ask.request.prompt.encode()).hexdigest(),
            preview=preview(ask.request.prompt), model=ask.model, seconds=ask.request.seconds,
            size=ask.request.size, prefer=ask.prefer, reserve=reserve,
            budget=gen.daily_budget_usd, quota=gen.user_daily_quota or None, now=now)
        if reservation.refused == "quota":
            return _refusal(f"🚫 You have used your {gen.user_daily_quota} test generations "
                            "for today", "The count starts again at 00:00 UTC."), None
        if reservation.refused == "budget":
            left = max(0.0, gen.daily_budget_usd - reservation.spent)
            return _refusal("🚫 Today's generation budget is used up",
                            f"{money(left)} of {money(gen.daily_budget_usd)} left today; this "
                            f"would need up to {money(reserve)}. It resets at 00:00 UTC."), None
        job = reservation.job
        assert job is not None
        log.info("generate: job %d by %s on %s (prompt %s, reserved %s)", job.id, incoming.user,
                 incoming.platform, job.prompt_hash[:12], money(reserve))
        self._skipped[job.id] = plan.skipped
        ref = await self._post_progress(chat, job)
        if ref is not None:
            job = self._store.update_job(job.id, now, progress_ref=_ref_text(ref))
        self._spawn(job.id, self._route_then_poll(job, plan, ask.request))
        where = ("progress is posted in this channel" if ref is not None else
                 "its progress could not be posted here (see the bot's log); the video still "
                 "comes to this channel")
        held = (f"Up to {money(reserve)} is held from today's budget until it is done."
                if len(priced) == len(estimates) else
                f"Up to {money(reserve)} is held from today's budget; some routes have no price "
                "configured, so what they cost is not counted.")
        return Message(title=f"🎬 Test generation #{job.id} started",
                       text=f"Routing to {plan.candidates[0].name} first; {where}. {held}",
                       severity=Severity.INFO, ephemeral=True), job

    # --- the background work ----------------------------------------------------------------

    def _spawn(self, job_id: int, work: Awaitable[Job]) -> None:
        task = asyncio.ensure_future(self._guarded(job_id, work))
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))

    async def wait(self, job_id: int) -> Job:
        """Until the job's background work ends (CLI and tests); the job as stored."""
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        job = self._store.job(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        return job

    async def drain(self) -> list[Job]:
        """Until every job this process runs has finished (the one-shot CLI)."""
        return [await self.wait(job_id) for job_id in list(self._tasks)]

    def resume(self) -> int:
        """After a restart: poll accepted jobs again; a job caught mid-submit may have been
        accepted, so it is reported uncertain (never resubmitted). Returns jobs resumed."""
        resumed = 0
        for job in self._store.active_jobs():
            if job.id in self._tasks:
                continue
            if job.status in ("queued", "in_progress") and job.upstream_id and job.service:
                self._spawn(job.id, self._poll(job))
                resumed += 1
            else:
                self._spawn(job.id, self._interrupted(job))
        return resumed

    async def close(self) -> None:
        """Stop the background work (jobs stay in the store and resume on the next start)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded(self, job_id: int, work: Awaitable[Job]) -> Job:
        """A bug in a job's work finishes the job with an error, never silently."""
        try:
            return await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("generate: job %d failed in the bot", job_id)
            job = self._store.job(job_id)
            if job is None:
                raise
            return await self._finish(job, "error", error="the bot hit an error (see its log)",
                                      cost=job.estimate if job.upstream_id else job.reserved)

    async def _route_then_poll(self, job: Job, plan: Plan, request: VideoRequest) -> Job:
        job = await self._route(job, plan, request)
        if job.status in ("queued", "in_progress"):
            job = await self._poll(job)
        return job

    async def _route(self, job: Job, plan: Plan, request: VideoRequest) -> Job:
        attempts: list[dict[str, Any]] = []

        def record(attempt: Attempt) -> None:
            if attempt.result != "submitting" and attempts and \
                    attempts[-1]["result"] == "submitting":
                attempts.pop()
            attempts.append(attempt.as_dict())
            self._store.update_job(job.id, self._clock(), attempts=attempts)

        routed = await self._router.submit(plan, request, self._providers, on_attempt=record)
        job = self._store.job(job.id) or job
        if routed.submitted is not None and routed.service is not None:
            svc = routed.service
            notes = [*self._providers(svc).adapt(request).notes,
                     *filter(None, [plan.note(svc)])]
            job = self._store.update_job(
                job.id, self._clock(), status=routed.submitted.state, service=svc.id,
                upstream_id=routed.submitted.job_id, progress=routed.submitted.progress,
                estimate=self._estimate(svc, request), notes=notes)
            await self._edit(job, force=True)
            return job
        error = routed.error
        if error is not None and error.kind == "final":
            return await self._finish(job, "refused", service=routed.service, cost=0.0,
                                      error=f"{error.reason} — not retried on another route")
        if error is not None and error.kind == "uncertain" and routed.service is not None:
            svc = routed.service
            return await self._finish(
                job, "uncertain", service=svc, cost=self._estimate(svc, request),
                error=f"{error.reason}. It may have been accepted (and billed), so it was not "
                      f"sent anywhere else; check {svc.name} before trying again.")
        tried = "; ".join(f"{self._names.get(a.service, a.service)}: {a.reason}"
                          for a in routed.attempts) or "every route was cooling down"
        return await self._finish(job, "unrouted", cost=0.0,
                                  error=f"No route accepted it ({tried}). Nothing was charged.")

    async def _poll(self, job: Job) -> Job:
        svc = self._by_id.get(job.service or "")
        if svc is None or job.upstream_id is None:
            return await self._finish(job, "error", error="its route is no longer configured",
                                      cost=job.estimate)
        provider = self._providers(svc)
        gen = self._gen
        deadline = job.created_at + timedelta(minutes=gen.job_timeout_minutes)
        delay, errors = gen.poll_min_seconds, 0
        while True:
            await self._sleep(delay)
            if self._clock() > deadline:
                return await self._finish(
                    job, "expired", cost=job.estimate,
                    error=f"no result after {gen.job_timeout_minutes:g} minutes; stopped "
                          f"waiting (upstream job {job.upstream_id})")
            try:
                status = await provider.status(job.upstream_id)
            except PollError as e:
                errors += 1
                log.warning("generate: job %d poll failed (%d): %s", job.id, errors, e)
                if errors >= _POLL_ERRORS_MAX:
                    return await self._finish(job, "expired", cost=job.estimate,
                                              error=f"could not ask {svc.name} for the result: "
                                                    f"{e}")
                delay = min(delay * 2, gen.poll_max_seconds)
                continue
            errors = 0
            if status.state == "completed":
                return await self._deliver_result(job, svc, provider, status)
            if status.state == "failed":
                why = ": ".join(filter(None, [status.error_code, status.error_message]))
                return await self._finish(job, "failed", cost=0.0,
                                          error=f"{svc.name} reported the job failed"
                                                f"{': ' + why if why else ''}")
            if (status.state, status.progress) != (job.status, job.progress):
                job = self._store.update_job(job.id, self._clock(), status=status.state,
                                             progress=status.progress)
                await self._edit(job)
            hint = status.poll_after
            delay = hint if hint is not None else delay * 1.5
            delay = min(max(delay, gen.poll_min_seconds), gen.poll_max_seconds)

    async def _deliver_result(self, job: Job, svc: ServiceConfig, provider: VideoProvider,
                              status: JobStatus) -> Job:
        cap = int(self._gen.max_video_mb * 1024 * 1024)
        video: Attachment | None = None
        too_large = None
        try:
            download = await provider.download(str(job.upstream_id), max_bytes=cap)
            video = Attachment(f"sora-bot-job-{job.id}.mp4", download.content, download.mime,
                               alt=job.preview)
        except TooLarge:
            too_large = (f"The video is larger than the bot's {self._gen.max_video_mb:g} MB cap, "
                         f"so it was not downloaded: fetch it from {svc.name} "
                         f"(job {job.upstream_id}).")
        except PollError as e:
            too_large = f"The video could not be downloaded ({e}); it is at {svc.name} " \
                        f"(job {job.upstream_id})."
        cost = svc.estimate(status.seconds) if status.seconds else job.estimate
        done = self._store.job(job.id) or job
        finished = replace(done, status="completed", progress=100, cost=cost)
        post = OutboxItem(f"gen:{job.id}:result@{job.platform}", job.platform, job.channel,
                          result_message(finished, self._names, video=video,
                                         too_large=too_large))
        job = await self._finish(job, "completed", cost=cost, progress=100, post=post)
        return job

    async def _interrupted(self, job: Job) -> Job:
        """A job the bot stopped during routing (it restarted)."""
        # "accepted" but no upstream id stored: the restart came between the two writes.
        in_flight = [a for a in job.attempts if a.get("result") in ("submitting", "accepted")]
        if in_flight:
            svc = self._by_id.get(str(in_flight[-1]["service"]))
            name = svc.name if svc else str(in_flight[-1]["service"])
            return await self._finish(
                job, "uncertain", service=svc, cost=job.reserved,
                error=f"The bot restarted while sending it to {name}: it may have been "
                      "accepted (and billed), so it was not sent again.")
        return await self._finish(job, "error", cost=0.0,
                                  error="The bot restarted before sending it; nothing was "
                                        "charged. Run it again.")

    async def _finish(self, job: Job, status: str, *, cost: float | None,
                      error: str | None = None, service: ServiceConfig | None = None,
                      progress: int | None = None, post: OutboxItem | None = None) -> Job:
        fields: dict[str, Any] = {"status": status, "cost": cost if cost is not None else 0.0,
                                  "finished_at": self._clock()}
        if error is not None:
            fields["error"] = error
        if service is not None:
            fields["service"] = service.id
        if progress is not None:
            fields["progress"] = progress
        job = self._store.update_job(job.id, self._clock(), post=post, **fields)
        log.info("generate: job %d %s (%s)", job.id, status, money(job.cost))
        if self._metrics is not None:
            self._metrics.generations.labels(status, job.service or "").inc()
            self._metrics.generation_spend.inc(job.cost or 0.0)
        await self._edit(job, force=True)
        self._skipped.pop(job.id, None)
        self._last_edit.pop(job.id, None)
        if post is not None and self._deliver is not None:
            await self._deliver()
        return job

    # --- progress messages ------------------------------------------------------------------

    async def _post_progress(self, chat: ChatPort, job: Job) -> MessageRef | None:
        try:
            ref = await chat.send(job.channel, self._progress(job))
        except Exception as e:  # the job goes on; its result still goes through the outbox
            log.warning("generate: job %d: progress message not posted: %s", job.id, e)
            return None
        self._last_edit[job.id] = self._clock()
        return ref

    def _progress(self, job: Job) -> Message:
        return progress_message(job, self._names, skipped=self._skipped.get(job.id, ()),
                                now=self._clock())

    async def _edit(self, job: Job, *, force: bool = False) -> None:
        """Edit the progress message; between status changes at most every
        ``edit_every_seconds`` (platform rate limits, and nobody reads faster)."""
        ref = _ref(job.progress_ref)
        chat = self._chats.get(job.platform)
        if ref is None or chat is None:
            return
        now = self._clock()
        last = self._last_edit.get(job.id)
        if not force and last is not None and \
                (now - last).total_seconds() < self._gen.edit_every_seconds:
            return
        try:
            await chat.edit(ref, self._progress(job))
            self._last_edit[job.id] = now
        except Exception as e:
            log.warning("generate: job %d: progress edit failed: %s", job.id, e)


def _refusal(title: str, text: str) -> Message:
    return Message(title=title, text=text, severity=Severity.WARNING, ephemeral=True)


def _ref_text(ref: MessageRef) -> str:
    return f"{ref.platform}|{ref.channel}|{ref.id}"


def _ref(text: str | None) -> MessageRef | None:
    if not text:
        return None
    platform, channel, mid = text.split("|", 2)
    return MessageRef(platform, channel, mid)


__all__ = ["Ask", "Generator", "clean_prompt"]
