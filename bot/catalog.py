"""The built-in service catalog (used when no config file names other services).

The article's six services, the two vendor status pages, and successor video models that relays
serve on the same ``/v1/videos`` shape since OpenAI shut Sora 2 down on 2026-09-24. Relay base URLs
and keys come from the environment (names below); nothing here costs money to probe.
Prices are defaults for ``/sora generate`` estimates and can be overridden per service.
"""

from __future__ import annotations

from typing import Any

SORA_SHUTDOWN = "2026-09-24"

_OFFICIAL = {"kind": "openai_compat", "access": "official", "base_url_env": "SORA_RELAY_BASE_URL",
             "api_key_env": "SORA_RELAY_API_KEY", "interval": 60}
_REVERSE = {"kind": "openai_compat", "access": "reverse", "base_url_env": "SORA_REVERSE_BASE_URL",
            "api_key_env": "SORA_REVERSE_API_KEY", "interval": 60, "slow_ms": 8000}

BUILTIN_SERVICES: tuple[dict[str, Any], ...] = (
    {"id": "sora-2-relay", "name": "Sora 2 · official relay", "model": "sora-2",
     "shutdown_date": SORA_SHUTDOWN, "price_per_second": 0.10, **_OFFICIAL},
    {"id": "sora-2-pro-relay", "name": "Sora 2 Pro · official relay", "model": "sora-2-pro",
     "shutdown_date": SORA_SHUTDOWN, "price_per_second": 0.30, **_OFFICIAL},
    {"id": "sora-2-reverse", "name": "Sora 2 · reverse relay", "model": "sora-2",
     "price_per_request": 0.08, **_REVERSE},
    {"id": "sora-2-pro-reverse", "name": "Sora 2 Pro · reverse relay", "model": "sora-2-pro",
     "price_per_request": 0.25, **_REVERSE},
    {"id": "veo-3.1", "name": "Veo 3.1 · Gemini API", "kind": "gemini",
     "model": "veo-3.1-generate-preview",
     "base_url": "https://generativelanguage.googleapis.com/v1beta",
     "base_url_env": "GEMINI_BASE_URL", "api_key_env": "GEMINI_API_KEY", "access": "official",
     "interval": 120, "price_per_second": 0.40, "video_seconds": [4, 6, 8]},
    {"id": "sora-images", "name": "Sora Images · official relay", "model": "sora-image",
     "media": "image", "price_per_request": 0.04, **_OFFICIAL},
    {"id": "seedance-relay", "name": "Seedance 1.0 Pro · official relay (Sora successor)",
     "model": "seedance-1.0-pro", "successor_of": ["sora-2", "sora-2-pro"],
     "video_seconds": [5, 10],
     "price_per_second": 0.05, **_OFFICIAL},
    {"id": "kling-reverse", "name": "Kling 2.1 · reverse relay (Sora successor)",
     "model": "kling-v2.1", "successor_of": ["sora-2", "sora-2-pro"],
     "video_seconds": [5, 10],
     "price_per_request": 0.10, **_REVERSE},
    {"id": "openai-status", "name": "status.openai.com · Sora", "kind": "incidentio",
     "base_url": "https://status.openai.com", "base_url_env": "OPENAI_STATUS_URL",
     "component": "Sora", "interval": 120, "failure_threshold": 1, "success_threshold": 1,
     "max_body_bytes": 4_194_304,
     "covers": ["sora-2-relay", "sora-2-pro-relay", "sora-2-reverse", "sora-2-pro-reverse",
                "sora-images"]},
    {"id": "gcp-status", "name": "Google Cloud status · Gemini/Veo", "kind": "google_cloud",
     "base_url": "https://status.cloud.google.com", "base_url_env": "GOOGLE_STATUS_URL",
     # "Vertex Gemini API" (now "Gemini on Agent Platform") and "Vertex Veo API".
     "products": ["Z0FZJAMvEB4j3NbCJs6B", "p5rCvyraXdeC6HFE8XJJ"],
     "interval": 300, "failure_threshold": 1, "success_threshold": 1,
     "max_body_bytes": 33_554_432, "timeout": 20, "covers": ["veo-3.1"]},
)
