"""``[generate]`` in the config file: defaults, and errors that name the key and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings


def load(tmp_path: Path, text: str) -> object:
    cfg = tmp_path / "bot.toml"
    cfg.write_text(text, encoding="utf-8")
    return load_settings(cfg, {})


def test_defaults_cost_nothing_without_an_admin() -> None:
    gen = load_settings(None, {}).generate
    assert (gen.allow_users, gen.allow_roles, gen.allow_channels) == ((), (), ())
    assert (gen.default_model, gen.prefer, gen.user_daily_quota, gen.daily_budget_usd) == (
        "sora-2", "official", 5, 10.0)
    assert (gen.edit_every_seconds, gen.max_prompt_chars) == (10.0, 1000)


def test_routes_and_allow_lists_are_read(tmp_path: Path) -> None:
    settings = load_settings(None, {})
    assert settings.service("sora-images") is not None
    assert not settings.service("sora-images").can_generate_video  # type: ignore[union-attr]
    cfg = tmp_path / "bot.toml"
    cfg.write_text('[generate]\nallow_roles = ["42"]\ndaily_budget_usd = 2.5\n\n'
                   '[generate.routes]\n"sora-2" = ["kling-reverse", "seedance-relay"]\n',
                   encoding="utf-8")
    gen = load_settings(cfg, {}).generate
    assert gen.routes == {"sora-2": ("kling-reverse", "seedance-relay")}
    assert gen.allow_roles == ("42",) and gen.daily_budget_usd == 2.5


@pytest.mark.parametrize(("text", "error"), [
    ("[generate]\nbudget = 5\n", r"bot.toml:2: unknown key generate.'budget'"),
    ("[generate]\ndaily_budget_usd = -1\n",
     r"bot.toml:2: generate.daily_budget_usd: Input should be greater than or equal to 0"),
    ("[generate]\nprefer = \"cheapest\"\n", r"bot.toml:2: generate.prefer: Input should be"),
    ("[generate]\npoll_min_seconds = 10\npoll_max_seconds = 5\n",
     "poll_max_seconds must be at least poll_min_seconds"),
    ("[generate.routes]\n\"sora-2\" = [\"sora-images\"]\n",
     r"generate.routes.sora-2: 'sora-images' is not a video service"),
    ("[generate]\ndefault_model = \"dall-e-3\"\n",
     r"bot.toml:2: generate.default_model: 'dall-e-3' is not a model of any video service"),
])
def test_mistakes_name_the_key(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load(tmp_path, text)
