"""The store on real SQLite files: round trips, migration, and files it must refuse."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from importlib.resources import files
from pathlib import Path

import pytest

from bot.knowledge import KnowledgeBase
from bot.sessions import Session, SessionEvent
from bot.store import (
    EVENTS_KEPT_PER_SESSION,
    ServerSettings,
    Store,
    StoreError,
    UserPreferences,
    default_db_path,
    migrations,
    sql_statements,
)


def session_fields(session: Session) -> dict[str, object]:
    return {f.name: getattr(session, f.name) for f in dataclasses.fields(session)}


def event(seq: int, kind: str = "step") -> SessionEvent:
    return SessionEvent(seq, 100.0 + seq, kind, "me", 0)


def a_group_session(kb: KnowledgeBase) -> Session:
    session = Session.begin(
        "abc123", "channel-1", kb.routines["tiny"], "host", "giver",
        group=True, participant_limit=5, now=1000.0,
    )  # fmt: skip
    session.join("ann", "receiver", 1001.0)
    session.hand_control("host", "ann", 1002.0)
    return session


async def test_a_new_store_is_at_the_latest_schema_in_wal_mode(db_path: Path) -> None:
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == len(migrations()) >= 2
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("state", ["running", "paused", "time_up", "stopped"])
async def test_sessions_round_trip(store: Store, kb: KnowledgeBase, state: str) -> None:
    session = a_group_session(kb)
    if state == "paused":
        session.pause(1100.0)
    elif state == "time_up":
        session.catch_up(5000.0)
    elif state == "stopped":
        session.stop(1200.0)
    session.pressure_advice(True, 1300.0)
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
    assert [p.user_id for p in loaded.participants] == ["host", "ann"]
    await store.save_sessions([(session, event(3))], participants=True)
    loaded = await store.load_session(session.id, kb.routines)
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


async def test_an_older_file_is_migrated_in_place(db_path: Path, kb: KnowledgeBase) -> None:
    version_1 = (files("bot.migrations") / "001_initial.sql").read_text(encoding="utf-8")
    with sqlite3.connect(db_path) as connection:
        connection.executescript(version_1)
        connection.execute("PRAGMA user_version = 1")
        connection.execute(
            "INSERT INTO sessions (id, place, routine_id, host_id, is_group, participant_limit, "
            "state, step_index, steps_done, started_at, step_started_at, due_at, remaining, "
            "paused_at, paused_seconds, touched_at, ended_at, pressure, event_seq) "
            "VALUES ('old', 'console', 'tiny', 'me', 0, 2, 'paused', 2, 2, 10.0, 20.0, NULL, "
            "42.0, 30.0, 0.0, 30.0, NULL, 0, 3)"
        )
        connection.execute(
            "INSERT INTO session_participants VALUES ('old', 'me', 'giver', 0, 10.0, 1)"
        )
    connection.close()
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == len(migrations())
        (restored,), _ = await store.load_active_sessions(kb.routines)
        assert (restored.id, restored.step_index, restored.remaining) == ("old", 2, 42.0)
        await store.set_usual_pressure("me", "firmer")  # a table version 2 added
        assert (await store.get_preferences("me")).usual_pressure == "firmer"


async def test_a_failed_migration_leaves_the_file_as_it_was(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await Store.open(db_path) as store:
        await store.record_unanswered("kept", 1.0)
    broken = [*migrations(), (len(migrations()) + 1, "CREATE TABLE fine (x INTEGER);\nNOT SQL;")]
    monkeypatch.setattr("bot.store.migrations", lambda: broken)
    with pytest.raises(StoreError, match="syntax error"):
        await Store.open(db_path)
    monkeypatch.undo()
    async with await Store.open(db_path) as store:
        assert await store.schema_version() == len(migrations())
        assert [q.question for q in await store.unanswered_questions()] == ["kept"]
    with sqlite3.connect(db_path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "fine" not in tables


async def test_a_failed_write_is_rolled_back_and_reported(store: Store, kb: KnowledgeBase) -> None:
    session = a_group_session(kb)
    await store.save_sessions([(session, event(1))], participants=True)
    session.next_step(1100.0)
    with pytest.raises(StoreError, match="could not save"):  # the same event twice
        await store.save_sessions([(session, event(2)), (session, event(2))])
    loaded = await store.load_session(session.id, kb.routines)
    assert loaded is not None and loaded.step_index == 0
    assert [e.seq for e in await store.session_events(session.id)] == [1]


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


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE recipes (name TEXT)")
    connection.close()
    unchanged_after_refusal(path, "database of another program")


def test_a_file_from_a_newer_bot_is_refused(db_path: Path) -> None:
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


async def test_the_default_path_and_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MASSAGE_BOT_DB", raising=False)
    assert default_db_path() == Path("data/massage-bot.sqlite3")
    async with await Store.open():
        assert (tmp_path / "data" / "massage-bot.sqlite3").is_file()
    monkeypatch.setenv("MASSAGE_BOT_DB", str(tmp_path / "elsewhere" / "bot.db"))
    async with await Store.open() as store:
        assert store.path == tmp_path / "elsewhere" / "bot.db"
        assert store.path.is_file()


def test_sql_scripts_split_into_statements() -> None:
    script = "-- a comment\nCREATE TABLE a (x TEXT DEFAULT ';');\n\nCREATE INDEX i\n  ON a (x);\n"
    assert sql_statements(script) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "CREATE INDEX i\n  ON a (x);",
    ]
    with pytest.raises(ValueError, match="incomplete"):
        sql_statements("CREATE TABLE b (x TEXT)")
