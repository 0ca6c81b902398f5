"""`/massage-admin` for curators, and `massage-bot run` against the fake Discord."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.client import MassageBot
from bot.knowledge import KnowledgeBase
from bot.sessions import SessionEngine
from bot.store import Store
from tests.conftest import FakeAsker, FakeClock
from tests.e2e.fake_discord import FakeDiscord
from tests.e2e.massage_world import ephemeral_text, press, slash, text_of


async def test_only_curators_see_the_admin_commands(fake: FakeDiscord, bot: MassageBot) -> None:
    wellness = fake.guild("Wellness")
    with pytest.raises(PermissionError):
        await fake.slash(fake.user("alice"), wellness.channel("general"), "massage-admin",
                         "unanswered")  # fmt: skip
    with pytest.raises(LookupError, match="not available in DMs"):
        await fake.slash(fake.user("dana"), fake.dm_channel(fake.user("dana")), "massage-admin",
                         "unanswered")  # fmt: skip


async def test_answer_channels(fake: FakeDiscord, bot: MassageBot) -> None:
    wellness = fake.guild("Wellness")
    alice, dana = fake.user("alice"), fake.user("dana")
    general, sessions = wellness.channel("general"), wellness.channel("sessions")
    listed = await slash(fake, dana, general, "massage-admin", "channels", "list")
    assert "every channel" in ephemeral_text(listed)
    added = await slash(fake, dana, general, "massage-admin", "channels", "add", channel=sessions)
    assert f"I now answer in <#{sessions.id}>" in ephemeral_text(added)

    elsewhere = await slash(fake, alice, general, "massage", "ask", question="oil?")
    assert "Oil or lotion" in ephemeral_text(elsewhere)  # answered, but privately
    there = await slash(fake, alice, sessions, "massage", "ask", question="oil?")
    assert there.original is not None and not there.original.ephemeral
    refused = await slash(fake, alice, general, "massage", "start", routine="tiny")
    assert f"I guide sessions in <#{sessions.id}>" in ephemeral_text(refused)

    start = len(fake.calls)
    await fake.send_message(alice, general, f"{fake.bot.mention} oil?")  # not answered here
    await fake.send_message(alice, sessions, f"{fake.bot.mention} oil?")
    reply = await fake.wait_for_call("POST", r"/channels/\d+/messages", since=start)
    assert reply.path == f"/channels/{sessions.id}/messages"

    removed = await slash(
        fake, dana, general, "massage-admin", "channels", "remove", channel=sessions
    )
    assert "every channel" in ephemeral_text(removed)
    again = await slash(fake, alice, general, "massage", "ask", question="oil?")
    assert again.original is not None and not again.original.ephemeral
    assert len(fake.calls_to("POST", r"/channels/\d+/messages")) == 1


async def test_unanswered_questions_most_asked_first(fake: FakeDiscord, bot: MassageBot) -> None:
    wellness, retreat = fake.guild("Wellness"), fake.guild("Retreat")
    alice, bob, dana = fake.user("alice"), fake.user("bob"), fake.user("dana")
    general = wellness.channel("general")
    nothing = await slash(fake, dana, general, "massage-admin", "unanswered")
    assert "No unanswered questions" in ephemeral_text(nothing)
    for user, question in [
        (alice, "is reiki real"),
        (bob, "what's on tv"),
        (bob, "Is  Reiki real"),
        (alice, "what about crystals"),
    ]:
        await slash(fake, user, general, "massage", "ask", question=question)
    await slash(fake, alice, retreat.channel("general"), "massage", "ask", question="stocks?")
    listed = await slash(fake, dana, general, "massage-admin", "unanswered")
    lines = ephemeral_text(listed).split("\n")
    assert "**2\N{MULTIPLICATION SIGN}** is reiki real" in lines
    reiki = lines.index("**2\N{MULTIPLICATION SIGN}** is reiki real")
    assert reiki < lines.index("**1\N{MULTIPLICATION SIGN}** what's on tv")
    assert "stocks" not in ephemeral_text(listed)  # another server's


async def test_reload_keeps_the_last_good_knowledge(
    fake: FakeDiscord, bot: MassageBot, bot_knowledge: Path
) -> None:
    alice, dana, general = (
        fake.user("alice"),
        fake.user("dana"),
        fake.guild("Wellness").channel("general"),
    )
    faq = bot_knowledge / "faq.yaml"
    good = faq.read_text(encoding="utf-8")
    broken = good.replace("id: oil-or-lotion", "id: Oil Or Lotion") + "\n- id: [unclosed\n"
    faq.write_text(broken, encoding="utf-8")
    refused = await fake.slash(dana, general, "massage-admin", "reload")
    assert (await refused.response()).json["type"] == 5  # thinking, privately
    await fake.wait_for_call("POST", rf"/webhooks/\d+/{refused.token}")
    assert refused.original is not None and refused.original.ephemeral
    report = text_of(refused.original)
    assert "Kept the current knowledge" in report and f"{faq}:" in report
    asked = await slash(fake, alice, general, "massage", "ask", question="should I use oil?")
    assert asked.original is not None and "Oil or lotion" in text_of(asked.original)

    faq.write_text(good.replace("unscented oil", "grapeseed oil"), encoding="utf-8")
    reloaded = await fake.slash(dana, general, "massage-admin", "reload")
    await reloaded.response()
    await fake.wait_for_call("POST", rf"/webhooks/\d+/{reloaded.token}")
    assert reloaded.original is not None and "Reloaded:" in text_of(reloaded.original)
    asked = await slash(fake, alice, general, "massage", "ask", question="should I use oil?")
    assert asked.original is not None and "grapeseed oil" in text_of(asked.original)


async def test_many_reload_problems_fit_one_embed(
    fake: FakeDiscord, bot: MassageBot, bot_knowledge: Path
) -> None:
    muscles = bot_knowledge / "muscles.yaml"
    too_short = muscles.read_text(encoding="utf-8").replace(
        "how: Work it gently with the flat of the hand.", "how: short"
    )
    muscles.write_text(too_short, encoding="utf-8")
    dana, general = fake.user("dana"), fake.guild("Wellness").channel("general")
    reload = await fake.slash(dana, general, "massage-admin", "reload")
    await reload.response()
    await fake.wait_for_call("POST", rf"/webhooks/\d+/{reload.token}")
    assert reload.original is not None
    (embed,) = reload.original.embeds
    assert embed["title"].startswith("Kept the current knowledge: 30 problem")
    assert "more (run `massage-bot kb check`" in embed["description"]
    assert len(embed["description"]) <= 4096


async def test_curators_set_the_size_of_group_sessions(fake: FakeDiscord, bot: MassageBot) -> None:
    wellness = fake.guild("Wellness")
    alice, bob, carol, dana = (fake.user(n) for n in ("alice", "bob", "carol", "dana"))
    sessions = wellness.channel("sessions")
    shown = await slash(fake, dana, sessions, "massage-admin", "group-size")
    assert ephemeral_text(shown) == "Group sessions here take up to 10 people."
    with pytest.raises(ValueError, match="out of its range"):  # Discord's client says no
        await fake.slash(dana, sessions, "massage-admin", "group-size", people=51)
    with pytest.raises(PermissionError):
        await fake.slash(alice, sessions, "massage-admin", "group-size", people=3)
    changed = await slash(fake, dana, sessions, "massage-admin", "group-size", people=3)
    assert "up to 3 people" in ephemeral_text(changed)

    started = await slash(fake, alice, sessions, "massage", "start", routine="tiny", group=True)
    assert started.original is not None and "1 of 3 in the group" in text_of(started.original)
    for user in (bob, carol):
        await press(fake, user, started.original, "Join")
    full = await press(fake, dana, started.original, "Join")
    assert "This session is full (3 people)" in ephemeral_text(full)
    retreat = await slash(fake, alice, fake.guild("Retreat").channel("general"), "massage",
                          "start", routine="tiny", group=True)  # fmt: skip
    assert retreat.original is not None and "1 of 10 in the group" in text_of(retreat.original)


async def test_old_sessions_and_questions_are_pruned_at_start(
    fake: FakeDiscord, make_bot, db_path: Path, kb: KnowledgeBase, clock: FakeClock
) -> None:
    async with await Store.open(db_path) as store:
        engine = SessionEngine(kb, store, FakeAsker(), clock)
        old = await engine.start("1", "alice", "tiny")
        await store.record_unanswered("asked long ago", clock())
        assert old.session is not None
        await engine.stop(old.session.id, "alice")
        clock.advance(31 * 86_400)
        recent = await engine.start("2", "bob", "tiny")
        assert recent.session is not None
        await engine.stop(recent.session.id, "bob")
        await store.record_unanswered("asked lately", clock())
    bot = make_bot(retention_days=30)
    async with fake.run(bot):
        assert bot.store is not None
        assert await bot.store.load_session(old.session.id, kb.routines) is None
        assert await bot.store.load_session(recent.session.id, kb.routines) is not None
        assert [q.question for q in await bot.store.unanswered_questions()] == ["asked lately"]


async def test_shards_share_the_servers(fake: FakeDiscord, make_bot) -> None:
    class TwoShards(MassageBot):
        async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False):
            """The fake has no identify rate limit: no 5 s pause between shards."""

    alice = fake.user("alice")
    sharded = TwoShards(make_bot().knowledge, db=make_bot().db, shard_count=2)
    async with fake.run(sharded):
        assert sorted(sharded.shards) == [0, 1] and {g.shard_id for g in sharded.guilds} == {0, 1}
        for name in ("Wellness", "Retreat"):
            channel = fake.guild(name).channel("general")
            asked = await slash(fake, alice, channel, "massage", "ask", question="oil?")
            assert asked.original is not None and "Oil or lotion" in text_of(asked.original)


def run_cli(*args: str) -> int:
    return main(["run", *args])


async def test_run_refuses_a_bad_configuration(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert run_cli() == 2
    assert capsys.readouterr().err == (
        "massage-bot: DISCORD_TOKEN is not set (in the environment or in .env)\n"
    )
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    assert run_cli("--shard-count", "2", "--shard-ids", "0,2") == 2
    assert capsys.readouterr().err == "massage-bot: --shard-ids must be between 0 and 1\n"


async def test_run_says_the_token_was_refused_without_echoing_it(
    fake: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "not-the-fake-token-xyz")
    code = await asyncio.to_thread(run_cli, "--db", str(tmp_path / "bot.sqlite3"))
    err = capsys.readouterr().err
    assert code == 2
    assert "not-the-fake-token-xyz" not in err
    assert err.strip().splitlines()[-1].startswith("massage-bot: Discord refused the token")
    fake.refusals.clear()  # the 401 at login is the point of this test


async def test_run_says_when_discord_cannot_be_reached(
    offline: object,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("DISCORD_TOKEN", "secret-token-value")
    monkeypatch.setenv("DISCORD_API_BASE", f"http://127.0.0.1:{port}/api/v10")
    monkeypatch.setenv("DISCORD_GATEWAY_URL", f"ws://127.0.0.1:{port}/gateway")
    code = await asyncio.to_thread(run_cli, "--db", str(tmp_path / "bot.sqlite3"))
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        f"massage-bot: cannot reach Discord at http://127.0.0.1:{port}/api/v10: "
        "ClientConnectorError"
    )
    assert "secret-token-value" not in err
