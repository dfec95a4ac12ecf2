"""Slack settings: the two modes, and a clear error (never echoing a token) for each mistake."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from adapters.slack import COMMAND, METHOD_SCOPES, SCOPES
from bot.cli import check_config
from bot.commands import USAGE
from bot.config import ConfigError, load_settings

BOT, APP, SECRET = "xoxb-1-secret-bot", "xapp-1-secret-app", "s3cr3t-signing"
MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def test_an_app_token_means_socket_mode() -> None:
    s = load_settings(None, {"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP})
    assert s.slack_mode == "socket"


def test_a_signing_secret_alone_means_http_mode() -> None:
    s = load_settings(None, {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": SECRET})
    assert s.slack_mode == "http"
    assert SECRET in s.secrets() and BOT in s.secrets()


def test_no_slack_variables_means_no_slack() -> None:
    assert load_settings(None, {}).slack_mode is None


@pytest.mark.parametrize(("env", "says"), [
    ({"SLACK_BOT_TOKEN": BOT}, "SLACK_APP_TOKEN (Socket Mode"),
    ({"SLACK_APP_TOKEN": APP}, "SLACK_BOT_TOKEN is not set"),
    ({"SLACK_SIGNING_SECRET": SECRET}, "SLACK_BOT_TOKEN is not set"),
    ({"SLACK_BOT_TOKEN": APP, "SLACK_APP_TOKEN": APP}, "belongs in SLACK_APP_TOKEN"),
    ({"SLACK_BOT_TOKEN": "xoxp-user-token", "SLACK_SIGNING_SECRET": SECRET}, "starting with xoxb-"),
    ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": BOT}, "starting with xapp-"),
])
def test_each_mistake_is_named_without_the_token(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env)
    assert says in str(caught.value)
    assert not any(v in str(caught.value) for v in env.values())


def test_the_manifest_matches_what_the_code_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert all(name in command["usage_hint"] for name in USAGE)
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES
    assert set(METHOD_SCOPES.values()) <= SCOPES and "commands" in SCOPES
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert len(manifest["display_information"]["long_description"]) >= 175  # Slack's minimum
    assert manifest["features"]["bot_user"]["display_name"]


@pytest.mark.parametrize(("env", "says"), [
    ({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP}, "chat: slack (Socket Mode)"),
    ({"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": SECRET},
     "chat: slack (HTTP mode on POST /slack/events)"),
    ({}, "chat: console (no chat token set)"),
])
def test_check_config_says_which_slack_mode_without_a_secret(env: dict[str, str],
                                                             says: str) -> None:
    out = io.StringIO()
    assert check_config(load_settings(None, env), out) == 0
    assert says in out.getvalue()
    assert not any(v in out.getvalue() for v in (BOT, APP, SECRET))
