"""Discord settings: a clear error (never echoing the token) for each mistake, and the README's
invite link and command list matching the code."""

from __future__ import annotations

import io
from pathlib import Path

import discord
import pytest

from adapters.discord import (
    INVITE_URL,
    PERMISSIONS,
    POST_PERMISSIONS,
    DiscordCommands,
    make_client,
)
from bot.cli import check_config
from bot.commands import USAGE
from bot.config import ConfigError, load_settings

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GaBcDe.secret-part-of-the-token"
README = Path(__file__).resolve().parents[2] / "README.md"


def test_a_token_means_discord_and_is_a_secret() -> None:
    s = load_settings(None, {"DISCORD_TOKEN": TOKEN, "DISCORD_GUILD_ID": "123456789012345678"})
    assert s.discord_token is not None and s.discord_guild_id == 123456789012345678
    assert TOKEN in s.secrets()
    assert TOKEN not in repr(s)


@pytest.mark.parametrize(("env", "says"), [
    ({"DISCORD_TOKEN": f"Bot {TOKEN}"}, "without the 'Bot ' prefix"),
    ({"DISCORD_TOKEN": "123456789012345678"}, "not the application id"),
    ({"DISCORD_TOKEN": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"}, "client secret"),
    ({"DISCORD_TOKEN": TOKEN, "DISCORD_GUILD_ID": "my-server"}, "Copy Server ID"),
    ({"DISCORD_GUILD_ID": "123456789012345678"}, "DISCORD_TOKEN is not"),
    ({"DISCORD_TOKEN": TOKEN, "DISCORD_API_URL": "localhost:8080"}, "http(s) URL"),
])
def test_each_mistake_is_named_without_the_token(env: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env)
    assert says in str(caught.value)
    assert not any(v in str(caught.value) for v in env.values())


@pytest.mark.parametrize(("guild", "says"), [
    ("", "chat: discord (/sora synced globally)"),
    ("123456789012345678", "chat: discord (/sora synced to server 123456789012345678)"),
])
def test_check_config_says_how_commands_are_synced_without_the_token(guild: str,
                                                                    says: str) -> None:
    out = io.StringIO()
    assert check_config(load_settings(None, {"DISCORD_TOKEN": TOKEN,
                                             "DISCORD_GUILD_ID": guild}), out) == 0
    assert says in out.getvalue() and TOKEN not in out.getvalue()


def test_the_invite_asks_for_what_alerts_need_and_the_readme_gives_it() -> None:
    granted = discord.Permissions(PERMISSIONS)
    assert all(getattr(granted, name) for name in POST_PERMISSIONS)
    assert not granted.administrator and not granted.mention_everyone
    readme = README.read_text(encoding="utf-8")
    assert INVITE_URL.format(app_id="YOUR_APPLICATION_ID") in readme


def test_every_core_command_is_a_subcommand_and_the_readme_lists_them() -> None:
    tree = DiscordCommands(make_client(),
                           commands=None,  # type: ignore[arg-type]  # only the tree is read
                           ).tree
    [group] = tree.get_commands()
    assert isinstance(group, discord.app_commands.Group) and group.guild_only
    names = {c.name for c in group.commands}
    assert names == set(USAGE)
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index("## Discord"):readme.index("## Alerts")]
    assert [n for n in names if f"`{n}`" not in section] == []
