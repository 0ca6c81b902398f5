"""Fixtures for end-to-end tests: a fresh fake Discord per test, and no internet.

A test fails if the bot sent anything real Discord would have refused; a test that
provokes a refusal on purpose asserts on ``fake.refusals`` and clears it.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl

from bot.client import MassageBot
from bot.knowledge import load_knowledge
from bot.pictures import PICTURES_VARIABLE
from tests.e2e.fake_discord import FakeDiscord
from tests.e2e.massage_world import MUSCLE, MUSCLE_COUNT, PRESSURE_FAQ, TECHNIQUES, WARM_UP_FAQ

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
QUICK_EDIT_GAP = 0.02  # seconds between edits of a session message (the bot's is 1 s)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Refuse, and list, every name lookup or connection beyond the loopback interface."""
    attempts: list[str] = []
    getaddrinfo, connect = socket.getaddrinfo, socket.socket.connect

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and str(host) not in LOOPBACK:
            attempts.append(f"lookup of {host}")
            raise OSError(f"offline test: no lookup of {host}")
        return getaddrinfo(host, *args, **kwargs)

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            attempts.append(f"connection to {address}")
            raise OSError(f"offline test: no connection to {address}")
        connect(sock, address)

    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield attempts
    assert not attempts, f"the test tried to reach beyond 127.0.0.1: {attempts}"


@pytest.fixture
async def fake(offline: list[str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """A running fake Discord that discord.py (and ``DISCORD_API_BASE`` /
    ``DISCORD_GATEWAY_URL`` readers) point at, holding a small world:

    - users alice, bob, carol and dana;
    - guild "Wellness" (channels general, sessions) owned by dana, who also has the
      "Curators" role (Manage Server); alice, bob and carol are members;
    - guild "Retreat" (channel general) owned by alice, with bob.
    """
    fake = FakeDiscord()
    alice, bob, carol, dana = (fake.add_user(n) for n in ("alice", "bob", "carol", "dana"))
    wellness = fake.add_guild("Wellness", owner=dana, channels=["general", "sessions"],
                              members=[alice, bob, carol])
    curators = fake.add_role(wellness, "Curators", discord.Permissions(manage_guild=True).value)
    wellness.member(dana).roles.append(curators)
    fake.add_guild("Retreat", owner=alice, members=[bob])
    await fake.start()
    monkeypatch.setenv("DISCORD_API_BASE", fake.api_base)
    monkeypatch.setenv("DISCORD_GATEWAY_URL", fake.gateway_url)
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        yarl.URL(fake.gateway_url))
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Fail the test when the fake Discord refused a request, saying why (also when the
    test failed otherwise: a refusal is often why the bot's answer never came)."""
    try:
        return (yield)
    finally:
        fake = getattr(item, "funcargs", {}).get("fake")
        if isinstance(fake, FakeDiscord) and fake.refusals:
            pytest.fail("Discord would have refused:\n" + "\n".join(map(str, fake.refusals)),
                        pytrace=False)


@pytest.fixture
def bot_knowledge(knowledge_dir: Path) -> Path:
    """The tests' tiny knowledge (the `tiny` routine: 4 steps of 150 s, the second on the
    left side and the third on the right; a numbness red flag; an oil FAQ) plus a
    more-pressure FAQ, a warm-up FAQ with a long answer, two techniques that tie and 30
    muscles."""
    with (knowledge_dir / "faq.yaml").open("a", encoding="utf-8") as faq:
        faq.write(PRESSURE_FAQ + WARM_UP_FAQ)
    (knowledge_dir / "techniques.yaml").write_text(TECHNIQUES, encoding="utf-8")
    muscles = "".join(MUSCLE.format(n=n) for n in range(MUSCLE_COUNT))
    (knowledge_dir / "muscles.yaml").write_text(muscles, encoding="utf-8")
    return knowledge_dir


@pytest.fixture
def make_bot(
    bot_knowledge: Path, db_path: Path, clock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A new bot process on the same store file (or the `db` given) and clock (call it again
    to restart), drawing its pictures into the test's own directory, editing session
    messages with hardly a gap (unless given `edit_gap`)."""
    monkeypatch.setenv(PICTURES_VARIABLE, str(tmp_path / "pictures"))

    def make(**options: Any) -> MassageBot:
        options = {"db": db_path, "edit_gap": QUICK_EDIT_GAP, **options}
        return MassageBot(load_knowledge(bot_knowledge), clock=clock, **options)

    return make


@pytest.fixture
async def bot(fake: FakeDiscord, make_bot: Any) -> AsyncIterator[MassageBot]:
    massage_bot = make_bot()
    async with fake.run(massage_bot):
        yield massage_bot
