"""The store on both backends (real SQLite files, a real PostgreSQL): round trips,
migration, retention, shard ownership, and databases it must refuse."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from importlib.resources import files
from pathlib import Path

import asyncpg
import pytest

from bot.__main__ import main
from bot.knowledge import KnowledgeBase
from bot.sessions import Session, SessionEngine, SessionEvent
from bot.shards import Shards, shard_of
from bot.store import (
    EVENTS_KEPT_PER_SESSION,
    QUESTION_CHARS,
    TABLES,
    Pruned,
    Reminder,
    ScheduledClass,
    ServerSettings,
    SessionMessage,
    ShardsTaken,
    Store,
    StoreError,
    UserPreferences,
    default_target,
    migrations,
    sql_statements,
)
from bot.store.sqlite import SQLiteStore
from tests.conftest import FakeAsker, FakeClock
from tests.pg_cluster import ThrowawayPostgres

V1_SESSION = (
    "INSERT INTO sessions (id, place, routine_id, host_id, is_group, participant_limit, "
    "state, step_index, steps_done, started_at, step_started_at, due_at, remaining, "
    "paused_at, paused_seconds, touched_at, ended_at, pressure, event_seq) "
    "VALUES ('old', 'console', 'tiny', 'me', FALSE, 2, 'paused', 2, 2, 10.0, 20.0, NULL, "
    "42.0, 30.0, 0.0, 30.0, NULL, 0, 3)"
)
V1_PARTICIPANT = "INSERT INTO session_participants VALUES ('old', 'me', 'giver', 0, 10.0, TRUE)"


def session_fields(session: Session) -> dict[str, object]:
    return {f.name: getattr(session, f.name) for f in dataclasses.fields(session)}


def event(seq: int, kind: str = "step") -> SessionEvent:
    return SessionEvent(seq, 100.0 + seq, kind, "me", 0)


def a_group_session(kb: KnowledgeBase, session_id: str = "abc123", **begin: object) -> Session:
    session = Session.begin(
        session_id, "channel-1", kb.routines["tiny"], "host", "giver",
        group=True, participant_limit=5, now=1000.0, **begin,  # type: ignore[arg-type]
    )  # fmt: skip
    session.join("ann", "receiver", 1001.0)
    session.hand_control("host", "ann", 1002.0)
    return session


def server_on_shard(shard: int, count: int, number: int = 1) -> str:
    """A Discord server id (a snowflake) whose events arrive on `shard` of `count`."""
    server_id = str(((number * count + shard) << 22) | 12345)
    assert shard_of(server_id, count) == shard
    return server_id


def run_sql(db: str, *statements: str) -> None:
    """Run statements on the database `db` directly, past the store."""
    if db.startswith("postgresql://"):

        async def execute() -> None:
            connection = await asyncpg.connect(db)
            try:
                for statement in statements:
                    await connection.execute(statement)
            finally:
                await connection.close()

        asyncio.run(execute())
        return
    with sqlite3.connect(db) as connection:
        for statement in statements:
            connection.execute(statement)
    connection.close()


def set_schema_version(db: str, version: int) -> list[str]:
    """The statements that record `version` as the database's schema."""
    if db.startswith("postgresql://"):
        return [
            "CREATE TABLE IF NOT EXISTS massage_bot_schema (version INTEGER)",
            "DELETE FROM massage_bot_schema",
            f"INSERT INTO massage_bot_schema VALUES ({version})",
        ]
    return [f"PRAGMA user_version = {version}"]


# Round trips ---------------------------------------------------------------------------


async def test_a_new_store_is_at_the_latest_schema(store: Store) -> None:
    assert await store.schema_version() == len(migrations()) >= 5
    assert set((await store.row_counts()).values()) == {0}


async def test_an_sqlite_store_is_in_wal_mode(db_path: Path) -> None:
    async with await Store.open(db_path):
        pass
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("state", ["running", "paused", "time_up", "stopped"])
async def test_sessions_round_trip(store: Store, kb: KnowledgeBase, state: str) -> None:
    session = a_group_session(kb, server_id="4194304123")
    if state == "paused":
        session.pause(1100.0)
    elif state == "time_up":
        session.catch_up(5000.0)
    elif state == "stopped":
        session.stop(1200.0)
    session.pressure_advice(True, 1300.0)
    session.invite("bob", 1301.0)
    session.event_seq = 1
    await store.save_sessions([(session, event(1, "started"))], participants=True)
    loaded = await store.load_session(session.id, kb.routines)
    assert loaded is not None and session_fields(loaded) == session_fields(session)
    active, missing = await store.load_active_sessions(kb.routines)
    assert [s.id for s in active] == ([] if state == "stopped" else [session.id])
    assert missing == []


