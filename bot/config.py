"""Settings for `massage-bot run` (and the console's retention): the environment first, then
a `.env` file."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_RETENTION_DAYS = 90
RETENTION_VARIABLE = "MASSAGE_BOT_RETENTION_DAYS"
DAY_SECONDS = 86_400.0


class ConfigError(Exception):
    """A setting is missing or wrong. The message never contains the token."""


@dataclass(frozen=True)
class BotConfig:
    token: str
    dev_guild: int | None = None
    api_base: str | None = None  # a REST proxy, e.g. http://127.0.0.1:8080/api/v10
    gateway_url: str | None = None  # a gateway proxy, e.g. ws://127.0.0.1:8080/gateway
    shard_count: int = 1
    shard_ids: tuple[int, ...] | None = None
    retention_days: int = DEFAULT_RETENTION_DAYS  # ended sessions and old questions go after

    def __repr__(self) -> str:  # keep the token out of logs and tracebacks
        return f"BotConfig(dev_guild={self.dev_guild}, api_base={self.api_base!r}, ...)"


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines of a `.env` file; comments, blanks and `export` are allowed."""
    values: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return values
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error.__class__.__name__}") from None
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_config(
    environ: Mapping[str, str] | None = None,
    env_file: Path = Path(".env"),
    shard_count: int | None = None,
    shard_ids: tuple[int, ...] | None = None,
) -> BotConfig:
    settings = settings_from(environ, env_file)
    token = settings.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise ConfigError("DISCORD_TOKEN is not set (in the environment or in .env)")
    dev_guild = settings.get("DISCORD_DEV_GUILD", "").strip()
    if dev_guild and not dev_guild.isdigit():
        raise ConfigError("DISCORD_DEV_GUILD must be a server id (digits)")
    api_base = settings.get("DISCORD_API_BASE") or None
    gateway_url = settings.get("DISCORD_GATEWAY_URL") or None
    if api_base and not api_base.startswith(("http://", "https://")):
        raise ConfigError("DISCORD_API_BASE must be an http(s) URL, e.g. http://proxy:8080/api/v10")
    if gateway_url and not gateway_url.startswith(("ws://", "wss://")):
        raise ConfigError("DISCORD_GATEWAY_URL must be a ws(s) URL, e.g. ws://proxy:8080/gateway")
    count = 1 if shard_count is None else shard_count
    if count < 1:
        raise ConfigError("--shard-count must be 1 or more")
    if shard_ids is not None and any(not 0 <= s < count for s in shard_ids):
        raise ConfigError(f"--shard-ids must be between 0 and {count - 1}")
    return BotConfig(
        token=token,
        dev_guild=int(dev_guild) if dev_guild else None,
        api_base=api_base,
        gateway_url=gateway_url,
        shard_count=count,
        shard_ids=shard_ids,
        retention_days=retention_days(settings),
    )


def retention_days(settings: Mapping[str, str]) -> int:
    """How many days ended sessions and unanswered questions are kept (default 90)."""
    retention = settings.get(RETENTION_VARIABLE, "").strip() or str(DEFAULT_RETENTION_DAYS)
    if not retention.isdigit() or int(retention) < 1:
        raise ConfigError(f"{RETENTION_VARIABLE} must be a whole number of days, 1 or more")
    return int(retention)


def settings_from(environ: Mapping[str, str] | None, env_file: Path) -> dict[str, str]:
    """The settings: `env_file`'s, overridden by the environment's."""
    return {**read_env_file(env_file), **(os.environ if environ is None else environ)}
