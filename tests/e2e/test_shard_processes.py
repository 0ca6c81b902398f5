"""Several bot processes (`python -m bot run`, each on its own shards) over one PostgreSQL
database, through the fake Discord: each serves only its own servers, a held shard is
refused, a replacement for a killed process takes its sessions over at the right step and
time, a new shard count keeps every session and setting, and a reload or a forget-me
reaches them all."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg

from bot.client import MassageBot
from tests.e2e.bot_process import BotProcess
from tests.e2e.fake_discord import FakeDiscord, Guild, Message
from tests.e2e.massage_world import press, slash, step_of, text_of

RESIDUES = 6  # guild ids by their shard under 2 and under 3 shards: id % 6
FOOT_RUB = """\
- id: foot-rub
  title: Foot rub
  questions: [how long should a foot rub last, foot rub length, minutes for a foot rub, feet rub]
  answer: Five minutes a foot is plenty; finish with long strokes from the toes to the heel.
"""


def add_guild_at(fake: FakeDiscord, name: str, residue: int) -> Guild:
    """A guild (with alice, bob and carol) whose id's shard bits are `residue` modulo 6, so
    that it is on shard `residue % 2` of 2 and `residue % 3` of 3."""
    while ((fake.next_id() >> 22) + 1) % RESIDUES != residue:
        pass
    members = [fake.user(name) for name in ("alice", "bob", "carol")]
    guild = fake.add_guild(name, owner=fake.user("dana"), members=members)
    assert (guild.id >> 22) % RESIDUES == residue
    return guild


def due_of(message: Message) -> int:
    """When the session message says the step's time is up (``<t:UNIX:R>``)."""
    found = re.search(r"<t:(\d+):R>", text_of(message))
    assert found, text_of(message)
    return int(found[1])


@contextlib.contextmanager
def stopping(processes: list[BotProcess]) -> Iterator[list[BotProcess]]:
    """Stop every process on the way out (those already gone are left alone)."""
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


@contextlib.asynccontextmanager
async def running(
    fake: FakeDiscord, db: str, knowledge: Path, workdir: Path, count: int
) -> AsyncIterator[list[BotProcess]]:
    """`count` bot processes, one per shard of `count`, started and ready; stopped after."""
    processes = [BotProcess(fake, db, workdir, count, (shard,), knowledge=knowledge)
                 for shard in range(count)]  # fmt: skip
    with stopping(processes):
        for process in processes:
            process.start()
        for process in processes:
            await process.ready()
        yield processes


async def test_each_process_serves_its_servers_and_a_replacement_takes_over(
    fake: FakeDiscord, postgres_url: str, bot_knowledge: Path, tmp_path: Path
) -> None:
    north, south = add_guild_at(fake, "North", 0), add_guild_at(fake, "South", 1)
    alice, bob = fake.user("alice"), fake.user("bob")
    async with running(fake, postgres_url, bot_knowledge, tmp_path, 2) as processes:
        messages = {}
        for user, guild in ((alice, north), (bob, south)):
            channel = guild.channel("general")
            answer = await slash(fake, user, channel, "massage", "ask", question="oil?")
            assert answer.original is not None and "Oil or lotion" in text_of(answer.original)
            started = await slash(fake, user, channel, "massage", "start", routine="tiny")
            assert started.original is not None
            await press(fake, user, started.original, "Next")
            messages[guild.name] = started.original
            assert step_of(started.original) == 2
        south_due = due_of(messages["South"])

        intruder = BotProcess(fake, postgres_url, tmp_path, 2, (1,), knowledge=bot_knowledge)
        with stopping([intruder.start()]):
            assert await intruder.exit_status() == 2
        assert re.fullmatch(
            r"massage-bot: shard 1 of 2 is already run by another massage-bot "
            r"\(massage-bot on \S+ pid \d+\); stop it first",
            intruder.last_line(),
        ), intruder.last_line()

        processes[1].kill()  # shard 1 dies mid-session
        since = len(fake.calls)
        replacement = BotProcess(fake, postgres_url, tmp_path, 2, (1,), knowledge=bot_knowledge)
        processes.append(replacement.start())
        await replacement.ready()
        south_message = messages["South"]
        await fake.wait_for_call("PATCH", rf"/channels/\d+/messages/{south_message.id}",
                                 since=since, timeout=10)  # fmt: skip
        assert (step_of(south_message), due_of(south_message)) == (2, south_due)
        assert "shard 1 of 2: ready to serve 1 restored sessions" in replacement.log()
        assert not fake.calls_to("PATCH", rf"/channels/\d+/messages/{messages['North'].id}")

        for user, guild in ((alice, "North"), (bob, "South")):
            await press(fake, user, messages[guild], "Next")
            assert step_of(messages[guild]) == 3