async def test_participants_are_only_rewritten_when_asked(store: Store, kb: KnowledgeBase) -> None:
    session = a_group_session(kb)
    await store.save_sessions([(session, event(1))], participants=True)
    session.join("bob", "giver", 1003.0)
    await store.save_sessions([(session, event(2))])
    loaded = await store.load_session(session.id, kb.routines)
    assert loaded is not None and [p.user_id for p in loaded.participants] == ["host", "ann"]
    await store.save_sessions([(session, event(3))], participants=True)
    loaded = await store.load_session(session.id, kb.routines)
    assert loaded is not None
    assert [p.user_id for p in loaded.participants] == ["host", "ann", "bob"]
    assert loaded.participants[1].in_control and loaded.participants[1].role == "receiver"


async def test_the_event_log_stays_short(store: Store, kb: KnowledgeBase) -> None:
    session = a_group_session(kb)
    for seq in range(1, EVENTS_KEPT_PER_SESSION + 21):
        await store.save_sessions([(session, event(seq))], participants=seq == 1)
    events = await store.session_events(session.id)
    assert len(events) == EVENTS_KEPT_PER_SESSION
    assert events[0].seq == 21 and events[-1] == event(EVENTS_KEPT_PER_SESSION + 20)


async def test_settings_and_preferences_round_trip(store: Store) -> None:
    assert await store.get_server_settings("guild") == ServerSettings()
    await store.set_server_settings("guild", ServerSettings(participant_limit=4))
    await store.set_server_settings("guild", ServerSettings(participant_limit=6))
    assert await store.get_server_settings("guild") == ServerSettings(participant_limit=6)

    assert await store.get_preferences("me") == UserPreferences()
    await store.set_usual_pressure("me", "lighter")
    await store.set_favourite_routine("me", "tiny")
    await store.set_usual_pressure("me", "firmer")
    assert await store.get_preferences("me") == UserPreferences("firmer", "tiny")
    await store.set_favourite_routine("me", None)
    assert await store.get_preferences("me") == UserPreferences("firmer", None)


async def test_unanswered_questions_most_asked_first(store: Store) -> None:
    await store.record_unanswered("What is reiki?", 1.0)
    await store.record_unanswered("what's on tv", 2.0)
    await store.record_unanswered("  WHAT is   Reiki? ", 3.0)
    questions = await store.unanswered_questions()
    assert [(q.question, q.times_asked) for q in questions] == [
        ("what is reiki?", 2),
        ("what's on tv", 1),
    ]
    assert (questions[0].first_asked_at, questions[0].last_asked_at) == (1.0, 3.0)
    assert len(await store.unanswered_questions(limit=1)) == 1


async def test_a_long_question_is_kept_to_the_columns_length(store: Store) -> None:
    story = "my partner has a knot near the shoulder blade " * 40  # about 1,800 characters
    await store.record_unanswered(story, 1.0, "s1")
    await store.record_unanswered(story + " and more", 2.0, "s1")  # the same first 500
    (everyone,) = await store.unanswered_questions()
    (mine,) = await store.unanswered_questions(server_id="s1")
    assert everyone.question == mine.question == " ".join(story.split())[:QUESTION_CHARS]
    assert everyone.times_asked == mine.times_asked == 2


# Migrations and refusals ---------------------------------------------------------------


async def test_an_older_database_is_migrated_in_place(db: str, kb: KnowledgeBase) -> None:
    version_1 = (files("bot.migrations") / "001_initial.sql").read_text(encoding="utf-8")
    await asyncio.to_thread(
        run_sql, db, *sql_statements(version_1), *set_schema_version(db, 1), V1_SESSION,
        V1_PARTICIPANT,
    )  # fmt: skip
    async with await Store.open(db) as store:
        assert await store.schema_version() == len(migrations())
        (restored,), _ = await store.load_active_sessions(kb.routines)
        assert (restored.id, restored.step_index, restored.remaining) == ("old", 2, 42.0)
        assert restored.participants[0].in_control and restored.server_id is None
        await store.set_usual_pressure("me", "firmer")  # a table version 2 added
        assert (await store.get_preferences("me")).usual_pressure == "firmer"
        assert [s["id"] for s in (await store.personal_data("me"))["sessions"]] == ["old"]
        assert (await store.row_counts())["session_attendance"] == 1  # filled by version 9


