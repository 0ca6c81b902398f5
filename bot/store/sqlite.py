"""The embedded store: one SQLite file, owned by one process.

One `SQLiteStore` per process owns its file (SQLite's exclusive locking mode, in WAL), so
a second bot on the same file gets a clear error instead of fighting over sessions; that
lock is also its shard lease. Commits use ``synchronous=NORMAL``: a change is in the file
once its method returns and survives the process being killed at any moment (an OS crash
may lose the last ones). Migrations run in one transaction and are recorded in ``PRAGMA
user_version``, so an older file opens with a newer bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.sessions import StoreError
from bot.shards import Shards
from bot.store.base import Statement, Store, migrations, newer_schema, sql_statements


class SQLiteStore(Store):
    """The store in an SQLite file."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self.name = str(path)
        self._writing = asyncio.Lock()  # one transaction at a time on the connection

    @classmethod
    async def open_file(cls, path: Path, lock_timeout: float = 1.0) -> SQLiteStore:
        """Open (creating and migrating as needed) the file at `path`; a refused file is
        left exactly as it was."""
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
        version = await self.schema_version()
        if version > len(migrations()):
            raise newer_schema(str(self.path), version)
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

    async def take_shards(
        self, shards: Shards, on_lost: Callable[[str], None] | None = None
    ) -> None:
        """Nothing to take: the file is this process's alone while it is open."""

    async def announce(self, notice: str) -> None:
        """Nobody to tell: no other process uses the file."""

    async def listen(self, heard: Callable[[str], None]) -> None:
        """Nobody to hear from: no other process uses the file."""

    async def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Sequence[Any]]:
        try:
            return list(await self._db.execute_fetchall(sql, parameters))
        except sqlite3.Error as error:
            raise StoreError(_explain(self.path, error)) from None

    async def _transaction(self, statements: list[Statement]) -> int:
        async with self._writing:
            try:
                await self._db.execute("BEGIN")
                changed = 0
                try:
                    for sql, parameters in statements:
                        if isinstance(parameters, list):
                            await self._db.executemany(sql, parameters)
                            changed = 0
                        else:
                            changed = (await self._db.execute(sql, parameters)).rowcount
                    await self._db.execute("COMMIT")
                    return changed
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
