"""Secrets never reach logs, the database or chat: the redactor and the log filter."""

from __future__ import annotations

import logging

import pytest

from bot.messages import neutralize
from bot.redact import REDACTED, RedactingFilter, Redactor


@pytest.mark.parametrize(("text", "secret"), [
    ("Incorrect API key provided: my-plain-secret-value", "my-plain-secret-value"),
    ("auth failed for sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
    ("slack said xoxb-1234567890-abcdefghij", "xoxb-1234567890-abcdefghij"),
    ("header Bearer abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz"),
    ("gemini AIzaSyA1234567890abcdefghijklmnopqrs", "AIzaSyA1234567890abcdefghijklmnopqrs"),
    ("GET https://bob:hunter22@relay.example.com/v1/models", "bob:hunter22"),
])
def test_known_values_and_token_shapes_are_redacted(text: str, secret: str) -> None:
    out = Redactor(["my-plain-secret-value"])(text)
    assert out is not None and secret not in out and REDACTED in out


def test_ordinary_text_is_untouched() -> None:
    text = "HTTP 503: The server is overloaded (model sora-2, skipped 3 times)"
    assert Redactor(["s3cr3t-value"])(text) == text


def test_log_filter_scrubs_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    logger = logging.getLogger("redact-test")
    caplog.handler.addFilter(RedactingFilter(Redactor(["topsecret-123"])))
    try:
        raise RuntimeError("upstream echoed topsecret-123")
    except RuntimeError:
        logger.exception("probe failed with key %s", "topsecret-123")
    assert "topsecret-123" not in caplog.text
    assert caplog.text.count(REDACTED) >= 2


@pytest.mark.parametrize("typed", ["<!channel>", "<!here>", "<@U024BE7LH>", "@everyone",
                                   "@here", "<!subteam^S123>"])
def test_mentions_are_neutralised(typed: str) -> None:
    out = neutralize(f"relay says {typed} now")
    assert typed not in out
    assert out.replace("\u200b", "") == f"relay says {typed} now"  # still readable as typed
