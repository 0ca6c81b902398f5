"""The embedded store: sessions, settings, preferences and unanswered questions in SQLite.

One `Store` per process owns its file (SQLite's exclusive locking mode, in WAL), so a
second bot on the same file gets a clear error instead of fighting over sessions.
Commits use ``synchronous=NORMAL``: a change is in the file once its method returns and
survives the process being killed at any moment (an OS crash may lose the last ones).

The schema lives in ``bot/migrations/NNN_name.sql``, applied in order in one transaction
and recorded in ``PRAGMA user_version``, so an older file opens with a newer bot. The
SQL stays portable (standard types, ``ON CONFLICT`` upserts) for a PostgreSQL store
behind the same methods; only the connection's pragmas are SQLite's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from bot.knowledge import Routine
from bot.reply import MAX_QUESTION_CHARS
from bot.sessions import (
    ACTIVE_STATES,
    DEFAULT_GROUP_PARTICIPANT_LIMIT,
    Participant,
    Session,
    SessionEvent,
    StoreError,
    UsualPressure,
)

DEFAULT_DB_PATH = Path("data/massage-bot.sqlite3")
DB_PATH_VARIABLE = "MASSAGE_BOT_DB"
EVENTS_KEPT_PER_SESSION = 50
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")

_SESSION_COLUMNS = (
    "id", "place", "routine_id", "host_id", "is_group", "participant_limit", "state",
    "step_index", "steps_done", "started_at", "step_started_at", "due_at", "remaining",
    "paused_at", "paused_seconds", "touched_at", "ended_at", "pressure", "event_seq",
    "server_id", "invited_id", "invite_expires_at", "clock_scale",
)  # fmt: skip
_ACTIVE = ", ".join(f"'{state}'" for state in sorted(ACTIVE_STATES))
_SAVE_SESSION = (
    f"INSERT INTO sessions ({', '.join(_SESSION_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _SESSION_COLUMNS)}) "
    "ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _SESSION_COLUMNS[1:])
)
_SELECT_SESSIONS = f"SELECT {', '.join(_SESSION_COLUMNS)} FROM sessions"
_PARTICIPANT_COLUMNS = "session_id, user_id, role, join_order, joined_at, in_control"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    participant_limit: int = DEFAULT_GROUP_PARTICIPANT_LIMIT


@dataclass(frozen=True, slots=True)
class UserPreferences:
    usual_pressure: UsualPressure | None = None
    favourite_routine: str | None = None


@dataclass(frozen=True, slots=True)
class SessionMessage:
    """The Discord message showing a session, and the version of the session it shows."""

    session_id: str
    channel_id: str
    message_id: str
    shown_version: int


@dataclass(frozen=True, slots=True)
class UnansweredQuestion:
    question: str
    times_asked: int
    first_asked_at: float
    last_asked_at: float


def default_db_path() -> Path:
    """``$MASSAGE_BOT_DB`` if set, else ``data/massage-bot.sqlite3``."""
    return Path(os.environ.get(DB_PATH_VARIABLE) or DEFAULT_DB_PATH)


def migrations() -> list[tuple[int, str]]:
    """Every schema version with its SQL, in order."""
    found = []
    for resource in files("bot.migrations").iterdir():
        match = _MIGRATION_NAME.match(resource.name)
        if match:
            found.append((int(match.group(1)), resource.read_text(encoding="utf-8")))
    found.sort()
    if [version for version, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("bot/migrations must be numbered 001, 002, ... without gaps")
    return found


def sql_statements(script: str) -> list[str]:
    """Split an SQL script into its statements (comments and blank lines dropped)."""
    statements, pending = [], ""
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending.strip()[:60]}")
    return statements


def normalize_question(question: str) -> str:
    return " ".join(question.lower().split())[:MAX_QUESTION_CHARS]


class Store:
    """All persistent state, behind async methods. Open it with `Store.open`."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._writing = asyncio.Lock()  # one transaction at a time on the connection

    @classmethod
    async def open(cls, path: Path | str | None = None, *, lock_timeout: float = 1.0) -> Store:
        """Open (creating and migrating as needed) the store file.

        Raises `StoreError` with a one-line reason when the file is not a database, a
        database of something else or of a newer bot, locked, or read-only; such a file
        is left exactly as it was.
        """
        path = Path(path) if path is not None else default_db_path()
        _check_writable(path)
        try:  # first in this thread: a failed open leaves no worker thread behind
            sqlite3.connect(path, timeout=lock_timeout).close()
            connection = await aiosqlite.connect(path, timeout=lock_timeout, isolation_level=None)
        except sqlite3.Error as error:
            raise StoreError(_explain(path, error)) from None
        store = cls(connection, path)
        try:
            await store._prepare()
        except BaseException as error:
            await connection.close()
            if isinstance(error, sqlite3.Error):
                raise StoreError(_explain(path, error)) from None
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _prepare(self) -> None:
        await self._db.execute("PRAGMA locking_mode = EXCLUSIVE")
        await self._check_is_ours()  # before anything writes to the file
        journal = await self._value("PRAGMA journal_mode = WAL")
        if str(journal).lower() != "wal":
            raise StoreError(f"{self.path}: cannot use write-ahead logging here ({journal})")
        await self._db.execute("PRAGMA synchronous = NORMAL")
        await self._db.execute("PRAGMA foreign_keys = ON")
        await self._db.execute("BEGIN IMMEDIATE")  # takes the file for this process
        try:
            await self._migrate()
            await self._db.execute("COMMIT")
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise

    async def _check_is_ours(self) -> None:
        """Refuse another program's database, or one from a newer massage-bot."""
        version, known = await self.schema_version(), len(migrations())
        if version > known:
            raise StoreError(
                f"{self.path} was written by a newer massage-bot "
                f"(schema {version}; this one knows up to {known})"
            )
        if version == 0 and await self._value("SELECT COUNT(*) FROM sqlite_master"):
            raise StoreError(f"{self.path} is an SQLite database of another program")

    async def _migrate(self) -> None:
        version = await self.schema_version()
        for number, script in migrations()[version:]:
            for statement in sql_statements(script):
                await self._db.execute(statement)
            await self._db.execute(f"PRAGMA user_version = {number}")

    async def schema_version(self) -> int:
        return int(await self._value("PRAGMA user_version"))

    async def _value(self, sql: str, parameters: Iterable[Any] = ()) -> Any:
        rows = await self._rows(sql, tuple(parameters))
        return rows[0][0] if rows else None

    async def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of a query; a damaged or unreadable file is a `StoreError`."""
        try:
            return list(await self._db.execute_fetchall(sql, parameters))
        except sqlite3.Error as error:
            raise StoreError(_explain(self.path, error)) from None

    async def _transaction(self, statements: list[tuple[str, Any]]) -> None:
        """Run (sql, parameters) pairs in one transaction; a list of tuples is executemany.

        A failed write (disk full, I/O error) is rolled back and raised as `StoreError`.
        Callers may overlap (the engine, the Discord cogs): transactions take turns.
        """
        async with self._writing:
            try:
                await self._db.execute("BEGIN")
                try:
                    for sql, parameters in statements:
                        if isinstance(parameters, list):
                            await self._db.executemany(sql, parameters)
                        else:
                            await self._db.execute(sql, parameters)
                    await self._db.execute("COMMIT")
                except BaseException:
                    await self._roll_back()
                    raise
            except sqlite3.Error as error:
                raise StoreError(f"could not save to {self.path}: {_reason(error)}") from None

    async def _roll_back(self) -> None:
        """Undo the open transaction, if SQLite has not already (it has, on a full disk)."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await self._db.execute("ROLLBACK")

    # Sessions -----------------------------------------------------------------------

    async def save_sessions(
        self, changes: Sequence[tuple[Session, SessionEvent]], *, participants: bool = False
    ) -> None:
        """Write sessions, each with one event-log line, in one transaction.

        `participants` rewrites who is in each session too (after a start, join or leave).
        """
        sessions = [session for session, _ in changes]
        statements: list[tuple[str, Any]] = [(_SAVE_SESSION, [_session_row(s) for s in sessions])]
        if participants:
            statements += [
                (
                    "DELETE FROM session_participants WHERE session_id = ?",
                    [(session.id,) for session in sessions],
                ),
                (
                    f"INSERT INTO session_participants ({_PARTICIPANT_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (s.id, p.user_id, p.role, p.join_order, p.joined_at, p.in_control)
                        for s in sessions
                        for p in s.participants
                    ],
                ),
            ]
        statements.append(
            (
                "INSERT INTO session_events (session_id, seq, at, kind, user_id, step_index) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(s.id, e.seq, e.at, e.kind, e.user_id, e.step_index) for s, e in changes],
            )
        )
        old_events = [
            (s.id, e.seq - EVENTS_KEPT_PER_SESSION)
            for s, e in changes
            if e.seq > EVENTS_KEPT_PER_SESSION
        ]
        if old_events:
            statements.append(
                ("DELETE FROM session_events WHERE session_id = ? AND seq <= ?", old_events)
            )
        await self._transaction(statements)

    async def load_active_sessions(
        self, routines: Mapping[str, Routine]
    ) -> tuple[list[Session], list[str]]:
        """Every active session whose routine exists, and the ids of those whose does not."""
        rows = await self._rows(f"{_SELECT_SESSIONS} WHERE state IN ({_ACTIVE})")
        participants = await self._participants(
            f"SELECT session_id FROM sessions WHERE state IN ({_ACTIVE})", ()
        )
        sessions, missing = [], []
        for row in rows:
            routine = routines.get(row[2])
            if routine is None:
                missing.append(row[0])
            else:
                sessions.append(_session_from_row(row, routine, participants.get(row[0], [])))
        return sessions, missing

    async def load_session(
        self, session_id: str, routines: Mapping[str, Routine]
    ) -> Session | None:
        """One session, active or ended, if it exists and its routine still does."""
        rows = list(
            await self._rows(f"{_SELECT_SESSIONS} WHERE id = ?", (session_id,))
        )
        if not rows or rows[0][2] not in routines:
            return None
        participants = await self._participants("?", (session_id,))
        return _session_from_row(rows[0], routines[rows[0][2]], participants.get(session_id, []))

    async def _participants(
        self, session_ids_sql: str, parameters: tuple[Any, ...]
    ) -> dict[str, list[Participant]]:
        rows = await self._rows(
            f"SELECT {_PARTICIPANT_COLUMNS} FROM session_participants "
            f"WHERE session_id IN ({session_ids_sql}) ORDER BY session_id, join_order",
            parameters,
        )
        by_session: dict[str, list[Participant]] = {}
        for session_id, user_id, role, join_order, joined_at, in_control in rows:
            by_session.setdefault(session_id, []).append(
                Participant(user_id, role, join_order, joined_at, bool(in_control))
            )
        return by_session

    async def end_session_without_routine(self, session_id: str, at: float) -> None:
        """Stop a session whose routine is no longer in the knowledge base."""
        await self._transaction(
            [
                (
                    "UPDATE sessions SET state = 'stopped', ended_at = ?, due_at = NULL, "
                    "remaining = NULL, paused_at = NULL WHERE id = ?",
                    (at, session_id),
                )
            ]
        )

    async def session_events(self, session_id: str) -> list[SessionEvent]:
        """The session's event log, oldest first (at most the last 50 lines)."""
        rows = await self._rows(
            "SELECT seq, at, kind, user_id, step_index FROM session_events "
            "WHERE session_id = ? ORDER BY seq",
            (session_id,),
        )
        return [SessionEvent(*row) for row in rows]

    # Servers and people -------------------------------------------------------------

    async def get_server_settings(self, server_id: str) -> ServerSettings:
        limit = await self._value(
            "SELECT participant_limit FROM server_settings WHERE server_id = ?", (server_id,)
        )
        return ServerSettings() if limit is None else ServerSettings(participant_limit=limit)

    async def set_server_settings(self, server_id: str, settings: ServerSettings) -> None:
        await self._transaction(
            [
                (
                    "INSERT INTO server_settings (server_id, participant_limit) VALUES (?, ?) "
                    "ON CONFLICT (server_id) DO UPDATE SET "
                    "participant_limit = excluded.participant_limit",
                    (server_id, settings.participant_limit),
                )
            ]
        )

    async def get_preferences(self, user_id: str) -> UserPreferences:
        rows = list(
            await self._rows(
                "SELECT usual_pressure, favourite_routine FROM user_preferences WHERE user_id = ?",
                (user_id,),
            )
        )
        return UserPreferences(*rows[0]) if rows else UserPreferences()

    async def set_usual_pressure(self, user_id: str, pressure: UsualPressure | None) -> None:
        await self._set_preference(user_id, "usual_pressure", pressure)

    async def set_favourite_routine(self, user_id: str, routine_id: str | None) -> None:
        await self._set_preference(user_id, "favourite_routine", routine_id)

    async def _set_preference(self, user_id: str, column: str, value: str | None) -> None:
        await self._transaction(
            [
                (
                    f"INSERT INTO user_preferences (user_id, {column}) VALUES (?, ?) "
                    f"ON CONFLICT (user_id) DO UPDATE SET {column} = excluded.{column}",
                    (user_id, value),
                )
            ]
        )

    # Questions for the curators -----------------------------------------------------

    async def record_unanswered(
        self, question: str, at: float, server_id: str | None = None
    ) -> None:
        """Count a question the bot could not answer (by its lower-cased, spaced text),
        for everyone and, when asked in a server, for that server's curators too."""
        text = normalize_question(question)
        statements: list[tuple[str, Any]] = [
            (
                "INSERT INTO unanswered_questions "
                "(question, times_asked, first_asked_at, last_asked_at) VALUES (?, 1, ?, ?) "
                "ON CONFLICT (question) DO UPDATE SET "
                "times_asked = unanswered_questions.times_asked + 1, "
                "last_asked_at = excluded.last_asked_at",
                (text, at, at),
            )
        ]
        if server_id is not None:
            statements.append(
                (
                    "INSERT INTO server_unanswered_questions "
                    "(server_id, question, times_asked, first_asked_at, last_asked_at) "
                    "VALUES (?, ?, 1, ?, ?) ON CONFLICT (server_id, question) DO UPDATE SET "
                    "times_asked = server_unanswered_questions.times_asked + 1, "
                    "last_asked_at = excluded.last_asked_at",
                    (server_id, text, at, at),
                )
            )
        await self._transaction(statements)

    async def unanswered_questions(
        self, limit: int = 50, server_id: str | None = None
    ) -> list[UnansweredQuestion]:
        """The most often asked unanswered questions first: everyone's, or one server's."""
        columns = "question, times_asked, first_asked_at, last_asked_at"
        order = "ORDER BY times_asked DESC, last_asked_at DESC LIMIT ?"
        if server_id is None:
            sql, parameters = f"SELECT {columns} FROM unanswered_questions {order}", (limit,)
        else:
            sql = f"SELECT {columns} FROM server_unanswered_questions WHERE server_id = ? {order}"
            parameters = (server_id, limit)
        rows = await self._rows(sql, parameters)
        return [UnansweredQuestion(*row) for row in rows]

    # Discord: live session messages and answer channels -----------------------------

    async def set_session_message(
        self, session_id: str, channel_id: str, message_id: str, shown_version: int = 0
    ) -> None:
        """Remember the message that shows a session (and the version it shows), to edit
        it after a restart too."""
        await self._transaction(
            [
                (
                    "INSERT INTO session_messages (session_id, channel_id, message_id, "
                    "shown_version) VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
                    "channel_id = excluded.channel_id, message_id = excluded.message_id, "
                    "shown_version = excluded.shown_version",
                    (session_id, channel_id, message_id, shown_version),
                )
            ]
        )

    async def set_shown_version(self, session_id: str, version: int) -> None:
        """The session's message now shows `version` of it."""
        await self._transaction(
            [
                (
                    "UPDATE session_messages SET shown_version = ? WHERE session_id = ?",
                    (version, session_id),
                )
            ]
        )

    async def session_message(self, session_id: str) -> SessionMessage | None:
        """Where a session is shown, if a message was remembered."""
        rows = await self._rows(
            "SELECT session_id, channel_id, message_id, shown_version FROM session_messages "
            "WHERE session_id = ?",
            (session_id,),
        )
        return SessionMessage(*rows[0]) if rows else None

    async def session_messages(self) -> list[SessionMessage]:
        """Every remembered session message."""
        rows = await self._rows(
            "SELECT session_id, channel_id, message_id, shown_version FROM session_messages"
        )
        return [SessionMessage(*row) for row in rows]

    async def session_of_message(self, message_id: str) -> str | None:
        """The session a Discord message shows, if any."""
        value = await self._value(
            "SELECT session_id FROM session_messages WHERE message_id = ?", (message_id,)
        )
        return str(value) if value is not None else None

    async def forget_session_message(self, session_id: str) -> None:
        """The session's message is gone (deleted): the next one is posted anew."""
        await self._transaction(
            [("DELETE FROM session_messages WHERE session_id = ?", (session_id,))]
        )

    async def stale_session_messages(self) -> list[SessionMessage]:
        """The messages showing an older version of their session than the store holds."""
        rows = await self._rows(
            "SELECT m.session_id, m.channel_id, m.message_id, m.shown_version "
            "FROM session_messages m JOIN sessions s ON s.id = m.session_id "
            "WHERE m.shown_version < s.event_seq",
            (),
        )
        return [SessionMessage(*row) for row in rows]

    async def answer_channels(self, server_id: str) -> set[str]:
        """The channels where a server wants answers; empty means everywhere."""
        rows = await self._rows(
            "SELECT channel_id FROM answer_channels WHERE server_id = ?", (server_id,)
        )
        return {row[0] for row in rows}

    async def set_answer_channel(self, server_id: str, channel_id: str, answer: bool) -> None:
        """Add a channel to a server's answer channels, or (`answer` false) remove it."""
        if answer:
            sql = (
                "INSERT INTO answer_channels (server_id, channel_id) VALUES (?, ?) "
                "ON CONFLICT (server_id, channel_id) DO NOTHING"
            )
        else:
            sql = "DELETE FROM answer_channels WHERE server_id = ? AND channel_id = ?"
        await self._transaction([(sql, (server_id, channel_id))])


