"""Block Kit for the neutral ``Message``, kept within Slack's limits.

A message becomes one or more *pages* (keyword arguments for ``chat.postMessage``,
``chat.update`` or ``respond``), each with a plain ``text`` fallback for notifications:

- header (plain text, 150 chars), the text as mrkdwn sections (3000 chars each, split on
  lines), fields as section fields (10 per section, 2000 chars each), the table as a native
  ``table`` block (at most 100 rows, 20 columns; Slack allows one per message) or, when larger,
  as monospace sections, and the context line.
- Without a table the blocks sit in one attachment whose ``color`` is the severity (the colour
  bar); Slack puts a table block at the bottom of a message on its own, so a message with a
  table keeps its blocks at the top level and its severity in the title's emoji.
- More than 50 blocks continue on further pages; nothing is dropped.

Every text we put in mrkdwn is escaped (``&``, ``<``, ``>``), so ``<!channel>`` typed by a
user or returned by an upstream error is shown, never expanded into a mention. The one markup
kept is what the core writes itself: ``<@U123>`` (who did it) and ``<#C123>`` (a channel) —
text the core did not write has those defused by ``bot.messages.neutralize`` already.
"""

from __future__ import annotations

import re
from typing import Any

from bot.messages import Message, Table, render_table

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_TABLE_ROWS = 100
MAX_TABLE_COLUMNS = 20
MAX_FALLBACK = 3000  # the notification text; the blocks carry the rest

Block = dict[str, Any]
Page = dict[str, Any]


_REF = re.compile(r"<([@#])([A-Z0-9]{2,40})>")  # a user or channel reference the core wrote
_ESCAPED_REF = re.compile(r"&lt;([@#])([A-Z0-9]{2,40})&gt;")


def escape(text: str) -> str:
    """Slack's three control characters, so nothing we relay is parsed as a mention or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str) -> str:
    """``text`` escaped for mrkdwn, keeping the core's user and channel references."""
    return _ESCAPED_REF.sub(r"<\1\2>", escape(text))


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def chunks(text: str, limit: int) -> list[str]:
    """Split on line breaks into pieces of at most ``limit`` characters (long lines are cut)."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            candidate = line
        current = candidate
    if current:
        pieces.append(current)
    return pieces


def fallback_text(message: Message) -> str:
    """Title and text, for notifications and clients that show no blocks."""
    body = f"{message.title}\n{message.text}" if message.text else message.title
    return clip(mrkdwn(body), MAX_FALLBACK)


def _mrkdwn(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _table_fits(table: Table) -> bool:
    return len(table.rows) + 1 <= MAX_TABLE_ROWS and len(table.header) <= MAX_TABLE_COLUMNS


def _cell(text: str) -> Block:
    """Plain text, or rich text when the core put a user or channel reference in the cell."""
    parts = _REF.split(text)
    if len(parts) == 1:
        return {"type": "raw_text", "text": text or " "}
    elements: list[Block] = []
    for i in range(0, len(parts), 3):
        if parts[i]:
            elements.append({"type": "text", "text": parts[i]})
        if i + 2 < len(parts):
            sigil, ident = parts[i + 1], parts[i + 2]
            elements.append({"type": "channel", "channel_id": ident} if sigil == "#"
                            else {"type": "user", "user_id": ident})
    return {"type": "rich_text", "elements": [{"type": "rich_text_section",
                                                "elements": elements}]}


def _table_block(table: Table) -> Block:
    return {"type": "table", "column_settings": [{"is_wrapped": True}] * len(table.header),
            "rows": [[_cell(c) for c in row] for row in (table.header, *table.rows)]}


def _monospace(table: Table) -> list[Block]:
    fence = "```"
    return [_mrkdwn(f"{fence}{piece}{fence}")
            for piece in chunks(escape(render_table(table)), MAX_SECTION - 2 * len(fence))]


def blocks(message: Message) -> list[Block]:
    """Every block of ``message`` in order (may exceed ``MAX_BLOCKS``; ``render`` pages them)."""
    out: list[Block] = [{"type": "header", "text": {
        "type": "plain_text", "text": clip(message.title, MAX_HEADER) or " ", "emoji": True}}]
    if message.text:
        out += [_mrkdwn(piece) for piece in chunks(mrkdwn(message.text), MAX_SECTION)]
    fields = [{"type": "mrkdwn", "text": clip(f"*{mrkdwn(f.name)}*\n{mrkdwn(f.value)}", MAX_FIELD)}
              for f in message.fields]
    out += [{"type": "section", "fields": fields[i:i + MAX_FIELDS]}
            for i in range(0, len(fields), MAX_FIELDS)]
    if message.table is not None:
        out += ([_table_block(message.table)] if _table_fits(message.table)
                else _monospace(message.table))
    if message.context:
        out.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": clip(mrkdwn(message.context), MAX_SECTION)}]})
    return out


def render(message: Message) -> list[Page]:
    """``message`` as one page, or several when it has more than ``MAX_BLOCKS`` blocks."""
    every = blocks(message)
    native_table = any(b["type"] == "table" for b in every)
    text = fallback_text(message)
    pages: list[Page] = []
    for n, start in enumerate(range(0, len(every), MAX_BLOCKS)):
        part = every[start:start + MAX_BLOCKS]
        page_text = text if n == 0 else clip(f"{text.splitlines()[0]} (continued)", MAX_HEADER)
        if native_table:
            pages.append({"text": page_text, "blocks": part})
        else:
            pages.append({"text": page_text, "attachments": [
                {"color": message.severity.hex, "fallback": page_text, "blocks": part}]})
    return pages
