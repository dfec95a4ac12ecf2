"""The whole built-in catalog, configured, pointed at loopback simulators (for cost checks)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings, load_settings
from bot.sim import SimRelay, SimStatusPage

KEY = "sk-world-0000000000000000000000"
MODELS = ("sora-2", "sora-2-pro", "sora-image", "seedance-1.0-pro", "kling-v2.1",
          "veo-3.1-generate-preview")


@dataclass(frozen=True, slots=True)
class World:
    settings: Settings
    relays: tuple[SimRelay, ...]
    page: SimStatusPage

    @property
    def billable_calls(self) -> int:
        return sum(r.billable_calls for r in self.relays)

    @property
    def requests(self) -> int:
        return sum(len(r.requests) for r in self.relays) + len(self.page.requests)


@asynccontextmanager
async def default_world(tmp: Path) -> AsyncIterator[World]:
    """Every built-in service configured with a key, on the catalog's default intervals."""
    async with AsyncExitStack() as stack:
        official, reverse, gemini = [
            await stack.enter_async_context(SimRelay(models=MODELS, api_key=KEY))
            for _ in range(3)]
        page = await stack.enter_async_context(SimStatusPage(incidentio=True))
        env = {"SORA_RELAY_BASE_URL": official.url, "SORA_RELAY_API_KEY": KEY,
               "SORA_REVERSE_BASE_URL": reverse.url, "SORA_REVERSE_API_KEY": KEY,
               "GEMINI_BASE_URL": gemini.url, "GEMINI_API_KEY": KEY,
               "OPENAI_STATUS_URL": page.base_url, "GOOGLE_STATUS_URL": page.base_url,
               "SORA_BOT_DB": str(tmp / "world.db")}
        yield World(load_settings(None, env), (official, reverse, gemini), page)