def _session_row(session: Session) -> tuple[Any, ...]:
    return (
        session.id, session.place, session.routine.id, session.host, session.group,
        session.participant_limit, session.state, session.step_index, session.steps_done,
        session.started_at, session.step_started_at, session.due_at, session.remaining,
        session.paused_at, session.paused_seconds, session.touched_at, session.ended_at,
        session.pressure, session.event_seq, session.server_id, session.invited,
        session.invite_expires_at, session.clock_scale,
    )  # fmt: skip


def _session_from_row(
    row: Iterable[Any], routine: Routine, participants: list[Participant]
) -> Session:
    values = dict(zip(_SESSION_COLUMNS, row, strict=True))
    return Session(
        id=values["id"],
        place=values["place"],
        routine=routine,
        host=values["host_id"],
        participants=participants,
        group=bool(values["is_group"]),
        participant_limit=values["participant_limit"],
        started_at=values["started_at"],
        state=values["state"],
        step_index=values["step_index"],
        steps_done=values["steps_done"],
        step_started_at=values["step_started_at"],
        due_at=values["due_at"],
        remaining=values["remaining"],
        paused_at=values["paused_at"],
        paused_seconds=values["paused_seconds"],
        touched_at=values["touched_at"],
        ended_at=values["ended_at"],
        pressure=values["pressure"],
        event_seq=values["event_seq"],
        server_id=values["server_id"],
        invited=values["invited_id"],
        invite_expires_at=values["invite_expires_at"],
        clock_scale=values["clock_scale"],
    )


def _check_writable(path: Path) -> None:
    """Refuse a path that is a directory or read-only before SQLite touches it."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a store file")
    if path.exists():
        mode = path.stat().st_mode
        if not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
            raise StoreError(f"{path} is read-only; massage-bot needs to write to it")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create {path}: {error.strerror}") from None


def _reason(error: sqlite3.Error) -> str:
    """What went wrong, in words a person acts on."""
    message = str(error)
    if "full" in message:
        return "the disk is full (free some space; nothing was changed)"
    if "malformed" in message or "not a database" in message:
        return "the file is damaged (restore it from a backup, or move it away to start afresh)"
    return message


def _explain(path: Path, error: sqlite3.Error) -> str:
    message = str(error)
    if "malformed" in message:
        return f"{path} is damaged ({message}); restore it from a backup or move it away"
    if "not a database" in message:
        return f"{path} is not a massage-bot store (not an SQLite database); it was left as it is"
    if "locked" in message or "busy" in message:
        return f"{path} is in use by another program (another massage-bot running?)"
    if "readonly" in message or "read-only" in message:
        return f"{path} is read-only; massage-bot needs to write to it"
    if "unable to open" in message:
        return f"cannot open {path} (check the folder exists and is writable)"
    return f"{path}: {message}"
