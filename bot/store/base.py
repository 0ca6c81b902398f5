"""What every store does, in SQL written once: sessions, settings, preferences, unanswered
questions and Discord message ids, over two backends (`SQLiteStore`, `PostgresStore`).

A backend supplies three things: `_rows` (a query's rows), `_transaction` (statements in
one transaction) and `schema_version`. Everything else is here, in portable SQL with ``?``
placeholders: standard types, ``ON CONFLICT`` upserts, moments as epoch seconds, ids as
text. The schema is ``bot/migrations/NNN_name.sql``, applied in order by each backend and
recorded in the database.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.knowledge import Routine
from bot.sessions import (
    ACTIVE_STATES,
    DEFAULT_GROUP_PARTICIPANT_LIMIT,
    Participant,
    Session,
    SessionEvent,
    StoreError,
    UsualPressure,
)
from bot.shards import Shards
from bot.stats import SessionRecord

DEFAULT_DB_PATH = Path("data/massage-bot.sqlite3")
DB_VARIABLE = "MASSAGE_BOT_DB"
POSTGRES_SCHEMES = ("postgresql", "postgres")
EVENTS_KEPT_PER_SESSION = 50
QUESTION_CHARS = 500  # the questions' column is VARCHAR(500), which PostgreSQL enforces
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

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
_ENDED_BEFORE = "SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?"
_CLASS_COLUMNS = (
    "id, server_id, channel_id, host_id, routine_id, starts_at, event_id, state, session_id, "
    "created_at, voice_channel_id"
)
_REMINDER_COLUMNS = (
    "id, user_id, server_id, channel_id, weekday, at_time, zone, next_at, created_at"
)
ANONYMOUS = "someone"  # who a forgotten person was, in the sessions they were in

TABLES: dict[str, str] = {  # every table, parents first, with the columns `copy_to` copies
    "sessions": ", ".join(_SESSION_COLUMNS),
    "session_participants": _PARTICIPANT_COLUMNS,
    "session_events": "session_id, seq, at, kind, user_id, step_index",
    "session_messages": "session_id, channel_id, message_id, shown_version",
    "server_settings": "server_id, participant_limit",
    "user_preferences": "user_id, usual_pressure, favourite_routine, step_alerts",
    "unanswered_questions": "question, times_asked, first_asked_at, last_asked_at",
    "server_unanswered_questions": (
        "server_id, question, times_asked, first_asked_at, last_asked_at"
    ),
    "answer_channels": "server_id, channel_id",
    "classes": _CLASS_COLUMNS,
    "reminders": _REMINDER_COLUMNS,
    "voice_guides": "session_id, server_id, channel_id",
    "step_alerts_sent": "session_id, user_id, step_index",
    "session_attendance": "session_id, user_id",
}
CHILD_TABLES = (
    "session_participants", "session_events", "session_messages", "voice_guides",
    "step_alerts_sent", "session_attendance",
)  # fmt: skip
BOOLEAN_COLUMNS = frozenset({"is_group", "in_control", "step_alerts"})  # SQLite: 0 and 1

Statement = tuple[str, tuple[Any, ...] | list[tuple[Any, ...]]]
"""An SQL statement with its parameters; a list of parameter tuples runs it for each."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    participant_limit: int = DEFAULT_GROUP_PARTICIPANT_LIMIT


@dataclass(frozen=True, slots=True)
class UserPreferences:
    usual_pressure: UsualPressure | None = None
    favourite_routine: str | None = None
    step_alerts: bool = False  # each step of their group sessions by DM


ClassState = Literal["scheduled", "started", "missed", "cancelled"]


@dataclass(frozen=True, slots=True)
class ScheduledClass:
    """A group session at a set time in a server channel, led by its host."""

    id: str
    server_id: str
    channel_id: str
    host_id: str
    routine_id: str
    starts_at: float
    event_id: str | None  # the Discord scheduled event members mark themselves interested in
    state: ClassState
    session_id: str | None
    created_at: float
    voice_channel_id: str | None = None  # where its steps are spoken, if anywhere


