"""Block Kit rendering: every limit Slack enforces, the colour bar, the fallback, escaping."""

from __future__ import annotations

import json

from adapters.slack_blocks import (
    MAX_BLOCKS,
    MAX_FIELDS,
    MAX_HEADER,
    MAX_SECTION,
    MAX_TABLE_ROWS,
    blocks,
    chunks,
    escape,
    render,
)
from bot.messages import Field, Message, Severity, Table


def _texts(page: dict) -> list[str]:
    every = page.get("blocks") or page["attachments"][0]["blocks"]
    return [b["text"]["text"] for b in every if b["type"] == "section" and "text" in b]


def test_an_alert_is_a_coloured_attachment_with_header_text_fields_and_context() -> None:
    msg = Message(title="🔴 Sora 2 · reverse relay is suspended", text="HTTP 503 (3× in a row)",
                  severity=Severity.DANGER, fields=(Field("Since", "14:02 UTC"),),
                  context="last checked 14:05 UTC")
    [page] = render(msg)
    assert page["text"].startswith("🔴 Sora 2 · reverse relay is suspended\nHTTP 503")
    [attachment] = page["attachments"]
    assert attachment["color"] == Severity.DANGER.hex == "#e01e5a"
    kinds = [b["type"] for b in attachment["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert attachment["blocks"][2]["fields"][0]["text"] == "*Since*\n14:02 UTC"
    assert "blocks" not in page


def test_each_severity_has_its_own_colour() -> None:
    colours = {render(Message(title="t", severity=s))[0]["attachments"][0]["color"]
               for s in Severity}
    assert len(colours) == len(Severity)


def test_a_table_is_a_native_table_block_at_top_level() -> None:
    table = Table(("", "Service", "Uptime"), (("🟢", "Veo 3.1", "99.9%"), ("🔴", "Sora", "")))
    [page] = render(Message(title="Video API status", table=table))
    table_blocks = [b for b in page["blocks"] if b["type"] == "table"]
    assert len(table_blocks) == 1 and "attachments" not in page
    rows = table_blocks[0]["rows"]
    assert [c["text"] for c in rows[1]] == ["🟢", "Veo 3.1", "99.9%"]
    assert all(c["text"] for row in rows for c in row)  # Slack rejects empty cells


def test_a_table_over_100_rows_becomes_monospace_sections_without_losing_a_row() -> None:
    rows = tuple((f"svc-{i:03d}", "operational") for i in range(250))
    [page] = render(Message(title="Video API status", table=Table(("Service", "State"), rows)))
    assert not any(b["type"] == "table" for b in page["attachments"][0]["blocks"])
    sections = _texts(page)
    assert all(len(s) <= MAX_SECTION and s.startswith("```") and s.endswith("```")
               for s in sections)
    joined = "\n".join(sections)
    assert all(f"svc-{i:03d}" in joined for i in range(250))
    assert len(rows) + 1 > MAX_TABLE_ROWS


def test_long_text_splits_into_sections_and_pages_within_the_block_limit() -> None:
    text = "\n".join(f"line {i:05d} " + "x" * 90 for i in range(2000))  # ~200k chars
    pages = render(Message(title="a very long batch", text=text))
    assert len(pages) > 1
    for page in pages:
        every = page["attachments"][0]["blocks"]
        assert len(every) <= MAX_BLOCKS
        assert all(len(t) <= MAX_SECTION for t in _texts(page))
    joined = "\n".join(t for p in pages for t in _texts(p))
    assert joined == escape(text)  # nothing dropped, nothing repeated
    assert pages[1]["text"].endswith("(continued)")


def test_titles_and_fields_are_clipped_to_slack_limits() -> None:
    msg = Message(title="T" * 400, fields=tuple(Field(f"f{i}", "v" * 3000) for i in range(23)))
    every = blocks(msg)
    assert len(every[0]["text"]["text"]) == MAX_HEADER
    field_sections = [b for b in every if "fields" in b]
    assert [len(b["fields"]) for b in field_sections] == [MAX_FIELDS, MAX_FIELDS, 3]
    assert all(len(f["text"]) <= 2000 for b in field_sections for f in b["fields"])


def test_mentions_and_markup_from_users_and_upstreams_are_escaped() -> None:
    msg = Message(title="<!channel> title", text="upstream said <!here> & <@U123|ann> <http://x|y>",
                  fields=(Field("<!everyone>", "<!channel>"),), context="by <!subteam^S1>")
    [page] = render(msg)
    dumped = json.dumps(page, ensure_ascii=False)
    assert "<!" not in page["text"] and "<@" not in page["text"]
    mrkdwn = [b for b in page["attachments"][0]["blocks"] if b["type"] != "header"]
    assert "<" not in json.dumps(mrkdwn) and "&lt;!here&gt; &amp; &lt;@U123|ann&gt;" in dumped


def test_chunks_never_exceed_the_limit_and_keep_every_character() -> None:
    text = "short\n" + "y" * 7000 + "\nend"
    pieces = chunks(text, 3000)
    assert all(len(p) <= 3000 for p in pieces)
    assert "".join(pieces).replace("\n", "") == text.replace("\n", "")


def test_the_cores_own_user_and_channel_references_stay_links() -> None:
    msg = Message(title="🔔 Alerts on", text="set by <@UADMIN> in <#C0ALERTS>",
                  context="typed: <\u200b@U999> <!channel>",
                  table=Table(("Channel", "By"), (("<#C0ALERTS> (this channel)", "<@UADMIN>"),)))
    [page] = render(msg)
    assert page["text"].endswith("set by <@UADMIN> in <#C0ALERTS>")
    section, table, context = page["blocks"][1], page["blocks"][2], page["blocks"][3]
    assert section["text"]["text"] == "set by <@UADMIN> in <#C0ALERTS>"
    assert context["elements"][0]["text"] == "typed: &lt;\u200b@U999&gt; &lt;!channel&gt;"
    channel_cell, user_cell = table["rows"][1]
    assert channel_cell["elements"][0]["elements"] == [
        {"type": "channel", "channel_id": "C0ALERTS"}, {"type": "text", "text": " (this channel)"}]
    assert user_cell["elements"][0]["elements"] == [{"type": "user", "user_id": "UADMIN"}]
    assert table["rows"][0][0] == {"type": "raw_text", "text": "Channel"}
