"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.store import Store


@pytest.fixture
def store() -> Iterator[Store]:
    """A fresh in-memory store."""
    with Store(":memory:") as s:
        yield s
