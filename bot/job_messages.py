"""What ``/sora generate`` says: the progress message (edited in place) and the result post."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from bot.messages import (
    Attachment,
    Field,
    Message,
    Severity,
    Table,
    format_duration,
    mention,
    neutralize,
)
from bot.router import Skip
from bot.store import Job

_RUNNING = {"routing": "⏳", "queued": "⏳", "in_progress": "🎞️"}
_DONE = {"completed": ("✅", Severity.OK), "failed": ("❌", Severity.DANGER),
         "refused": ("🚫", Severity.WARNING), "uncertain": ("⚠️", Severity.WARNING),
         "unrouted": ("🔴", Severity.DANGER), "expired": ("⌛", Severity.WARNING),
         "error": ("⚠️", Severity.DANGER)}


def money(amount: float | None) -> str:
    return "price unknown" if amount is None else f"${amount:,.2f}"


def preview(prompt: str, limit: int = 100) -> str:
    """A one-line, neutralised excerpt of a prompt for titles and the job record."""
    line = " ".join(prompt.split())
    return neutralize(line if len(line) <= limit else line[: limit - 1] + "…")


def _skipped(skipped: Sequence[Skip]) -> str:
    return "; ".join(f"{s.name} {s.reason}" for s in skipped)


def _tried(job: Job, names: Mapping[str, str]) -> list[str]:
    """Failed attempts, as "Sora 2 · official relay: 503 server_error"."""
    return [f"{names.get(a['service'], a['service'])}: {a['reason']}" for a in job.attempts
            if a.get("result") == "retryable"]


def progress_message(job: Job, names: Mapping[str, str], *, skipped: Sequence[Skip] = (),
                     now: datetime) -> Message:
    """The message posted when a job starts and edited as it moves (never a new post)."""
    route = names.get(job.service or "", job.service or "")
    if job.status == "routing":
        headline = "routing…"
    elif job.status == "queued":
        headline = f"queued on {route} (est. {money(job.estimate)})"
    elif job.status == "in_progress":
        pct = f" {job.progress} %" if job.progress is not None else ""
        headline = f"in progress{pct} on {route} (est. {money(job.estimate)})"
    else:
        headline = _outcome(job, route)
    icon, severity = _DONE.get(job.status, (_RUNNING.get(job.status, "⏳"), Severity.INFO))
    fields = [Field("Request", f"{job.seconds} s · {job.size} · {job.model}")]
    if job.service:
        fields.append(Field("Route", route))
    tried = _tried(job, names)
    if tried:
        fields.append(Field("Fell back from", "\n".join(tried), inline=False))
    if job.finished:
        fields.append(Field("Cost", money(job.cost)))
        fields.append(Field("Took", format_duration(
            ((job.finished_at or now) - job.created_at).total_seconds())))
    context = [f"job #{job.id}", f"requested by {mention(job.platform, job.user)}", *job.notes]
    if skipped:
        context.append(f"skipped: {_skipped(skipped)}")
    text = f"“{job.preview}”"
    if job.error and job.finished and job.status != "completed":
        text += f"\n{neutralize(job.error)}"
    return Message(title=f"{icon} Test generation {headline}", text=text, severity=severity,
                   fields=tuple(fields), context=" · ".join(context))


def _outcome(job: Job, route: str) -> str:
    return {
        "completed": f"done on {route}",
        "failed": f"failed on {route}",
        "refused": f"refused by {route}" + (" (moderation)" if "moderation" in (job.error or "")
                                            else ""),
        "uncertain": f"may have been accepted by {route}",
        "unrouted": "found no working route",
        "expired": f"did not finish on {route} in time",
    }.get(job.status, "stopped")


def result_message(job: Job, names: Mapping[str, str], *, video: Attachment | None,
                   too_large: str | None = None) -> Message:
    """The post that carries the video (or says why it does not)."""
    route = names.get(job.service or "", job.service or "")
    context = " · ".join([f"job #{job.id}", f"served by {route}", money(job.cost),
                          f"upstream job {job.upstream_id}", *job.notes,
                          *(f"skipped {t}" for t in _tried(job, names))])
    text = f"“{job.preview}” · {job.seconds} s · {job.size}"
    if too_large:
        text += f"\n{too_large}"
    return Message(title=f"🎬 Test generation done on {route}", text=text, severity=Severity.OK,
                   attachments=(video,) if video else (), context=context)


def no_route_message(model: str, skipped: Sequence[Skip]) -> Message:
    """Every route of ``model`` is down: say why each was skipped (nothing was sent)."""
    rows = tuple((s.name, s.reason) for s in skipped)
    return Message(
        title=f"🔴 No route can generate {neutralize(model)} right now",
        text="Nothing was sent upstream and nothing was charged. `/sora status` shows when "
             "a route is back." + ("" if rows else " No service is configured for it."),
        severity=Severity.DANGER, table=Table(("Route", "Why not"), rows) if rows else None,
        ephemeral=True)