async def test_a_failed_migration_leaves_the_database_as_it_was(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Store.open(db) as store:
        await store.record_unanswered("kept", 1.0)
    broken = [*migrations(), (len(migrations()) + 1, "CREATE TABLE fine (x INTEGER);\nNOT SQL;")]
    backend = "postgres" if db.startswith("postgresql://") else "sqlite"
    monkeypatch.setattr(f"bot.store.{backend}.migrations", lambda: broken)
    with pytest.raises(StoreError, match="syntax error") as raised:
        await Store.open(db)
    assert "\n" not in str(raised.value)
    monkeypatch.undo()
    async with await Store.open(db) as store:
        assert await store.schema_version() == len(migrations())
        assert [q.question for q in await store.unanswered_questions()] == ["kept"]
        with pytest.raises(StoreError):  # the table of the failed migration is not there
            await store._rows("SELECT x FROM fine")


async def test_a_failed_write_is_rolled_back_and_reported(store: Store, kb: KnowledgeBase) -> None:
    session = a_group_session(kb)
    await store.save_sessions([(session, event(1))], participants=True)
    session.next_step(1100.0)
    with pytest.raises(StoreError, match="could not save") as raised:  # the same event twice
        await store.save_sessions([(session, event(2)), (session, event(2))])
    assert "\n" not in str(raised.value)
    loaded = await store.load_session(session.id, kb.routines)
    assert loaded is not None and loaded.step_index == 0
    assert [e.seq for e in await store.session_events(session.id)] == [1]


async def test_a_database_from_a_newer_bot_is_refused(db: str) -> None:
    async with await Store.open(db) as store:
        await store.record_unanswered("kept", 1.0)
    await asyncio.to_thread(run_sql, db, *set_schema_version(db, 99))
    with pytest.raises(StoreError, match="newer massage-bot") as raised:
        await Store.open(db)
    assert str(raised.value).endswith(f"(schema 99; this one knows up to {len(migrations())})")
    assert "\n" not in str(raised.value) and raised.value.__cause__ is None


async def test_another_programs_database_is_refused(db: str) -> None:
    await asyncio.to_thread(run_sql, db, "CREATE TABLE recipes (name TEXT)")
    with pytest.raises(StoreError, match="database of another program") as raised:
        await Store.open(db)
    assert "\n" not in str(raised.value)


def unchanged_after_refusal(path: Path, match: str) -> None:
    """Opening `path` fails with a one-line StoreError and leaves its bytes untouched."""
    before = path.read_bytes()
    with pytest.raises(StoreError, match=match) as raised:
        asyncio.run(Store.open(path, lock_timeout=0.1))
    assert "\n" not in str(raised.value) and raised.value.__cause__ is None
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite3"
    path.write_text("shopping list: oil, towels\n" * 100)
    unchanged_after_refusal(path, "not a massage-bot store")


def test_another_programs_file_is_left_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE recipes (name TEXT)")
    connection.close()
    unchanged_after_refusal(path, "database of another program")


def test_a_file_from_a_newer_bot_is_left_as_it_was(db_path: Path) -> None:
    with sqlite3.connect(db_path) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    unchanged_after_refusal(db_path, "newer massage-bot")


def test_a_read_only_file_is_refused(db_path: Path) -> None:
    sqlite3.connect(db_path).close()
    db_path.write_bytes(b"")
    db_path.chmod(0o444)
    unchanged_after_refusal(db_path, "read-only")


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        asyncio.run(Store.open(tmp_path))


async def test_a_store_in_use_by_another_process_is_refused(db_path: Path) -> None:
    async with await Store.open(db_path):
        with pytest.raises(StoreError, match="in use by another program"):
            await Store.open(db_path, lock_timeout=0.1)


async def test_a_store_locked_by_another_program_is_refused(db_path: Path) -> None:
    async with await Store.open(db_path):
        pass
    other = sqlite3.connect(db_path)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="in use"):
            await Store.open(db_path, lock_timeout=0.1)
    finally:
        other.rollback()
        other.close()


# Where the store is: a path, or a URL (never taken for a path) ---------------------------


