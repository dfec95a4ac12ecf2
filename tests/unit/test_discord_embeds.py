"""Embed rendering: every limit Discord enforces, the colour, the content line, escaping."""

from __future__ import annotations

import pytest

from adapters.discord_embeds import (
    MAX_DESCRIPTION,
    MAX_EMBEDS,
    MAX_FIELD_VALUE,
    MAX_FIELDS,
    MAX_TOTAL,
    escape,
    render,
    table_lines,
)
from bot.messages import Field, Message, Severity, Table


def _within_limits(pages: list) -> None:
    for page in pages:
        assert len(page.embeds) <= MAX_EMBEDS
        assert sum(len(e) for e in page.embeds) <= MAX_TOTAL
        assert page.content is None or len(page.content) <= 2000
        for e in page.embeds:
            assert len(e.description or "") <= MAX_DESCRIPTION
            assert len(e.fields) <= MAX_FIELDS
            assert all(0 < len(f.value or "") <= MAX_FIELD_VALUE for f in e.fields)
            assert all(0 < len(f.name or "") <= 256 for f in e.fields)


def test_an_alert_is_one_embed_in_the_severity_colour_with_the_title_as_content() -> None:
    msg = Message(title="🔴 Sora 2 · reverse relay is suspended", text="HTTP 503 (3× in a row)",
                  severity=Severity.DANGER, fields=(Field("Since", "14:02 UTC"),),
                  context="service sora-2-reverse · transition #7")
    [page] = render(msg)
    assert page.content == "**🔴 Sora 2 · reverse relay is suspended**"
    [embed] = page.embeds
    assert embed.colour is not None and embed.colour.value == 0xE01E5A
    assert embed.description == "HTTP 503 (3× in a row)"
    assert [(f.name, f.value, f.inline) for f in embed.fields] == [("Since", "14:02 UTC", True)]
    assert embed.footer.text == "service sora-2-reverse · transition #7"


def test_each_severity_has_its_own_colour() -> None:
    colours = {render(Message(title="t", severity=s))[0].embeds[0].colour for s in Severity}
    assert len(colours) == len(Severity)


def test_a_context_with_a_mention_is_subtext_because_footers_do_not_render_mentions() -> None:
    [page] = render(Message(title="🔔 Alerts on", text="all services", context="set by <@42>"))
    embed = page.embeds[0]
    assert embed.footer.text is None
    assert embed.description == "all services\n\n-# set by <@42>"


def test_a_table_is_one_line_per_row_with_the_name_in_bold_under_a_header() -> None:
    table = Table(("", "Service", "Status", "24h"),
                  (("🟢", "Veo 3.1", "operational", "99.9%"), ("🔴", "sora_2*", "suspended", "")))
    assert table_lines(table) == ["-# Service · Status · 24h",
                                  "🟢 **Veo 3.1** · operational · 99.9%",
                                  "🔴 **sora\\_2\\*** · suspended"]


def test_a_channel_reference_in_a_table_renders_and_is_not_escaped_or_bolded() -> None:
    table = Table(("Channel", "Services"), (("<#123456> (this channel)", "all"),))
    assert table_lines(table)[1] == "<#123456> (this channel) · all"


def test_long_text_continues_in_further_embeds_split_on_lines() -> None:
    lines = [f"line {i:04d} " + "x" * 90 for i in range(150)]  # ~15 000 characters
    pages = render(Message(title="big", text="\n".join(lines)))
    _within_limits(pages)
    text = "\n".join(e.description or "" for p in pages for e in p.embeds)
    assert text.split("\n") == lines  # nothing lost, nothing cut mid-line
    assert len(pages) > 1 and pages[1].content == "**big** (continued)"


def test_many_fields_spread_over_embeds_and_pages_and_long_values_continue() -> None:
    fields = (*(Field(f"incident {i}", "y" * 300) for i in range(60)), Field("long", "z" * 2500))
    pages = render(Message(title="digest", fields=fields, context="last 24 h"))
    _within_limits(pages)
    every = [f for p in pages for e in p.embeds for f in e.fields]
    assert [f.name for f in every[:60]] == [f"incident {i}" for i in range(60)]
    assert [f.name for f in every[60:]] == ["long", "long (cont.)", "long (cont.)"]
    assert "".join(f.value or "" for f in every[60:]) == "z" * 2500
    assert pages[-1].embeds[-1].footer.text == "last 24 h"  # the context comes last


@pytest.mark.parametrize("rows", [30, 400])
def test_a_big_table_keeps_every_row(rows: int) -> None:
    table = Table(("", "Service", "Status"),
                  tuple(("🟢", f"service-{i:03d}", "operational") for i in range(rows)))
    pages = render(Message(title="Video API status", table=table))
    _within_limits(pages)
    text = "\n".join(e.description or "" for p in pages for e in p.embeds)
    assert all(f"**service-{i:03d}**" in text for i in range(rows))


def test_an_image_attachment_is_shown_in_the_first_page() -> None:
    pages = render(Message(title="Daily digest", text="ok"), image="digest.png")
    assert pages[0].embeds[-1].image.url == "attachment://digest.png"


def test_markdown_and_mass_mentions_in_data_are_shown_literally() -> None:
    assert escape("*bold* _it_ `code` ~~s~~ ||spoiler|| > quote") == (
        "\\*bold\\* \\_it\\_ \\`code\\` \\~\\~s\\~\\~ \\|\\|spoiler\\|\\| \\> quote")
    [page] = render(Message(title="@everyone **look**"))
    assert page.content == "**@everyone \\*\\*look\\*\\***"  # and mentions are off on every post
