"""Shared fixtures: the real captured status-page payloads (tests/fixtures, see SOURCES.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures/status-pages"


@pytest.fixture
def fixtures_dir() -> Path:
    """The directory of captured status-page and error payloads (see its SOURCES.md)."""
    return FIXTURES_DIR


@pytest.fixture
def load_fixture(fixtures_dir: Path) -> Callable[[str], Any]:
    """``load_fixture("name.json")`` → the parsed JSON of one fixture file."""

    def load(name: str) -> Any:
        return json.loads((fixtures_dir / name).read_bytes())

    return load