async def test_the_default_path_and_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MASSAGE_BOT_DB", raising=False)
    assert default_target() == "data/massage-bot.sqlite3"
    async with await Store.open() as store:
        assert store.name == "data/massage-bot.sqlite3"
        assert (tmp_path / "data" / "massage-bot.sqlite3").is_file()
    monkeypatch.setenv("MASSAGE_BOT_DB", str(tmp_path / "elsewhere" / "bot.db"))
    async with await Store.open() as store:
        assert store.name == str(tmp_path / "elsewhere" / "bot.db")
        assert (tmp_path / "elsewhere" / "bot.db").is_file()
    monkeypatch.setenv("MASSAGE_BOT_DB", postgres_url)
    async with await Store.open() as store:
        assert store.name == postgres_url
        assert await store.schema_version() == len(migrations())


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "PostgreSQL"])
async def test_a_url_is_never_taken_for_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int, scheme: str
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"{scheme}://postgres:s3cret@127.0.0.1:{unused_tcp_port}/postgres"
    with pytest.raises(StoreError) as raised:
        await Store.open(url)
    assert str(raised.value) == (
        f"cannot reach PostgreSQL at {scheme.lower()}://postgres:***@127.0.0.1:{unused_tcp_port}/postgres"
        f" (Connect call failed ('127.0.0.1', {unused_tcp_port}))"
    )
    assert list(tmp_path.iterdir()) == []  # no folder named "postgresql:", no file


async def test_an_unknown_scheme_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StoreError) as raised:
        await Store.open("mysql://root:pw@127.0.0.1/bot")
    assert str(raised.value) == (
        "mysql://root:***@127.0.0.1/bot: unknown database scheme 'mysql'; "
        "give a file path (SQLite) or a postgresql:// URL"
    )
    assert list(tmp_path.iterdir()) == []


async def test_a_missing_postgresql_database_is_one_clear_line(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match='database "no_such_database" does not exist') as raised:
        await Store.open(missing)
    assert "\n" not in str(raised.value)


def test_sql_scripts_split_into_statements() -> None:
    script = "-- a comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE INDEX i\n  ON a (x);\n"
    assert sql_statements(script) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i\n  ON a (x);",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        sql_statements("CREATE TABLE b (x TEXT)")


# Retention -----------------------------------------------------------------------------


async def test_old_ended_sessions_and_questions_are_pruned(
    store: Store, kb: KnowledgeBase
) -> None:
    old, recent, running = (a_group_session(kb, name) for name in ("old", "recent", "running"))
    old.stop(2000.0)
    recent.stop(9000.0)
    for seq, session in enumerate((old, recent, running), start=1):
        await store.save_sessions([(session, event(seq))], participants=True)
        await store.set_session_message(session.id, "c", f"m-{session.id}", 1)
    await store.record_unanswered("asked long ago", 1000.0, "s1")
    await store.record_unanswered("asked lately", 9500.0, "s1")

    assert await store.prune(before=5000.0) == Pruned(sessions=1, questions=1)
    assert await store.load_session("old", kb.routines) is None
    assert await store.session_events("old") == [] and await store.session_message("old") is None
    for kept in ("recent", "running"):
        assert await store.load_session(kept, kb.routines) is not None
        assert await store.session_message(kept) is not None
    assert [q.question for q in await store.unanswered_questions()] == ["asked lately"]
    assert [q.question for q in await store.unanswered_questions(server_id="s1")] == [
        "asked lately"
    ]
    assert await store.prune(before=5000.0) == Pruned(sessions=0, questions=0)
    counts = await store.row_counts()
    assert (counts["sessions"], counts["session_participants"]) == (2, 4)


# Shard ownership -----------------------------------------------------------------------


async def test_a_process_loads_only_the_sessions_of_its_shards(
    store: Store, kb: KnowledgeBase
) -> None:
    servers = {shard: server_on_shard(shard, 3) for shard in range(3)}
    sessions = [a_group_session(kb, f"on-{shard}", server_id=server)
                for shard, server in servers.items()]  # fmt: skip
    sessions.append(a_group_session(kb, "in-a-dm"))  # no server: shard 0
    for seq, session in enumerate(sessions, start=1):
        session.event_seq = 2
        await store.save_sessions([(session, event(seq))], participants=True)
        await store.set_session_message(session.id, "c", f"m-{session.id}", 1)

    async def owned(shards: Shards) -> tuple[set[str], set[str]]:
        active, _ = await store.load_active_sessions(kb.routines, shards)
        stale = await store.stale_session_messages(shards)
        return {s.id for s in active}, {m.session_id for m in stale}

    assert await owned(Shards.of(3, (0,))) == ({"on-0", "in-a-dm"},) * 2
    assert await owned(Shards.of(3, (1, 2))) == ({"on-1", "on-2"},) * 2
    everything = {s.id for s in sessions}
    assert await owned(Shards.of(3)) == (everything, everything)
    assert await owned(Shards.of(1)) == (everything, everything)  # the count changed: all kept
    assert await store.stale_session_messages() == [
        SessionMessage(s.id, "c", f"m-{s.id}", 1) for s in sessions
    ]