async def test_a_new_shard_count_keeps_every_session_and_setting(
    fake: FakeDiscord, postgres_url: str, bot_knowledge: Path, tmp_path: Path
) -> None:
    guilds = [add_guild_at(fake, name, residue)
              for name, residue in (("North", 0), ("South", 1), ("East", 2), ("West", 5))]
    alice, dana = fake.user("alice"), fake.user("dana")
    async with running(fake, postgres_url, bot_knowledge, tmp_path, 2):
        sessions = {}
        for guild in guilds:
            channel = guild.channel("general")
            started = await slash(fake, alice, channel, "massage", "start", routine="tiny")
            assert started.original is not None
            await press(fake, alice, started.original, "Next")
            sessions[guild.name] = started.original
        await slash(fake, dana, guilds[2].channel("general"), "massage-admin", "group-size",
                    people=4)  # fmt: skip

        early = BotProcess(fake, postgres_url, tmp_path, 3, (2,), knowledge=bot_knowledge)
        with stopping([early.start()]):
            assert await early.exit_status() == 2
        assert early.last_line() == (
            f"massage-bot: massage-bot processes with --shard-count 2 run on {postgres_url}; "
            "stop them all before running 3 shards"
        )
    async with running(fake, postgres_url, bot_knowledge, tmp_path, 3) as three:
        for process in three:  # East and West moved to the new shard 2
            restored = {0: 1, 1: 1, 2: 2}[process.shard_ids[0]]
            assert f"ready to serve {restored} restored sessions" in process.log()
        for guild in guilds:
            await press(fake, alice, sessions[guild.name], "Next")
            assert step_of(sessions[guild.name]) == 3
        group = await slash(fake, dana, guilds[2].channel("general"), "massage", "start",
                            routine="tiny", group=True)  # fmt: skip
        assert group.original is not None and "1 of 4 in the group" in text_of(group.original)


async def test_a_reload_on_one_process_reloads_them_all(
    fake: FakeDiscord, postgres_url: str, bot_knowledge: Path, tmp_path: Path
) -> None:
    north, south = add_guild_at(fake, "North", 0), add_guild_at(fake, "South", 1)
    alice, dana = fake.user("alice"), fake.user("dana")
    async with running(fake, postgres_url, bot_knowledge, tmp_path, 2) as processes:
        question = "how long should a foot rub last?"
        before = await slash(fake, alice, south.channel("general"), "massage", "ask",
                             question=question)  # fmt: skip
        assert before.original is not None and "Foot rub" not in text_of(before.original)
        with (bot_knowledge / "faq.yaml").open("a", encoding="utf-8") as faq:
            faq.write(FOOT_RUB)
        reload = await slash(fake, dana, north.channel("general"), "massage-admin", "reload")
        await fake.wait_for_call("POST", rf"/webhooks/\d+/{reload.token}")
        assert reload.original is not None and "Reloaded" in text_of(reload.original)
        for _ in range(200):  # the other process hears of it and reloads too
            if "reloaded the knowledge" in processes[1].log():
                break
            await asyncio.sleep(0.05)
        after = await slash(fake, alice, south.channel("general"), "massage", "ask",
                            question=question)  # fmt: skip
        assert after.original is not None and "Foot rub" in text_of(after.original)


async def test_forget_me_on_one_process_reaches_the_sessions_of_the_others(
    fake: FakeDiscord, postgres_url: str, bot_knowledge: Path, tmp_path: Path
) -> None:
    north, south = add_guild_at(fake, "North", 0), add_guild_at(fake, "South", 1)
    alice, bob = fake.user("alice"), fake.user("bob")
    async with running(fake, postgres_url, bot_knowledge, tmp_path, 2):
        group = await slash(fake, bob, south.channel("general"), "massage", "start",
                            routine="tiny", group=True)  # fmt: skip
        assert group.original is not None
        await press(fake, alice, group.original, "Join")
        asked = await slash(fake, alice, north.channel("general"), "massage", "forget-me")
        assert asked.original is not None
        await press(fake, alice, asked.original, "Forget me")  # served by the other process
        assert "forgotten you" in text_of(asked.original)
        for _ in range(200):  # the process running the session hears of it
            if f"<@{alice.id}>" not in text_of(group.original):
                break
            await asyncio.sleep(0.05)
        assert "1 of 10 in the group" in text_of(group.original)
        await press(fake, bob, group.original, "Next")  # and saves the session again
        connection = await asyncpg.connect(postgres_url)
        try:
            for table in ("sessions", "session_participants", "session_events"):
                rows = await connection.fetch(f"SELECT * FROM {table}")
                assert rows and not any(str(alice.id) in str(v) for r in rows for v in r.values())
        finally:
            await connection.close()


async def test_a_process_that_loses_its_leases_stops(
    fake: FakeDiscord, make_bot: Callable[..., MassageBot], postgres_url: str
) -> None:
    bot = make_bot(db=postgres_url, shard_count=2, shard_ids=[0])
    async with fake.run(bot):
        connection = await asyncpg.connect(postgres_url)
        try:  # the database ends the connection that holds the leases (a restart would)
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            )
        finally:
            await connection.close()
        for _ in range(100):
            if bot.is_closed():
                break
            await asyncio.sleep(0.05)
        assert bot.is_closed()
        assert bot.stop_reason == (
            f"lost the connection to {postgres_url} that holds this process's shards: "
            "the connection closed"
        )
