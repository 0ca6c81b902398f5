"""The store: every session, setting, preference and unanswered question, behind one
interface (`Store`) with two backends: an SQLite file, the embedded default, and a shared
PostgreSQL database for shard processes on several machines. `Store.open` picks one from
a path or a ``postgresql://`` URL."""

from bot.sessions import StoreError
from bot.store.base import (
    DB_VARIABLE,
    DEFAULT_DB_PATH,
    EVENTS_KEPT_PER_SESSION,
    QUESTION_CHARS,
    TABLES,
    ClassState,
    Pruned,
    Reminder,
    ScheduledClass,
    ServerSettings,
    SessionMessage,
    ShardsTaken,
    Store,
    UnansweredQuestion,
    UserPreferences,
    default_target,
    migrations,
    normalize_question,
    parse_target,
    redacted,
    sql_statements,
)

__all__ = [
    "DB_VARIABLE",
    "DEFAULT_DB_PATH",
    "EVENTS_KEPT_PER_SESSION",
    "QUESTION_CHARS",
    "TABLES",
    "ClassState",
    "Pruned",
    "Reminder",
    "ScheduledClass",
    "ServerSettings",
    "SessionMessage",
    "ShardsTaken",
    "Store",
    "StoreError",
    "UnansweredQuestion",
    "UserPreferences",
    "default_target",
    "migrations",
    "normalize_question",
    "parse_target",
    "redacted",
    "sql_statements",
]