# Shard leases and reloads, between processes on one PostgreSQL --------------------------


async def test_a_shard_is_run_by_one_process_at_a_time(postgres_url: str) -> None:
    async with await Store.open(postgres_url) as first, await Store.open(postgres_url) as second:
        await first.take_shards(Shards.of(4, (0, 1)))
        with pytest.raises(ShardsTaken) as raised:
            await second.take_shards(Shards.of(4, (1, 2)))
        assert str(raised.value).startswith("shard 1 of 4 is already run by another massage-bot "
                                            "(massage-bot on ")  # fmt: skip
        assert str(raised.value).endswith("); stop it first") and "\n" not in str(raised.value)
        await second.take_shards(Shards.of(4, (2, 3)))  # the refusal kept none of 1 and 2
    async with await Store.open(postgres_url) as replacement:  # the holders have gone
        await replacement.take_shards(Shards.of(4, (0, 1, 2, 3)))


async def test_a_new_shard_count_waits_until_every_process_of_the_old_one_stops(
    postgres_url: str,
) -> None:
    async with await Store.open(postgres_url) as old, await Store.open(postgres_url) as new:
        await old.take_shards(Shards.of(2, (1,)))
        with pytest.raises(ShardsTaken) as raised:
            await new.take_shards(Shards.of(3, (0,)))
        assert str(raised.value) == (
            f"massage-bot processes with --shard-count 2 run on {postgres_url}; "
            "stop them all before running 3 shards"
        )
    async with await Store.open(postgres_url) as new:
        await new.take_shards(Shards.of(3, (0,)))


async def test_losing_the_lease_connection_is_told(postgres_url: str) -> None:
    lost: list[str] = []
    async with await Store.open(postgres_url) as store:
        await store.take_shards(Shards.of(2, (0,)), lost.append)
        await store._rows(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE pid <> pg_backend_pid() AND datname = current_database() "
            "AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"
        )
        for _ in range(100):
            if lost:
                break
            await asyncio.sleep(0.05)
        assert lost == [
            f"lost the connection to {postgres_url} that holds this process's shards: "
            "the connection closed"
        ]
        async with await Store.open(postgres_url) as replacement:
            await replacement.take_shards(Shards.of(2, (0,)))


async def test_a_notice_announced_by_one_process_reaches_the_others(postgres_url: str) -> None:
    heard: dict[str, list[str]] = {name: [] for name in ("a", "b", "c")}
    async with (
        await Store.open(postgres_url) as a,
        await Store.open(postgres_url) as b,
        await Store.open(postgres_url) as c,
    ):
        for name, store in (("a", a), ("b", b), ("c", c)):
            await store.listen(heard[name].append)
        await a.announce("reload")
        await a.announce("forget 1234")
        for _ in range(100):
            if len(heard["b"]) == len(heard["c"]) == 2:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        assert heard == {"a": [], "b": ["reload", "forget 1234"], "c": ["reload", "forget 1234"]}


# Moving house: massage-bot db copy FROM TO ----------------------------------------------


async def fill(store: Store, kb: KnowledgeBase, clock: FakeClock) -> None:
    """A store as a bot leaves it: sessions running and ended, with people, events and
    messages; settings, preferences, questions and answer channels."""
    engine = SessionEngine(kb, store, FakeAsker(), clock)
    group = (await engine.start("c1", "host", "tiny", group=True, server_id="4194304")).session
    assert group is not None
    await engine.join(group.id, "ann")
    personal = (await engine.start("c2", "me", "tiny", partner="you")).session
    assert personal is not None
    await engine.answer_invitation(personal.id, "you", accept=True)
    await engine.more_pressure(personal.id, "you")
    await engine.stop(personal.id, "me")
    await store.set_session_message(group.id, "c1", "m1", 2)
    await store.set_server_settings("4194304", ServerSettings(participant_limit=7))
    await store.set_favourite_routine("me", "tiny")
    await store.set_answer_channel("4194304", "c1", True)
    await store.record_unanswered("what is reiki?", clock(), "4194304")
    await store.set_step_alerts("ann", True)
    await store.add_class(ScheduledClass("k1", "4194304", "c1", "host", "tiny", clock() + 3600,
                                         "e1", "scheduled", None, clock(), "v1"))  # fmt: skip
    await store.set_voice_guide(group.id, "4194304", "v1")
    await store.claim_step_alert(group.id, "ann", 1)
    await store.add_reminder(Reminder("r1", "me", None, None, 0, "20:00", "Europe/Berlin",
                                      clock() + 600, clock()))  # fmt: skip


