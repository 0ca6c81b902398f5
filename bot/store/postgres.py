"""The shared store: PostgreSQL (asyncpg, a connection pool), for shard processes on any
number of machines.

The same migrations as SQLite run in one transaction under an advisory lock (so processes
starting together migrate once) and are recorded in the table ``massage_bot_schema``.

Each process also keeps one connection of its own, which holds its shard leases:
session-level advisory locks, one per shard it runs, and a shared one on the shard count,
so that no two processes run one shard and no process starts with another shard count
while others run. PostgreSQL drops a connection's locks when it ends, so a process that
dies (even by SIGKILL) frees its shards at once for a replacement. A process that loses
this connection loses its shards, and is told (`on_lost`) so it can stop. The same
connection LISTENs for the notices of the other processes (knowledge reloads, people
forgotten).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from bot.sessions import StoreError
from bot.shards import Shards
from bot.store.base import (
    ShardsTaken,
    Statement,
    Store,
    migrations,
    newer_schema,
    redacted,
    sql_statements,
)

log = logging.getLogger(__name__)

POOL_SIZE = 10  # connections per process
CONNECT_SECONDS = 10.0
HEARTBEAT_SECONDS = 5.0  # how often the lease connection is checked
NOTICE_CHANNEL = "massage_bot_notice"
# advisory lock keys (two int4: a namespace, then a number): "mb" and what is locked
_MIGRATING, _STARTING, _SHARD, _SHARD_COUNT = 0x6D620000, 0x6D620001, 0x6D620002, 0x6D620003
_ADVISORY = (
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1 "
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

AsyncpgError = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@functools.lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`sql` with PostgreSQL's ``$1, $2, ...`` for the portable ``?`` placeholders."""
    pieces = sql.split("?")
    return pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], start=1))


