"""Console ChatPort: prints neutral messages as text (the default when no chat token is set)."""

from __future__ import annotations

import itertools
import sys
from typing import TextIO

from bot.chat import MessageRef
from bot.messages import Message, Severity

_ANSI = {Severity.OK: "32", Severity.INFO: "34", Severity.WARNING: "33", Severity.ALERT: "33;1",
         Severity.DANGER: "31;1", Severity.NEUTRAL: "37"}


class ConsoleChat:
    """Writes each message to a stream; colours the title by severity when it is a terminal."""

    platform = "console"

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self._stream = stream or sys.stdout
        self._color = self._stream.isatty() if color is None else color
        self._ids = itertools.count(1)
        self.sent: list[tuple[str, Message]] = []

    async def send(self, channel: str, message: Message, *, reply_to: MessageRef | None = None,
                   key: str | None = None) -> MessageRef:
        ref = MessageRef(self.platform, channel, str(next(self._ids)))
        self._write(message, prefix="  ↳ " if reply_to else "")
        self.sent.append((channel, message))
        return ref

    async def edit(self, ref: MessageRef, message: Message) -> None:
        self._write(message, prefix=f"  (update #{ref.id}) ")

    def _write(self, message: Message, *, prefix: str) -> None:
        title, *rest = message.plain().split("\n")
        if self._color:
            title = f"\x1b[{_ANSI[message.severity]}m{title}\x1b[0m"
        lines = [prefix + title, *("    " + line for line in rest)]
        lines += [f"    📎 {a.filename} ({len(a.content) / 1024:.0f} KB)"
                  for a in message.attachments]
        self._stream.write("\n".join(lines) + "\n")
        self._stream.flush()