@dataclass(frozen=True, slots=True)
class Reminder:
    """Every week on `weekday` at `at_time` in `zone`: a DM to `user_id`, or, set by a host
    for a server, a message in `channel_id`."""

    id: str
    user_id: str
    server_id: str | None
    channel_id: str | None
    weekday: int
    at_time: str  # HH:MM
    zone: str
    next_at: float
    created_at: float


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


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pass of retention removed."""

    sessions: int
    questions: int


class ShardsTaken(StoreError):
    """Another process runs a shard this one was asked to run."""


def default_target() -> str:
    """``$MASSAGE_BOT_DB`` if set, else ``data/massage-bot.sqlite3``."""
    return os.environ.get(DB_VARIABLE) or str(DEFAULT_DB_PATH)


def parse_target(target: Path | str | None) -> Path | str:
    """Where the store lives: a file path (SQLite) or a ``postgresql://`` URL, kept as a
    string. A URL is never taken for a path: another scheme is a `StoreError`."""
    if target is None:
        target = default_target()
    if isinstance(target, Path):
        return target
    match = _URL_SCHEME.match(target)
    if match is None:
        return Path(target)
    if match.group(1).lower() not in POSTGRES_SCHEMES:
        raise StoreError(
            f"{redacted(target)}: unknown database scheme {match.group(1)!r}; "
            "give a file path (SQLite) or a postgresql:// URL"
        )
    return target


def redacted(url: str) -> str:
    """`url` without its password, to show to people and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


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
    """A question as it is counted: lower case, single spaces, at most 500 characters."""
    return " ".join(question.lower().split())[:QUESTION_CHARS]


def newer_schema(where: str, version: int) -> StoreError:
    return StoreError(
        f"{where} was written by a newer massage-bot "
        f"(schema {version}; this one knows up to {len(migrations())})"
    )


def _owned(shards: Shards | None, server_column: str) -> tuple[str, tuple[int, ...]]:
    """An SQL condition (and its parameters) for the rows of servers `shards` owns."""
    if shards is None or shards.every:
        return "", ()
    shard = (
        f"CASE WHEN {server_column} IS NULL THEN 0 "
        f"ELSE (CAST({server_column} AS BIGINT) >> 22) % ? END"
    )
    return f" AND {shard} IN ({', '.join('?' for _ in shards.ids)})", (shards.count, *shards.ids)


