"""The neutral rich message: the core says *what* to show; adapters decide *how*."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum

from bot.models import State


class Severity(StrEnum):
    """Colour of a message; adapters map it to a bar colour / embed colour / nothing."""

    OK = "ok"  # green
    INFO = "info"  # blue
    WARNING = "warning"  # yellow
    ALERT = "alert"  # orange
    DANGER = "danger"  # red
    NEUTRAL = "neutral"  # grey

    @property
    def hex(self) -> str:
        return _HEX[self]


_HEX = {
    Severity.OK: "#2eb67d",
    Severity.INFO: "#1d9bd1",
    Severity.WARNING: "#ecb22e",
    Severity.ALERT: "#f2711c",
    Severity.DANGER: "#e01e5a",
    Severity.NEUTRAL: "#9e9e9e",
}

_STATE_SEVERITY = {
    State.OPERATIONAL: Severity.OK,
    State.DEGRADED: Severity.WARNING,
    State.RISK_CONTROL: Severity.ALERT,
    State.SUSPENDED: Severity.DANGER,
    State.MAINTENANCE: Severity.INFO,
    State.RETIRED: Severity.NEUTRAL,
    State.UNKNOWN: Severity.NEUTRAL,
}


def severity_of(state: State) -> Severity:
    return _STATE_SEVERITY[state]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True)
class Table:
    """A small table: adapters render it as a table block, fields or monospace text."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime: str = "image/png"
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    """Title, severity, text, fields, an optional table, a context line and attachments.

    ``text`` must be readable on its own: it doubles as the notification fallback.
    ``thread_key`` groups messages that belong together (an outage and its recovery).
    """

    title: str
    text: str = ""
    severity: Severity = Severity.NEUTRAL
    fields: tuple[Field, ...] = ()
    table: Table | None = None
    context: str = ""
    attachments: tuple[Attachment, ...] = field(default=())
    thread_key: str | None = None
    ephemeral: bool = False

    def plain(self) -> str:
        """The whole message as plain text (console, fallbacks, logs)."""
        parts = [self.title]
        if self.text:
            parts.append(self.text)
        parts.extend(f"{f.name}: {f.value}" for f in self.fields)
        if self.table:
            parts.append(render_table(self.table))
        if self.context:
            parts.append(self.context)
        return "\n".join(parts)


def render_table(table: Table) -> str:
    """Monospace rendering, column widths from the widest cell (emoji count as 2)."""
    rows = [table.header, *table.rows]
    widths = [max(_width(r[i]) for r in rows) for i in range(len(table.header))]
    lines = ["  ".join(_pad(c, widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _width(s: str) -> int:
    return sum(2 if ord(ch) >= 0x2190 and ch not in "★☆" else 1 for ch in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def format_duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 60:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {minutes}m" if hours else f"{minutes}m"


_MENTIONS = re.compile(r"<(?=[!@#])|@(?=everyone|here|channel)", re.I)


def neutralize(text: str) -> str:
    """Defuse mass and user mentions in text we did not write (upstream errors, user input).

    ``<!channel>``, ``<!here>``, ``<@U123>``, ``@everyone`` and ``@here`` get a zero-width space
    after their first character, so they render as typed but notify nobody on any platform.
    """
    return _MENTIONS.sub(lambda m: m.group(0) + "\u200b", text)


def mention(platform: str, user: str) -> str:
    """A user as the platform renders one (never a mass mention)."""
    uid = re.sub(r"[^A-Za-z0-9_.-]", "", user)[:40] or "someone"
    return f"<@{uid}>" if platform in ("slack", "discord") else uid


def message_to_json(message: Message) -> str:
    """Serialise for the outbox (attachments as base64)."""
    data = {
        "title": message.title, "text": message.text, "severity": message.severity.value,
        "fields": [[f.name, f.value, f.inline] for f in message.fields],
        "table": None if message.table is None else
        {"header": list(message.table.header), "rows": [list(r) for r in message.table.rows]},
        "context": message.context, "thread_key": message.thread_key,
        "ephemeral": message.ephemeral,
        "attachments": [{"filename": a.filename, "mime": a.mime, "alt": a.alt,
                         "content": base64.b64encode(a.content).decode("ascii")}
                        for a in message.attachments],
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def message_from_json(text: str) -> Message:
    d = json.loads(text)
    table = d["table"]
    return Message(
        title=d["title"], text=d["text"], severity=Severity(d["severity"]),
        fields=tuple(Field(n, v, i) for n, v, i in d["fields"]),
        table=None if table is None else Table(tuple(table["header"]),
                                               tuple(tuple(r) for r in table["rows"])),
        context=d["context"], thread_key=d["thread_key"], ephemeral=d["ephemeral"],
        attachments=tuple(Attachment(a["filename"], base64.b64decode(a["content"]), a["mime"],
                                     a["alt"]) for a in d["attachments"]))
