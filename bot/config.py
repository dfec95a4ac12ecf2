"""The ONLY reader of the environment and of config files: validated settings, clear errors.

Precedence: built-in catalog ← ``[[service]]`` entries of the TOML file (same ``id`` overrides the
named keys of a built-in entry, a new ``id`` adds a service) ← environment for secrets, base URLs,
tokens and the few global overrides (``SORA_BOT_DB``, ``PORT``). Secrets only ever come from env.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from bot.catalog import BUILTIN_SERVICES
from bot.models import Policy

Kind = Literal["openai_compat", "gemini", "statuspage", "incidentio", "google_cloud"]
PROBE_KINDS: tuple[str, ...] = ("openai_compat", "gemini")  # probe a model endpoint
PAGE_KINDS: tuple[str, ...] = ("statuspage", "incidentio", "google_cloud")  # read a status page

DEFAULT_DB = "./sora-bot.db"
DEFAULT_PORT = 8080


class ConfigError(Exception):
    """A config problem a user can fix; the message names the key (and line when known)."""


class ServiceConfig(BaseModel):
    """One monitored service, as configured (file values merged over the built-in catalog)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    name: str = Field(min_length=1, max_length=80)
    kind: Kind
    model: str | None = None
    base_url: str | None = None
    base_url_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Z_][A-Z0-9_]*$")
    access: Literal["official", "reverse"] | None = None
    probe: Literal["model", "videos"] = "model"
    component: str | None = None
    products: tuple[str, ...] = ()
    covers: tuple[str, ...] = ()
    successor_of: tuple[str, ...] = ()
    shutdown_date: date | None = None
    interval: float = Field(default=60.0, gt=0, le=86400)
    timeout: float = Field(default=10.0, gt=0, le=120)
    slow_ms: float = Field(default=5000.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    failure_threshold: int = Field(default=2, ge=1, le=100)
    success_threshold: int = Field(default=2, ge=1, le=100)
    window: int = Field(default=10, ge=2, le=1000)
    price_per_second: float | None = Field(default=None, ge=0)
    price_per_request: float | None = Field(default=None, ge=0)
    media: Literal["video", "image"] = "video"  # what a generation through it makes
    video_seconds: tuple[int, ...] = ()  # durations the model makes; () = Sora's 4/8/12
    enabled: bool = True
    # Resolved from the environment by ``load_settings``; never from the file.
    api_key: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _kind_needs(self) -> ServiceConfig:
        if self.kind in PROBE_KINDS and not self.model:
            raise ValueError(f"kind {self.kind!r} needs 'model'")
        if self.kind in ("statuspage", "incidentio") and not self.component:
            raise ValueError(f"kind {self.kind!r} needs 'component' (a component name or id)")
        if self.kind == "google_cloud" and not self.products:
            raise ValueError("kind 'google_cloud' needs 'products' (affected_products ids)")
        if self.base_url and not re.match(r"^https?://[^\s/]+", self.base_url):
            raise ValueError(f"base_url {self.base_url!r} is not an http(s) URL")
        return self

    @property
    def policy(self) -> Policy:
        return Policy(failure_threshold=self.failure_threshold,
                      success_threshold=self.success_threshold, window=self.window,
                      use_window=self.kind not in PAGE_KINDS)

    @property
    def can_generate_video(self) -> bool:
        return self.kind in PROBE_KINDS and self.media == "video"

    def estimate(self, seconds: int) -> float | None:
        """What one generation of ``seconds`` costs here (USD), or None without a price."""
        if self.price_per_request is not None:
            return self.price_per_request
        if self.price_per_second is not None:
            return round(self.price_per_second * seconds, 4)
        return None

    @property
    def missing(self) -> str | None:
        """What the user must set before this service can be probed, or None."""
        if self.base_url is None:
            return f"set {self.base_url_env}" if self.base_url_env else "set base_url"
        if self.kind == "gemini" and self.api_key is None:
            return f"set {self.api_key_env or 'api_key_env'}"
        return None


class GenerateSettings(BaseModel):
    """``[generate]``: routing, permission, money and pacing of ``/sora generate``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_model: str = "sora-2"
    prefer: Literal["official", "reverse"] = "official"
    # Requested model → ordered service ids. Models not named here route to the services that
    # serve them, then to the services that declare themselves ``successor_of`` them.
    routes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    max_prompt_chars: int = Field(default=1000, ge=1, le=4000)
    # Who may generate: admins always; otherwise these users or roles, in these channels.
    # All empty: admins only.
    allow_users: tuple[str, ...] = ()
    allow_roles: tuple[str, ...] = ()
    allow_channels: tuple[str, ...] = ()
    user_daily_quota: int = Field(default=5, ge=0, le=10_000)  # 0: no per-user limit
    daily_budget_usd: float = Field(default=10.0, ge=0)  # per workspace and UTC day
    cooldown_seconds: float = Field(default=120.0, ge=0, le=86400)  # a failed route rests
    submit_timeout: float = Field(default=60.0, gt=0, le=600)
    poll_min_seconds: float = Field(default=2.0, gt=0, le=600)
    poll_max_seconds: float = Field(default=30.0, gt=0, le=3600)
    edit_every_seconds: float = Field(default=10.0, ge=0, le=600)  # progress edits, at most
    job_timeout_minutes: float = Field(default=30.0, gt=0, le=24 * 60)
    max_video_mb: float = Field(default=50.0, gt=0, le=1024)

    @model_validator(mode="after")
    def _poll_bounds(self) -> GenerateSettings:
        if self.poll_max_seconds < self.poll_min_seconds:
            raise ValueError("poll_max_seconds must be at least poll_min_seconds")
        return self


class Settings(BaseModel):
    """Everything the bot needs to run; built once by ``load_settings``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_path: str = DEFAULT_DB
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    host: str = "0.0.0.0"
    concurrency: int = Field(default=100, ge=1, le=1000)
    retention_days: int = Field(default=14, ge=1, le=3650)
    tick_seconds: float = Field(default=5.0, gt=0, le=3600)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    admins: tuple[str, ...] = ()  # chat user ids allowed to manage alerts besides platform admins
    remind_every_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60)  # 0: no reminders
    give_up_after_hours: float = Field(default=24.0, gt=0, le=24 * 30)  # undeliverable posts
    delivery_concurrency: int = Field(default=50, ge=1, le=1000)  # channels posted to at once
    services: tuple[ServiceConfig, ...] = ()
    generate: GenerateSettings = Field(default_factory=GenerateSettings)
    config_path: str | None = None
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str | None = None
    discord_token: SecretStr | None = None
    discord_api_url: str | None = None
    discord_guild_id: int | None = None  # commands synced to this guild only (instant; dev)

    @property
    def slack_mode(self) -> Literal["socket", "http"] | None:
        """Socket Mode with an app token, HTTP mode with a signing secret, None without Slack."""
        if self.slack_bot_token is None:
            return None
        return "socket" if self.slack_app_token is not None else "http"

    def service(self, service_id: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.id == service_id), None)

    def secrets(self) -> list[str]:
        """Every secret value in play, for scrubbing logs and stored text."""
        values = [s.api_key for s in self.services] + [
            self.slack_bot_token, self.slack_app_token, self.slack_signing_secret,
            self.discord_token]
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


