"""Settings for `massage-bot run`: environment over `.env`, clear refusals, no token leaks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config


def test_the_environment_wins_over_the_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# local\nexport DISCORD_TOKEN='from-file'\nDISCORD_DEV_GUILD=42\n")
    config = load_config({}, env_file)
    assert (config.token, config.dev_guild) == ("from-file", 42)
    assert load_config({"DISCORD_TOKEN": "from-env"}, env_file).token == "from-env"
    assert "from-env" not in repr(load_config({"DISCORD_TOKEN": "from-env"}, env_file))


def test_retention_is_ninety_days_unless_set(tmp_path: Path) -> None:
    assert load_config({"DISCORD_TOKEN": "t"}, tmp_path / ".env").retention_days == 90
    settings = {"DISCORD_TOKEN": "t", "MASSAGE_BOT_RETENTION_DAYS": "30"}
    assert load_config(settings, tmp_path / ".env").retention_days == 30


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "DISCORD_TOKEN is not set"),
        ({"DISCORD_DEV_GUILD": "my server"}, "DISCORD_DEV_GUILD must be a server id"),
        ({"DISCORD_API_BASE": "not-a-url"}, "DISCORD_API_BASE must be an http(s) URL"),
        ({"DISCORD_GATEWAY_URL": "http://x/gateway"}, "DISCORD_GATEWAY_URL must be a ws(s) URL"),
        ({"MASSAGE_BOT_RETENTION_DAYS": "0"}, "MASSAGE_BOT_RETENTION_DAYS must be a whole number"),
        ({"MASSAGE_BOT_RETENTION_DAYS": "a year"}, "MASSAGE_BOT_RETENTION_DAYS must be a whole"),
    ],
)
def test_bad_settings_are_refused(tmp_path: Path, settings: dict[str, str], message: str) -> None:
    environ = {"DISCORD_TOKEN": "secret-value", **settings} if settings else {}
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_config(environ, tmp_path / ".env")
    assert "secret-value" not in str(raised.value)