async def snapshot(store: Store, kb: KnowledgeBase) -> dict[str, object]:
    """Everything a store holds, as the store reads it back."""
    session_ids = [row[0] for row in await store._rows("SELECT id FROM sessions ORDER BY id")]
    sessions = {}
    for session_id in session_ids:
        session = await store.load_session(session_id, kb.routines)
        assert session is not None
        sessions[session_id] = (session_fields(session), await store.session_events(session_id),
                                await store.session_message(session_id))  # fmt: skip
    return {
        "counts": await store.row_counts(),
        "sessions": sessions,
        "settings": await store.get_server_settings("4194304"),
        "preferences": [await store.get_preferences(user) for user in ("me", "you")],
        "questions": await store.unanswered_questions(),
        "server questions": await store.unanswered_questions(server_id="4194304"),
        "answer channels": await store.answer_channels("4194304"),
        "alerts": await store.step_alert_people(["ann", "me"]),
        "classes": await store.classes(server_id="4194304"),
        "reminders": await store.reminders_of("me"),
        "voice guides": await store.voice_guides(),
    }


def run_cli(*arguments: str) -> int:
    return main(list(arguments))


@pytest.mark.parametrize("direction", ["sqlite to postgresql", "postgresql to sqlite"])
async def test_db_copy_moves_everything(
    db_path: Path,
    postgres_url: str,
    kb: KnowledgeBase,
    clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
    direction: str,
) -> None:
    source, target = (str(db_path), postgres_url)
    if direction.startswith("postgresql"):
        source, target = target, source
    async with await Store.open(source) as store:
        await fill(store, kb, clock)
        expected = await snapshot(store, kb)
    assert all(expected["counts"].values())  # type: ignore[attr-defined]
    assert await asyncio.to_thread(run_cli, "db", "copy", source, target) == 0
    counts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in expected["counts"].items())  # type: ignore[attr-defined]
    assert capsys.readouterr().out == f"copied {source} to {target}: {counts}\n"
    async with await Store.open(target) as store:
        assert await snapshot(store, kb) == expected

    assert await asyncio.to_thread(run_cli, "db", "copy", source, target) == 2
    assert capsys.readouterr().err == (
        f"massage-bot: {target} already holds data; copy into an empty database\n"
    )


async def test_db_copy_refuses_a_newer_target_and_cuts_long_questions(
    db_path: Path,
    postgres: ThrowawayPostgres,
    postgres_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with await Store.open(db_path) as store:
        await store.record_unanswered("what is reiki?", 5.0, "s1")
    long = "x" * 600  # an older bot kept questions up to 2,000 characters
    await asyncio.to_thread(
        run_sql, str(db_path),
        f"INSERT INTO unanswered_questions VALUES ('{long}', 2, 1.0, 2.0)",
        f"INSERT INTO unanswered_questions VALUES ('{long}y', 3, 0.5, 3.0)",
    )  # fmt: skip
    newer = postgres.create_database()
    await asyncio.to_thread(run_sql, newer, *set_schema_version(newer, 99))
    assert await asyncio.to_thread(run_cli, "db", "copy", str(db_path), newer) == 2
    assert "newer massage-bot" in capsys.readouterr().err

    assert await asyncio.to_thread(run_cli, "db", "copy", str(db_path), postgres_url) == 0
    async with await Store.open(postgres_url) as store:
        questions = await store.unanswered_questions()
    assert [(q.question, q.times_asked, q.first_asked_at, q.last_asked_at) for q in questions] == [
        ("x" * QUESTION_CHARS, 5, 0.5, 3.0), ("what is reiki?", 1, 5.0, 5.0)
    ]


async def test_every_table_is_copied(store: Store) -> None:
    if isinstance(store, SQLiteStore):
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = "
               "current_schema() AND table_name <> 'massage_bot_schema'")  # fmt: skip
    assert {row[0] for row in await store._rows(sql)} == set(TABLES)