_BOT_KEYS = {"db", "port", "host", "concurrency", "retention_days", "tick_seconds", "log_level",
             "builtin_catalog", "admins"}
_ALERT_KEYS = {"remind_every_minutes", "give_up_after_hours", "delivery_concurrency"}
_GENERATE_KEYS = set(GenerateSettings.model_fields)
_TOP_KEYS = {"bot", "alerts", "generate", "service"}


def load_settings(path: str | Path | None, env: Mapping[str, str]) -> Settings:
    """Read the TOML file (if any) and ``env``; raise ``ConfigError`` naming what is wrong."""
    text, data = "", {}
    if path is not None:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{p}: cannot read config file: {e.strerror or e}") from e
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: invalid TOML: {e}") from e
    where = str(path) if path is not None else "<built-in defaults>"

    unknown = set(data) - _TOP_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{where}{_line_of(text, key)}: unknown section or key {key!r} "
                          f"(allowed: [bot], [alerts], [generate], [[service]])")
    bot = _section(data, "bot", _BOT_KEYS, where=where, text=text)
    alerts = _section(data, "alerts", _ALERT_KEYS, where=where, text=text)
    generate = _section(data, "generate", _GENERATE_KEYS, where=where, text=text)
    file_services = data.get("service", [])
    if not isinstance(file_services, list):
        raise ConfigError(f"{where}: 'service' must be an array of tables ([[service]])")

    services = _merge_services(file_services, builtin=bot.get("builtin_catalog", True),
                               where=where, text=text)
    resolved = [_resolve(s, env, where=where, text=text, index=i) for i, s in enumerate(services)]

    passthrough = _BOT_KEYS - {"db", "builtin_catalog"}
    raw: dict[str, Any] = {k: v for k, v in bot.items() if k in passthrough}
    raw.update(alerts)
    raw["db_path"] = env.get("SORA_BOT_DB") or bot.get("db") or DEFAULT_DB
    if env.get("PORT"):
        raw["port"] = env["PORT"]
    raw.update(
        services=tuple(resolved), config_path=str(path) if path is not None else None,
        slack_bot_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_app_token=env.get("SLACK_APP_TOKEN") or None,
        slack_signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
        slack_api_url=env.get("SLACK_API_URL") or None,
        discord_token=env.get("DISCORD_TOKEN") or None,
        discord_api_url=env.get("DISCORD_API_URL") or None,
        discord_guild_id=env.get("DISCORD_GUILD_ID") or None,
    )
    _check_slack(env)
    _check_discord(env)
    try:
        raw["generate"] = GenerateSettings.model_validate(generate)
    except ValidationError as e:
        raise ConfigError(_explain(e, where, text, prefix="generate")) from e
    _check_routes(raw["generate"], resolved, where=where, text=text,
                  model_set="default_model" in generate)
    try:
        return Settings.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_explain(e, where, text, prefix="bot")) from e


