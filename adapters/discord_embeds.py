"""Embeds for the neutral ``Message``, kept within Discord's limits.

A message becomes one or more *pages* (one Discord message each): ``content`` carries the title
in bold (the notification text, and what users with embeds turned off read), the embeds carry
the rest in the severity's colour:

- the text, then the table — one line per row, the first named cell in bold, under a subtext
  header line — as the description (4096 characters; longer text continues in further embeds,
  split on lines);
- the fields, 25 per embed (names 256, values 1024 characters; a longer value continues in a
  field of the same name marked "(cont.)");
- the context line as the footer (2048), or as subtext under the description when it holds a
  user or channel reference (footers do not render them).
- At most 10 embeds and 6000 characters of embed text per message; the rest continues on
  further pages, so nothing is dropped. ``image`` names an attached file shown in the first
  page's last embed.

Mentions are switched off on every post (``AllowedMentions.none()`` in the adapter); the core has
already defused ``@everyone`` and ``<@…>`` in text it did not write.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import discord

from adapters.slack_blocks import chunks, clip
from bot.messages import Message, Table

MAX_CONTENT = 2000
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_EMBEDS = 10
MAX_TOTAL = 6000  # characters of all embeds in one message

_REF = re.compile(r"<[@#]\d{1,25}>")
_MARKDOWN = re.compile(r"([\\*_~|`>])")


@dataclass(slots=True)
class Page:
    """One Discord message: ``content`` and up to ten embeds."""

    content: str | None
    embeds: list[discord.Embed] = field(default_factory=list)


def escape(text: str) -> str:
    """Discord markdown characters in data (service names, reasons) shown literally."""
    return _MARKDOWN.sub(r"\\\1", text)


def table_lines(table: Table) -> list[str]:
    """``🟢 **Sora 2** · operational · 99.9 %`` per row, under a subtext line of the headers."""
    header = " · ".join(h for h in table.header if h)
    lines = [f"-# {escape(header)}"] if header else []
    for row in table.rows:
        cells = [c for c in row if c]
        shown = [c if _REF.search(c) else escape(c) for c in cells]
        named = next((i for i, c in enumerate(cells) if any(ch.isalnum() for ch in c)), None)
        if named is not None and not _REF.search(cells[named]):
            shown[named] = f"**{shown[named]}**"
        # A leading emoji (the state) sits next to the name rather than behind a separator.
        lead = f"{shown.pop(0)} " if named == 1 else ""
        lines.append(lead + " · ".join(shown) if shown or lead else "—")
    return lines


def _description(message: Message, context_below: bool) -> str:
    parts = [message.text] if message.text else []
    if message.table is not None:
        parts.append("\n".join(table_lines(message.table)))
    if context_below:
        parts.append("\n".join(f"-# {line}" for line in message.context.splitlines() if line))
    return "\n\n".join(parts)


def _fields(message: Message) -> list[tuple[str, str, bool]]:
    out = []
    for f in message.fields:
        name = clip(f.name, MAX_FIELD_NAME) or "\u200b"
        pieces = chunks(f.value, MAX_FIELD_VALUE) or ["\u200b"]
        for n, piece in enumerate(pieces):
            label = name if n == 0 else clip(f"{f.name} (cont.)", MAX_FIELD_NAME)
            out.append((label, piece, f.inline and len(pieces) == 1))
    return out


def render(message: Message, *, image: str | None = None) -> list[Page]:
    """``message`` as pages of embeds; ``image``: the filename of an attached image to show."""
    colour = discord.Colour(int(message.severity.hex.lstrip("#"), 16))
    context_below = bool(message.context) and bool(_REF.search(message.context))
    embeds = [discord.Embed(colour=colour, description=piece)
              for piece in chunks(_description(message, context_below), MAX_DESCRIPTION)]
    if not embeds:
        embeds = [discord.Embed(colour=colour)]
    footer = "" if context_below else clip(message.context, MAX_FOOTER)
    last = embeds[-1]
    for name, value, inline in _fields(message):
        if (len(last.fields) == MAX_FIELDS
                or len(last) + len(name) + len(value) + len(footer) > MAX_TOTAL):
            last = discord.Embed(colour=colour)
            embeds.append(last)
        last.add_field(name=name, value=value, inline=inline)
    if footer:
        embeds[-1].set_footer(text=footer)
    content = clip(f"**{escape(message.title)}**", MAX_CONTENT) if message.title else None
    pages = [Page(content)]
    for embed in embeds:
        page = pages[-1]
        size = sum(len(e) for e in page.embeds)
        if len(page.embeds) == MAX_EMBEDS or size + len(embed) > MAX_TOTAL:
            pages.append(Page(clip(f"{content} (continued)", MAX_CONTENT) if content else None))
            page = pages[-1]
        page.embeds.append(embed)
    if image is not None:
        pages[0].embeds[-1].set_image(url=f"attachment://{image}")
    return pages
