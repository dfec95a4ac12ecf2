"""Keep secrets out of logs, the database and chat: scrub known values and token shapes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Shapes of tokens we may meet even when we do not know the value (echoed by upstreams).
_TOKEN_SHAPES = re.compile(
    r"(?:sk-[A-Za-z0-9_-]{8,}|xox[abposr]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}"
    r"|AIza[0-9A-Za-z_-]{20,}|Bearer\s+[A-Za-z0-9._~+/-]{8,}=*)")
# Credentials inside a URL: https://user:password@host/…
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s@]+@", re.I)
REDACTED = "[redacted]"


class Redactor:
    """Replaces every configured secret value, and anything shaped like a token, in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._known = re.compile("|".join(re.escape(v) for v in values)) if values else None

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        text = _URL_USERINFO.sub(rf"\1{REDACTED}@", text)
        return _TOKEN_SHAPES.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """A logging filter that renders each record and scrubs it before any handler sees it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redact = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = self._redact(message) or "", None
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Scrub every record on every handler of the root logger (call after logging is set up)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter(redactor))