def _check_routes(gen: GenerateSettings, services: list[ServiceConfig], *, where: str,
                  text: str, model_set: bool) -> None:
    """Every route names a service that can make videos; a ``default_model`` the file sets is
    one of theirs (a monitoring-only catalog need not serve the built-in default)."""
    video = {s.id for s in services if s.can_generate_video}
    models = {m for s in services if s.can_generate_video and s.enabled
              for m in (s.model, *s.successor_of)} | set(gen.routes)
    if model_set and gen.default_model not in models:
        raise ConfigError(
            f"{where}{_line_of(text, 'default_model')}: generate.default_model: "
            f"{gen.default_model!r} is not a model of any video service (known: "
            f"{', '.join(sorted(str(m) for m in models))})")
    for model, ids in gen.routes.items():
        for sid in ids:
            if sid not in video:
                raise ConfigError(
                    f"{where}{_line_of(text, 'routes')}: generate.routes.{model}: {sid!r} is "
                    f"not a video service (known: {', '.join(sorted(video)) or 'none'})")


def _check_slack(env: Mapping[str, str]) -> None:
    """The Slack variables make one of the two modes, with tokens of the right kind.

    Messages name the variable and the expected prefix, never the value."""
    bot, app = env.get("SLACK_BOT_TOKEN") or "", env.get("SLACK_APP_TOKEN") or ""
    secret = env.get("SLACK_SIGNING_SECRET") or ""
    if not (bot or app or secret):
        return
    if not bot:
        raise ConfigError("SLACK_BOT_TOKEN is not set: the Slack adapter needs the bot token "
                          "(xoxb-…) from OAuth & Permissions as well")
    if not bot.startswith("xoxb-"):
        hint = " (an xapp- token belongs in SLACK_APP_TOKEN)" if bot.startswith("xapp-") else ""
        raise ConfigError(f"SLACK_BOT_TOKEN must be a bot token starting with xoxb-{hint}")
    if app and not app.startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token starting with xapp- "
                          "(Basic Information → App-Level Tokens, scope connections:write)")
    if not (app or secret):
        raise ConfigError("Slack needs SLACK_APP_TOKEN (Socket Mode, no public URL) or "
                          "SLACK_SIGNING_SECRET (HTTP mode on POST /slack/events)")