class Store(ABC):
    """All persistent state, behind async methods. Open one with `Store.open`."""

    name: str  # the file or the URL (without its password), for messages

    @classmethod
    async def open(cls, target: Path | str | None = None, *, lock_timeout: float = 1.0) -> Store:
        """Open (creating and migrating as needed) the store at `target`: a file path for
        SQLite, a ``postgresql://`` URL for PostgreSQL, by default ``$MASSAGE_BOT_DB`` or
        ``data/massage-bot.sqlite3``.

        Raises `StoreError` with a one-line reason when it cannot be used: not a database,
        another program's, a newer massage-bot's, locked, read-only or unreachable.
        """
        where = parse_target(target)
        if isinstance(where, Path):
            from bot.store.sqlite import SQLiteStore

            return await SQLiteStore.open_file(where, lock_timeout)
        from bot.store.postgres import PostgresStore

        return await PostgresStore.connect(where)

    @abstractmethod
    async def close(self) -> None: ...

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @abstractmethod
    async def schema_version(self) -> int: ...

    @abstractmethod
    async def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Sequence[Any]]:
        """The rows of a query; a failure is a one-line `StoreError`."""

    @abstractmethod
    async def _transaction(self, statements: list[Statement]) -> int:
        """Run the statements in one transaction and return how many rows the last one
        changed (0 for one run over many parameter tuples); a failure rolls it back and is
        raised as a one-line `StoreError`. Callers may overlap: transactions never
        interleave."""

    async def _value(self, sql: str, parameters: Iterable[Any] = ()) -> Any:
        rows = await self._rows(sql, tuple(parameters))
        return rows[0][0] if rows else None

    # Processes sharing the store --------------------------------------------------------

    @abstractmethod
    async def take_shards(
        self, shards: Shards, on_lost: Callable[[str], None] | None = None
    ) -> None:
        """Hold `shards` for this process until it closes the store (`on_lost` is told in
        one line if they are lost before); `ShardsTaken` when another process holds one."""

    @abstractmethod
    async def announce(self, notice: str) -> None:
        """Tell the other processes on this store something (a knowledge reload, someone
        forgotten: one line of text)."""

    @abstractmethod
    async def listen(self, heard: Callable[[str], None]) -> None:
        """Call `heard(notice)` for each notice another process announces."""

    # Sessions -----------------------------------------------------------------------

    async def save_sessions(
        self, changes: Sequence[tuple[Session, SessionEvent]], *, participants: bool = False
    ) -> None:
        """Write sessions, each with one event-log line, in one transaction.

        `participants` rewrites who is in each session too (after a start, join or leave).
        """
        sessions = [session for session, _ in changes]
        statements: list[Statement] = [(_SAVE_SESSION, [_session_row(s) for s in sessions])]
        if participants:
            statements.append(
                (
                    "DELETE FROM session_participants WHERE session_id = ?",
                    [(session.id,) for session in sessions],
                )
            )
            rows = [
                (s.id, p.user_id, p.role, p.join_order, p.joined_at, p.in_control)
                for s in sessions
                for p in s.participants
            ]
            if rows:
                statements.append(
                    (
                        f"INSERT INTO session_participants ({_PARTICIPANT_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        rows,
                    )
                )
                statements.append(
                    (
                        "INSERT INTO session_attendance (session_id, user_id) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        [(session_id, user_id) for session_id, user_id, *_ in rows],
                    )
                )
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
        self, routines: Mapping[str, Routine], shards: Shards | None = None
    ) -> tuple[list[Session], list[str]]:
        """Every active session (of the servers `shards` owns, if given) whose routine
        exists, and the ids of those whose routine does not."""
        owned, parameters = _owned(shards, "server_id")
        active = f"WHERE state IN ({_ACTIVE}){owned}"
        rows = await self._rows(f"{_SELECT_SESSIONS} {active}", parameters)
        participants = await self._participants(f"SELECT id FROM sessions {active}", parameters)
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
        rows = await self._rows(f"{_SELECT_SESSIONS} WHERE id = ?", (session_id,))
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
        rows = await self._rows(
            "SELECT usual_pressure, favourite_routine, step_alerts FROM user_preferences "
            "WHERE user_id = ?",
            (user_id,),
        )
        if not rows:
            return UserPreferences()
        usual, favourite, alerts = rows[0]
        return UserPreferences(usual, favourite, bool(alerts))

    async def set_step_alerts(self, user_id: str, on: bool) -> None:
        await self._set_preference(user_id, "step_alerts", on)

    async def step_alert_people(self, user_ids: Iterable[str]) -> set[str]:
        """Which of `user_ids` want each step of their group sessions by DM."""
        wanted = list(dict.fromkeys(user_ids))
        if not wanted:
            return set()
        marks = ", ".join("?" for _ in wanted)
        rows = await self._rows(
            f"SELECT user_id FROM user_preferences WHERE step_alerts = ? AND user_id IN ({marks})",
            (True, *wanted),
        )
        return {row[0] for row in rows}

    async def claim_step_alert(self, session_id: str, user_id: str, step_index: int) -> bool:
        """Whether `user_id` is to be told of this step now: True once only, across restarts
        and processes (a step someone joined on is claimed for them without a DM)."""
        return await self._changed(
            "INSERT INTO step_alerts_sent (session_id, user_id, step_index) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (session_id, user_id, step_index),
        )

    async def set_usual_pressure(self, user_id: str, pressure: UsualPressure | None) -> None:
        await self._set_preference(user_id, "usual_pressure", pressure)

    async def set_favourite_routine(self, user_id: str, routine_id: str | None) -> None:
        await self._set_preference(user_id, "favourite_routine", routine_id)

    async def _set_preference(self, user_id: str, column: str, value: str | bool | None) -> None:
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
        """Count a question the bot could not answer (by its lower-cased, spaced text, at
        most 500 characters of it), for everyone and, when asked in a server, for that
        server's curators too."""
        text = normalize_question(question)
        statements: list[Statement] = [
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

    async def stale_session_messages(self, shards: Shards | None = None) -> list[SessionMessage]:
        """The messages showing an older version of their session than the store holds
        (of the servers `shards` owns, if given)."""
        owned, parameters = _owned(shards, "s.server_id")
        rows = await self._rows(
            "SELECT m.session_id, m.channel_id, m.message_id, m.shown_version "
            "FROM session_messages m JOIN sessions s ON s.id = m.session_id "
            f"WHERE m.shown_version < s.event_seq{owned}",
            parameters,
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

    # Classes -------------------------------------------------------------------------

    async def add_class(self, scheduled: ScheduledClass) -> None:
        marks = ", ".join("?" for _ in _CLASS_COLUMNS.split(","))
        await self._transaction(
            [(f"INSERT INTO classes ({_CLASS_COLUMNS}) VALUES ({marks})", _class_row(scheduled))]
        )

    async def classes(
        self,
        *,
        server_id: str | None = None,
        states: Sequence[ClassState] = ("scheduled",),
        starting_before: float | None = None,
        shards: Shards | None = None,
    ) -> list[ScheduledClass]:
        """Classes in `states`, soonest first: of one server, due by a moment, or both (of
        the servers `shards` owns, if given)."""
        sql = f"SELECT {_CLASS_COLUMNS} FROM classes WHERE state IN "
        sql += f"({', '.join('?' for _ in states)})"
        parameters: list[Any] = [*states]
        if server_id is not None:
            sql += " AND server_id = ?"
            parameters.append(server_id)
        if starting_before is not None:
            sql += " AND starts_at <= ?"
            parameters.append(starting_before)
        owned, owned_parameters = _owned(shards, "server_id")
        parameters += owned_parameters
        rows = await self._rows(f"{sql}{owned} ORDER BY starts_at", tuple(parameters))
        return [_class_from_row(row) for row in rows]

    async def class_by_id(self, class_id: str) -> ScheduledClass | None:
        rows = await self._rows(f"SELECT {_CLASS_COLUMNS} FROM classes WHERE id = ?", (class_id,))
        return _class_from_row(rows[0]) if rows else None

    async def class_of_event(self, event_id: str) -> ScheduledClass | None:
        rows = await self._rows(
            f"SELECT {_CLASS_COLUMNS} FROM classes WHERE event_id = ?", (event_id,)
        )
        return _class_from_row(rows[0]) if rows else None

    async def class_of_session(self, session_id: str) -> ScheduledClass | None:
        rows = await self._rows(
            f"SELECT {_CLASS_COLUMNS} FROM classes WHERE session_id = ?", (session_id,)
        )
        return _class_from_row(rows[0]) if rows else None

    async def reschedule_unopened_classes(self, shards: Shards | None = None) -> int:
        """Put back to "scheduled" the classes (of the servers `shards` owns) marked started
        whose session never began: their process stopped in between. Only for a process
        starting up, which alone runs those servers; how many there were."""
        owned, parameters = _owned(shards, "server_id")
        return await self._transaction([(
            "UPDATE classes SET state = 'scheduled' WHERE state = 'started' "
            f"AND session_id IS NULL{owned}", parameters,
        )])  # fmt: skip

    async def move_class(self, class_id: str, starts_at: float) -> bool:
        """A scheduled class's new start (its Discord event was moved); False once it has
        started or ended."""
        return await self._changed(
            "UPDATE classes SET starts_at = ? WHERE id = ? AND state = 'scheduled'",
            (starts_at, class_id),
        )

    async def set_class_state(
        self, class_id: str, state: ClassState, *, was: ClassState, session_id: str | None = None
    ) -> bool:
        """Move a class from state `was` to `state`; False when it was not in `was` any more
        (another process, or a cancel, got there first)."""
        return await self._changed(
            "UPDATE classes SET state = ?, session_id = COALESCE(?, session_id) "
            "WHERE id = ? AND state = ?",
            (state, session_id, class_id, was),
        )

    # Voice guides --------------------------------------------------------------------

    async def set_voice_guide(self, session_id: str, server_id: str, channel_id: str) -> None:
        """`session_id` is spoken in the voice or stage channel `channel_id`."""
        await self._transaction(
            [
                ("DELETE FROM voice_guides WHERE session_id = ?", (session_id,)),
                ("INSERT INTO voice_guides (session_id, server_id, channel_id) VALUES (?, ?, ?)",
                 (session_id, server_id, channel_id)),
            ]
        )  # fmt: skip

    async def forget_voice_guide(self, session_id: str) -> None:
        await self._transaction([("DELETE FROM voice_guides WHERE session_id = ?", (session_id,))])

    async def voice_guides(self, shards: Shards | None = None) -> dict[str, str]:
        """The voice channel of each session spoken aloud (of the servers `shards` owns)."""
        owned, parameters = _owned(shards, "server_id")
        rows = await self._rows(
            f"SELECT session_id, channel_id FROM voice_guides WHERE 1 = 1{owned}",
            tuple(parameters),
        )
        return {str(session): str(channel) for session, channel in rows}

    # Reminders -----------------------------------------------------------------------

    async def add_reminder(self, reminder: Reminder) -> None:
        marks = ", ".join("?" for _ in _REMINDER_COLUMNS.split(","))
        await self._transaction(
            [(f"INSERT INTO reminders ({_REMINDER_COLUMNS}) VALUES ({marks})",
              _reminder_row(reminder))]
        )  # fmt: skip

    async def reminders_of(self, user_id: str) -> list[Reminder]:
        rows = await self._rows(
            f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE user_id = ? ORDER BY next_at",
            (user_id,),
        )
        return [Reminder(*row) for row in rows]

    async def delete_reminder(self, reminder_id: str, user_id: str) -> bool:
        """Delete one of a person's reminders; False when they have no such reminder."""
        return await self._changed(
            "DELETE FROM reminders WHERE id = ? AND user_id = ?", (reminder_id, user_id)
        )

    async def due_reminders(
        self,
        now: float,
        limit: int = 500,
        shards: Shards | None = None,
        *,
        user_id: str | None = None,
        other_than: str | None = None,
    ) -> list[Reminder]:
        """Reminders due by `now`, oldest first (a person's own ones belong to shard 0):
        only `user_id`'s, or everyone's but `other_than`'s, when given."""
        owned, parameters = _owned(shards, "server_id")
        if user_id is not None:
            owned, parameters = owned + " AND user_id = ?", (*parameters, user_id)
        if other_than is not None:
            owned, parameters = owned + " AND user_id <> ?", (*parameters, other_than)
        rows = await self._rows(
            f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE next_at <= ?{owned} "
            "ORDER BY next_at LIMIT ?",
            (now, *parameters, limit),
        )
        return [Reminder(*row) for row in rows]

    async def next_reminder_at(
        self, shards: Shards | None = None, *, other_than: str | None = None
    ) -> float | None:
        """When the soonest reminder (of `shards`' servers, not `other_than`'s) is due."""
        owned, parameters = _owned(shards, "server_id")
        if other_than is not None:
            owned, parameters = owned + " AND user_id <> ?", (*parameters, other_than)
        soonest = await self._value(
            f"SELECT MIN(next_at) FROM reminders WHERE 1 = 1{owned}", tuple(parameters)
        )
        return None if soonest is None else float(soonest)

    async def claim_reminder(self, reminder: Reminder, next_at: float) -> bool:
        """Move a due reminder on to `next_at`; True for the one process that did it (the
        one that sends this occurrence), False when another already had."""
        return await self._changed(
            "UPDATE reminders SET next_at = ? WHERE id = ? AND next_at = ?",
            (next_at, reminder.id, reminder.next_at),
        )

    # Habits and people's own data ----------------------------------------------------

    async def session_records(
        self, *, since: float, user_id: str | None = None, server_id: str | None = None
    ) -> list[SessionRecord]:
        """Ended sessions (with at least one step done) started since `since` that someone
        was in, if only for a while (`user_id`), or that took place in a server, oldest
        first, each with everyone who was in it."""
        chosen = (
            "FROM sessions WHERE ended_at IS NOT NULL AND steps_done > 0 AND started_at >= ?"
        )
        parameters: list[Any] = [since]
        if user_id is not None:
            chosen += " AND id IN (SELECT session_id FROM session_attendance WHERE user_id = ?)"
            parameters.append(user_id)
        if server_id is not None:
            chosen += " AND server_id = ?"
            parameters.append(server_id)
        rows = await self._rows(
            f"SELECT id, routine_id, started_at, ended_at, paused_seconds {chosen} "
            "ORDER BY started_at",
            tuple(parameters),
        )
        people: dict[str, list[str]] = {}
        if rows:
            for session_id, person in await self._rows(
                f"SELECT session_id, user_id FROM session_attendance WHERE session_id IN "
                f"(SELECT id {chosen}) ORDER BY session_id, user_id",
                tuple(parameters),
            ):
                people.setdefault(session_id, []).append(person)
        return [
            SessionRecord(
                routine_id=routine_id,
                started_at=started,
                minutes=max(ended - started - paused, 0.0) / 60,
                people=tuple(people.get(session_id, [])),
            )
            for session_id, routine_id, started, ended, paused in rows
        ]

    async def personal_data(self, user_id: str) -> dict[str, Any]:
        """Everything kept about one person, as plain data (for `/massage my-data`)."""
        preferences = await self.get_preferences(user_id)
        sessions = await self._rows(
            "SELECT s.id, s.routine_id, s.state, s.started_at, s.ended_at, s.steps_done, "
            "p.role, s.server_id FROM sessions s LEFT JOIN session_participants p "
            "ON p.session_id = s.id AND p.user_id = ? WHERE p.user_id IS NOT NULL "
            "OR s.host_id = ? OR s.invited_id = ? OR s.id IN "
            "(SELECT session_id FROM session_events WHERE user_id = ?) OR s.id IN "
            "(SELECT session_id FROM session_attendance WHERE user_id = ?) ORDER BY s.started_at",
            (user_id, user_id, user_id, user_id, user_id),
        )
        events = await self._rows(
            "SELECT session_id, at, kind, step_index FROM session_events WHERE user_id = ? "
            "ORDER BY at, session_id, seq",
            (user_id,),
        )
        hosted = await self._rows(
            f"SELECT {_CLASS_COLUMNS} FROM classes WHERE host_id = ?", (user_id,)
        )
        session_fields = (
            "id", "routine", "state", "started_at", "ended_at", "steps_done", "role", "server_id"
        )
        alerted = await self._rows(
            "SELECT session_id, step_index FROM step_alerts_sent WHERE user_id = ? "
            "ORDER BY session_id, step_index",
            (user_id,),
        )
        reminders = await self.reminders_of(user_id)
        return {
            "user_id": user_id,
            "preferences": {
                "usual_pressure": preferences.usual_pressure,
                "favourite_routine": preferences.favourite_routine,
                "step_alerts": preferences.step_alerts,
            },
            "sessions": [dict(zip(session_fields, row, strict=True)) for row in sessions],
            "session_events": [
                dict(zip(("session_id", "at", "what", "step_index"), row, strict=True))
                for row in events
            ],
            "steps_alerted": [
                {"session_id": session_id, "step_index": step} for session_id, step in alerted
            ],
            "reminders": [
                {"id": r.id, "weekday": r.weekday, "at": r.at_time, "zone": r.zone,
                 "server_id": r.server_id, "channel_id": r.channel_id, "next_at": r.next_at}
                for r in reminders
            ],
            "classes_hosted": [
                {"id": c.id, "routine": c.routine_id, "starts_at": c.starts_at, "state": c.state}
                for c in map(_class_from_row, hosted)
            ],
        }

    async def forget_person(self, user_id: str) -> list[ScheduledClass]:
        """Delete what is kept about one person: the classes they were to host are cancelled
        (returned, for their Discord events), and in past sessions and classes they become
        an anonymous participant or host (so the others' sessions still add up), under a
        name drawn at random, which leads back to nobody."""
        anonymous = f"{ANONYMOUS}-{secrets.token_hex(5)}"
        hosting = await self._rows(
            f"SELECT {_CLASS_COLUMNS} FROM classes WHERE host_id = ? AND state = 'scheduled'",
            (user_id,),
        )
        await self._transaction(
            [
                ("DELETE FROM user_preferences WHERE user_id = ?", (user_id,)),
                ("DELETE FROM reminders WHERE user_id = ?", (user_id,)),
                ("DELETE FROM step_alerts_sent WHERE user_id = ?", (user_id,)),
                ("UPDATE session_participants SET user_id = ? WHERE user_id = ?",
                 (anonymous, user_id)),
                ("UPDATE session_attendance SET user_id = ? WHERE user_id = ?",
                 (anonymous, user_id)),
                ("UPDATE session_events SET user_id = NULL WHERE user_id = ?", (user_id,)),
                ("UPDATE sessions SET host_id = ? WHERE host_id = ?", (anonymous, user_id)),
                ("UPDATE sessions SET invited_id = NULL WHERE invited_id = ?", (user_id,)),
                ("UPDATE classes SET state = 'cancelled' WHERE host_id = ? "
                 "AND state = 'scheduled'", (user_id,)),
                ("UPDATE classes SET host_id = ? WHERE host_id = ?", (anonymous, user_id)),
            ]
        )  # fmt: skip
        return [_class_from_row(row) for row in hosting]

    async def _changed(self, sql: str, parameters: tuple[Any, ...]) -> bool:
        """Run one UPDATE or DELETE in a transaction; whether it changed a row."""
        return await self._transaction([(sql, parameters)]) > 0

    # Retention and moving house -----------------------------------------------------

    async def prune(self, before: float) -> Pruned:
        """Remove the sessions that ended before `before` (with their people, events and
        messages) and the unanswered questions last asked before it."""
        sessions = await self._value(f"SELECT COUNT(*) FROM ({_ENDED_BEFORE}) ended", (before,))
        questions = await self._value(
            "SELECT COUNT(*) FROM unanswered_questions WHERE last_asked_at < ?", (before,)
        )
        await self._transaction(
            [
                *(
                    (f"DELETE FROM {table} WHERE session_id IN ({_ENDED_BEFORE})", (before,))
                    for table in CHILD_TABLES
                ),
                ("DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?", (before,)),
                ("DELETE FROM classes WHERE state <> 'scheduled' AND starts_at < ?", (before,)),
                ("DELETE FROM unanswered_questions WHERE last_asked_at < ?", (before,)),
                ("DELETE FROM server_unanswered_questions WHERE last_asked_at < ?", (before,)),
            ]
        )
        return Pruned(sessions=int(sessions), questions=int(questions))

    async def row_counts(self) -> dict[str, int]:
        """How many rows each table holds."""
        return {table: int(await self._value(f"SELECT COUNT(*) FROM {table}")) for table in TABLES}

    async def copy_to(self, target: Store) -> dict[str, int]:
        """Copy every row into `target`, an empty store, in one transaction; return how
        many rows each table got. Questions longer than the column allows are cut (and
        counted together if that makes two the same)."""
        if any((await target.row_counts()).values()):
            raise StoreError(f"{target.name} already holds data; copy into an empty database")
        statements: list[Statement] = []
        copied = {}
        for table, columns in TABLES.items():
            rows = [
                tuple(_copied(name.strip(), value) for name, value in zip(
                    columns.split(","), row, strict=True))
                for row in await self._rows(_copy_query(table, columns))
            ]  # fmt: skip
            copied[table] = len(rows)
            if rows:
                marks = ", ".join("?" for _ in columns.split(","))
                statements.append((f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows))
        await target._transaction(statements)
        return copied


def _copy_query(table: str, columns: str) -> str:
    """How `copy_to` reads a table: questions cut to the column's length, counted together."""
    if "question" not in columns:
        return f"SELECT {columns} FROM {table}"
    server = "server_id, " if table.startswith("server_") else ""
    cut = f"substr(question, 1, {QUESTION_CHARS})"
    return (
        f"SELECT {server}{cut}, SUM(times_asked), MIN(first_asked_at), MAX(last_asked_at) "
        f"FROM {table} GROUP BY {server}{cut}"
    )


def _copied(column: str, value: Any) -> Any:
    return bool(value) if column in BOOLEAN_COLUMNS else value


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


def _class_row(scheduled: ScheduledClass) -> tuple[Any, ...]:
    return (
        scheduled.id, scheduled.server_id, scheduled.channel_id, scheduled.host_id,
        scheduled.routine_id, scheduled.starts_at, scheduled.event_id, scheduled.state,
        scheduled.session_id, scheduled.created_at, scheduled.voice_channel_id,
    )  # fmt: skip


def _class_from_row(row: Sequence[Any]) -> ScheduledClass:
    return ScheduledClass(*row)


def _reminder_row(reminder: Reminder) -> tuple[Any, ...]:
    return (
        reminder.id, reminder.user_id, reminder.server_id, reminder.channel_id, reminder.weekday,
        reminder.at_time, reminder.zone, reminder.next_at, reminder.created_at,
    )  # fmt: skip