class PostgresStore(Store):
    """The store in a PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self.name = redacted(url)
        self._own: asyncpg.Connection | None = None  # leases and LISTEN
        self._heartbeat: asyncio.Task[None] | None = None
        self._on_lost: Callable[[str], None] | None = None
        self._token = secrets.token_hex(8)  # tells this process's announcements apart

    @classmethod
    async def connect(cls, url: str) -> PostgresStore:
        """Connect to the database at `url` and bring its schema up to date."""
        name = redacted(url)
        try:
            pool = await asyncpg.create_pool(
                url, min_size=1, max_size=POOL_SIZE, timeout=CONNECT_SECONDS,
                server_settings={"application_name": _application_name()},
            )  # fmt: skip
        except (*AsyncpgError, ValueError) as error:
            raise StoreError(_explain(name, error)) from None
        store = cls(pool, url)
        try:
            await store._prepare()
        except BaseException as error:
            await pool.close()
            if isinstance(error, AsyncpgError):
                raise StoreError(_explain(name, error)) from None
            raise
        return store

    async def close(self) -> None:
        self._on_lost = None  # closing on purpose loses nothing
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._own is not None:
            await self._own.close()
        await self._pool.close()

    async def _prepare(self) -> None:
        """Refuse another program's or a newer massage-bot's database, then migrate."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1, 0)", _MIGRATING)
            tables = {
                row[0]
                for row in await connection.fetch(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            }
            if "massage_bot_schema" not in tables:
                if tables:
                    raise StoreError(f"{self.name} is a database of another program")
                await connection.execute("CREATE TABLE massage_bot_schema (version INTEGER)")
                await connection.execute("INSERT INTO massage_bot_schema VALUES (0)")
            version = await connection.fetchval("SELECT version FROM massage_bot_schema")
            if version > len(migrations()):
                raise newer_schema(self.name, version)
            for number, script in migrations()[version:]:
                for statement in sql_statements(script):
                    await connection.execute(statement)
                await connection.execute("UPDATE massage_bot_schema SET version = $1", number)

    async def schema_version(self) -> int:
        return int(await self._value("SELECT version FROM massage_bot_schema"))

    async def _rows(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Sequence[Any]]:
        try:
            return list(await self._pool.fetch(numbered(sql), *parameters))
        except AsyncpgError as error:
            raise StoreError(_explain(self.name, error)) from None

    async def _transaction(self, statements: list[Statement]) -> int:
        try:
            async with self._pool.acquire() as connection, connection.transaction():
                changed = 0
                for sql, parameters in statements:
                    if isinstance(parameters, list):
                        await connection.executemany(numbered(sql), parameters)
                        changed = 0
                    else:
                        status = await connection.execute(numbered(sql), *parameters)
                        changed = int(status.rsplit(" ", 1)[-1]) if status[-1:].isdigit() else 0
                return changed
        except AsyncpgError as error:
            raise StoreError(f"could not save to {self.name}: {_one_line(error)}") from None

    # Processes sharing the store ----------------------------------------------------------

    async def take_shards(
        self, shards: Shards, on_lost: Callable[[str], None] | None = None
    ) -> None:
        """Hold `shards` on this process's own connection (see the module); `on_lost` is
        told, in one line, if that connection and so the leases are lost."""
        own = await self._own_connection()
        try:
            async with own.transaction():
                await own.execute("SELECT pg_advisory_xact_lock($1, 0)", _STARTING)
                counts = {row[0] for row in await own.fetch(f"SELECT l.objid {_ADVISORY}",
                                                            _SHARD_COUNT)}  # fmt: skip
                if counts - {shards.count}:
                    others = ", ".join(map(str, sorted(counts - {shards.count})))
                    raise ShardsTaken(
                        f"massage-bot processes with --shard-count {others} run on "
                        f"{self.name}; stop them all before running {shards.count} shards"
                    )
                for shard in shards.ids:
                    if not await own.fetchval("SELECT pg_try_advisory_lock($1, $2)", _SHARD, shard):
                        raise ShardsTaken(
                            f"shard {shard} of {shards.count} is already run by another "
                            f"massage-bot ({await self._holder(own, shard)}); stop it first"
                        )
                await own.execute("SELECT pg_advisory_lock_shared($1, $2)", _SHARD_COUNT,
                                  shards.count)  # fmt: skip
        except BaseException as error:
            await self._drop_own_connection()  # and the locks it took before the refusal
            if isinstance(error, AsyncpgError):
                raise StoreError(_explain(self.name, error)) from None
            raise
        self._on_lost = on_lost
        self._heartbeat = asyncio.create_task(self._check_leases(), name="massage-shard-leases")

    async def _holder(self, own: asyncpg.Connection, shard: int) -> str:
        holder = await own.fetchval(
            f"SELECT a.application_name {_ADVISORY} AND l.objid = $2", _SHARD, shard
        )
        return holder or "another connection"

    async def _own_connection(self) -> asyncpg.Connection:
        if self._own is None:
            try:
                self._own = await asyncpg.connect(
                    self._url, timeout=CONNECT_SECONDS,
                    server_settings={"application_name": _application_name()},
                )  # fmt: skip
            except AsyncpgError as error:
                raise StoreError(_explain(self.name, error)) from None
            self._own.add_termination_listener(lambda _: self._lost("the connection closed"))
        return self._own

    async def _drop_own_connection(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            with contextlib.suppress(*AsyncpgError):
                await own.close()

    async def _check_leases(self) -> None:
        """Notice a lease connection that broke without closing (a network gone quiet)."""
        while self._own is not None:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._own.fetchval("SELECT 1", timeout=HEARTBEAT_SECONDS)
            except AsyncpgError as error:
                self._lost(f"it stopped answering ({error.__class__.__name__})")
                return

    def _lost(self, why: str) -> None:
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost(f"lost the connection to {self.name} that holds this process's shards: {why}")

    async def announce(self, notice: str) -> None:
        payload = f"{self._token} {notice}"
        try:
            await self._pool.execute("SELECT pg_notify($1, $2)", NOTICE_CHANNEL, payload)
        except AsyncpgError as error:
            raise StoreError(_explain(self.name, error)) from None

    async def listen(self, heard: Callable[[str], None]) -> None:
        def received(_: object, __: int, ___: str, payload: str) -> None:
            sender, _space, notice = payload.partition(" ")
            if sender != self._token:
                heard(notice)

        own = await self._own_connection()
        try:
            await own.add_listener(NOTICE_CHANNEL, received)
        except AsyncpgError as error:
            raise StoreError(_explain(self.name, error)) from None


def _application_name() -> str:
    """How this process shows in ``pg_stat_activity`` (and in a refusal to another)."""
    return f"massage-bot on {socket.gethostname()} pid {os.getpid()}"[:63]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or error.__class__.__name__


def _explain(name: str, error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return f"cannot reach PostgreSQL at {name} (no answer within {CONNECT_SECONDS:g} s)"
    if isinstance(error, OSError):
        return f"cannot reach PostgreSQL at {name} ({error.strerror or _one_line(error)})"
    return f"{name}: {_one_line(error)}"