def _check_discord(env: Mapping[str, str]) -> None:
    """The Discord variables: a bot token (not the client secret or the application id) and a
    guild id that is a snowflake. Messages name the variable, never the value."""
    token = env.get("DISCORD_TOKEN") or ""
    guild = env.get("DISCORD_GUILD_ID") or ""
    api = env.get("DISCORD_API_URL") or ""
    if (guild or api) and not token:
        raise ConfigError(f"{'DISCORD_GUILD_ID' if guild else 'DISCORD_API_URL'} is set but "
                          "DISCORD_TOKEN is not: the Discord adapter needs the bot token")
    if token.lower().startswith("bot "):
        raise ConfigError("DISCORD_TOKEN must be the token alone, without the 'Bot ' prefix")
    if token and (token.count(".") != 2 or any(c.isspace() for c in token)):
        raise ConfigError("DISCORD_TOKEN does not look like a bot token (three parts separated "
                          "by dots): copy it from the developer portal, Bot → Reset Token — not "
                          "the application id, public key or client secret")
    if guild and not re.fullmatch(r"\d{15,21}", guild):
        raise ConfigError("DISCORD_GUILD_ID must be a server id (15–21 digits): enable "
                          "Developer Mode, right-click the server, Copy Server ID")
    if api and not re.match(r"^https?://[^/\s]+", api):
        raise ConfigError("DISCORD_API_URL must be an http(s) URL of the REST API base, e.g. "
                          "https://discord.com/api/v10")


def _section(data: dict[str, Any], name: str, allowed: set[str], *, where: str, text: str
             ) -> dict[str, Any]:
    section = data.get(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: [{name}] must be a table")
    for key in section:
        if key not in allowed:
            raise ConfigError(f"{where}{_line_of(text, key)}: unknown key {name}.{key!r} "
                              f"(allowed: {', '.join(sorted(allowed))})")
    return dict(section)


def load_settings_from_environment(config_path: str | None = None) -> Settings:
    """The process entry point: ``--config`` or ``SORA_BOT_CONFIG``, plus ``os.environ``."""
    path = config_path or os.environ.get("SORA_BOT_CONFIG") or None
    return load_settings(path, os.environ)


def _merge_services(file_services: list[Any], *, builtin: object, where: str, text: str
                    ) -> list[dict[str, Any]]:
    if not isinstance(builtin, bool):
        raise ConfigError(f"{where}{_line_of(text, 'builtin_catalog')}: bot.builtin_catalog "
                          "must be true or false")
    merged: dict[str, dict[str, Any]] = (
        {s["id"]: dict(s) for s in BUILTIN_SERVICES} if builtin else {})
    for i, entry in enumerate(file_services):
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ConfigError(f"{where}{_line_of(text, 'id', block=i)}: service[{i}] needs an "
                              "'id' (a string)")
        for secret_like in ("api_key", "token", "password", "secret"):
            if secret_like in entry:
                raise ConfigError(
                    f"{where}{_line_of(text, secret_like, block=i)}: service[{i}].{secret_like}: "
                    "secrets are never read from files; put the secret in an environment "
                    "variable and name it with api_key_env")
        base = merged.get(entry["id"], {})
        merged[entry["id"]] = {**base, **entry, "_index": i}
    return list(merged.values())


def _resolve(entry: dict[str, Any], env: Mapping[str, str], *, where: str, text: str,
             index: int) -> ServiceConfig:
    data = {k: v for k, v in entry.items() if k != "_index"}
    block = entry.get("_index")
    label = f"service[{block}]" if block is not None else f"built-in service {data.get('id')!r}"
    if data.get("base_url_env") and env.get(data["base_url_env"]):
        data["base_url"] = env[data["base_url_env"]]
    if data.get("api_key_env") and env.get(data["api_key_env"]):
        data["api_key"] = env[data["api_key_env"]]
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_explain(e, where, text, prefix=label, block=block)) from e


def _explain(e: ValidationError, where: str, text: str, *, prefix: str,
             block: int | None = None) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"])
        key = str(err["loc"][0]) if err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        where_line = _line_of(text, key, block=block) if key else ""
        lines.append(f"{where}{where_line}: {prefix}.{loc}: {msg}" if loc
                     else f"{where}{where_line}: {prefix}: {msg}")
    return "\n".join(lines)


def _line_of(text: str, key: str, *, block: int | None = None) -> str:
    """``:N`` — the line of ``key = …`` (inside the ``block``-th ``[[service]]``), or ''."""
    if not text or not key:
        return ""
    seen = -1
    in_block = block is None
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[[service]]"):
            seen += 1
            in_block = block is None or seen == block
            if block is not None and seen == block and key == "id":
                return f":{n}"
            continue
        if stripped.startswith("[") and not stripped.startswith("[["):
            in_block = block is None
            if stripped == f"[{key}]":
                return f":{n}"
            continue
        if in_block and re.match(rf"^{re.escape(key)}\s*=", stripped):
            return f":{n}"
    return ""
