"""How the app talks to its database: engine options (pool sized to the threads that use
it), SQLite in WAL mode with a busy timeout, and the readiness probe's table read.

SQLite (development): WAL lets readers and the writer work at the same time, and the busy
timeout makes a writer wait for the lock instead of failing. That is not enough on its
own: a transaction that reads and then writes while another connection commits is refused
at once ("database is locked", no waiting), because its snapshot is stale. Worker
processes therefore start every transaction with BEGIN IMMEDIATE (it takes the write lock
up front and waits its turn); activities are short, so serialising them costs little.
Within one process they wait for that turn on a Python lock (`_WriterTurn`) rather than in
SQLite's busy handler, which polls: it sleeps 1, 2, 5 ... up to 100 ms between tries, so
under 20 activity threads the lock sat free while its next holder slept. The busy timeout
still orders processes (the console, other workers), and SQLite's lock stays what
guarantees one writer: the turn only decides who asks next.
The console keeps pysqlite's own transaction handling (reads outside a transaction, the
first write opens one): a request can hold its session across a Temporal call that waits
for an activity, which must neither wait for the console's lock nor leave the console
writing from a stale snapshot.

PostgreSQL (production): a pool as large as the threads a process runs, so no activity
thread waits for a connection, and a connection pinged on checkout only after it sat idle
(`ping_after_idle`).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DisconnectionError

# Room for the threads a worker process runs besides its activity threads (the runner,
# the heartbeat), and for the console's request threads when both share a config.
POOL_SPARE = 2
# Execution option that picks how a SQLite transaction begins: "IMMEDIATE" or "LEGACY"
# (pysqlite's own handling); unset, the process's SQLITE_BEGIN_IMMEDIATE setting decides.
SQLITE_BEGIN = "sqlite_begin"


log = logging.getLogger("estuary.database")


class _WriterTurn:
    """One process's queue for SQLite's write lock: taken before `BEGIN IMMEDIATE`, given
    back when that connection commits, rolls back (the pool's reset on return included),
    or is closed. Never a reason to hang: a wait longer than the busy timeout goes on
    without a turn (SQLite's lock still guards), and a thread that already holds the turn
    and opens a second transaction is left to SQLite, as before."""

    def __init__(self, timeout_seconds: float) -> None:
        self._lock = threading.Lock()
        self._holder: tuple[Any, int] | None = None  # (DBAPI connection, thread id)
        self._timeout = timeout_seconds

    def take(self, connection: Any) -> None:
        dbapi_connection = _raw(connection)
        holder = self._holder
        if holder is not None and holder[1] == threading.get_ident():
            return
        if self._lock.acquire(timeout=self._timeout):
            self._holder = (dbapi_connection, threading.get_ident())
        else:
            log.warning("no SQLite writer turn after %.0fs; going on without one", self._timeout)

    def give_back(self, connection: Any) -> None:
        dbapi_connection = _raw(connection)
        holder = self._holder
        if holder is not None and holder[0] is dbapi_connection:
            self._holder = None
            self._lock.release()

    def held(self) -> bool:
        return self._holder is not None


def _raw(connection: Any) -> Any:
    """The DBAPI connection itself (the dialect is handed the pool's proxy of it)."""
    return getattr(connection, "dbapi_connection", None) or connection


# Each SQLite engine's writer turn (tests look at it).
WRITER_TURNS: weakref.WeakKeyDictionary[Engine, _WriterTurn] = weakref.WeakKeyDictionary()


def activity_threads(max_concurrent_activities: int, domain_count: int) -> int:
    """Threads a worker process runs activities on: one pool shared by every domain's
    worker, each allowed `max_concurrent_activities` at once."""
    return max_concurrent_activities * max(domain_count, 1) + POOL_SPARE


def engine_options(uri: str, *, pool_size: int, busy_timeout_seconds: float) -> dict[str, Any]:
    """SQLAlchemy engine options for the app database at `uri`."""
    if uri.startswith("sqlite"):
        # pysqlite's `timeout` is SQLite's busy timeout. An in-memory database has one
        # connection per thread (SingletonThreadPool) and takes no pool size. No pre-ping:
        # a connection to a local file cannot go stale, and the ping was one more
        # statement on every checkout (every activity).
        options: dict[str, Any] = {"connect_args": {"timeout": busy_timeout_seconds}}
        if not _sqlite_in_memory(uri):
            options.update(pool_size=pool_size, max_overflow=POOL_SPARE)
        return options
    # A server connection can be dropped under us (restart, failover): `init_database`
    # pings a connection on checkout when it has sat idle (not SQLAlchemy's pre-ping,
    # which pings on every checkout).
    return {"pool_size": pool_size, "max_overflow": POOL_SPARE, "pool_timeout": 30}


def _sqlite_in_memory(uri: str) -> bool:
    return uri in ("sqlite://", "sqlite:///:memory:") or "mode=memory" in uri


def init_database(app: Flask, engine: Engine) -> None:
    """Install the SQLite connection settings on `engine`, or the idle ping on a server's."""
    if engine.dialect.name != "sqlite":
        ping_after_idle(engine, float(app.config.get("DATABASE_PING_IDLE_SECONDS", 10)))
        return
    busy_ms = int(float(app.config.get("DATABASE_BUSY_TIMEOUT_SECONDS", 15)) * 1000)
    file_backed = not _sqlite_in_memory(str(engine.url))
    # WAL is a property of the file and persists: set it on the first connection only,
    # since switching needs a lock, and a later connection (the readiness probe's) must
    # not wait the full busy timeout for it while another process holds the file.
    wal_set = False

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        nonlocal wal_set
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            if file_backed:
                if not wal_set:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    wal_set = True
                # With WAL, NORMAL loses at most the last commits on power loss, never
                # consistency, and saves an fsync per commit.
                cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    turn = _WriterTurn(busy_ms / 1000)
    WRITER_TURNS[engine] = turn
    _give_back_turn_after(engine, turn)
    # The config, not the app: Flask-SQLAlchemy keeps each app's engines in a dict keyed
    # weakly by the app, and a listener on the engine holding the app would keep both
    # alive for good (a process that makes many apps, the test suite, grew without end).
    config = app.config

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN)
        if mode is None:
            mode = "IMMEDIATE" if config.get("SQLITE_BEGIN_IMMEDIATE") else "LEGACY"
        dbapi_connection = conn.connection.dbapi_connection
        if mode != "IMMEDIATE":
            # pysqlite's own handling (the console's): reads run outside a transaction
            # and the first write opens one, so a request that reads, waits for Temporal
            # and then writes its audit record never writes from a stale snapshot.
            dbapi_connection.isolation_level = ""
            return
        # A real transaction holding the write lock from the first statement: we emit
        # BEGIN ourselves, which pysqlite only leaves to us in autocommit mode.
        dbapi_connection.isolation_level = None
        turn.take(dbapi_connection)
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turn.give_back(dbapi_connection)
            raise


def ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout when it has been back in the pool for
    `idle_seconds` or more (0: on every checkout, as SQLAlchemy's `pool_pre_ping`), and
    replace it when the ping fails.

    A connection that went back a moment ago is handed out as it is. Under load (a batch,
    where every activity checks one out) that saves a round trip per checkout, five a
    payout, and it is a moment in which the server is unlikely to have dropped it. If it
    did (a restart, a failover), the first statement fails, SQLAlchemy recognises the
    disconnect and discards every connection older than it, and the caller sees one error:
    an activity is retried by Temporal, a console page asks to be loaded again. A
    connection that sat idle, where a dropped one is found, is always pinged first."""
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _stamp(_dbapi_connection: Any, record: Any) -> None:
        record.info["estuary_checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in_at = record.info.get("estuary_checked_in_at")
        if checked_in_at is None or time.monotonic() - checked_in_at < idle_seconds:
            return  # new (just connected) or back a moment ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as error:
            if not dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            # The pool discards this connection and checks out another (a new one).
            raise DisconnectionError("the pooled connection was dropped by the server")


def _give_back_turn_after(engine: Engine, turn: _WriterTurn) -> None:
    """Give the writer turn back once the DBAPI commit or rollback has returned (the
    engine's commit/rollback events fire before it), and when a connection holding it is
    closed or invalidated."""
    dialect = engine.dialect
    commit, rollback = dialect.do_commit, dialect.do_rollback

    def do_commit(dbapi_connection: Any) -> None:
        try:
            commit(dbapi_connection)
        finally:
            turn.give_back(dbapi_connection)

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            rollback(dbapi_connection)
        finally:
            turn.give_back(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]
    dialect.do_rollback = do_rollback  # type: ignore[method-assign]

    def _closed(dbapi_connection: Any, *_args: Any) -> None:
        turn.give_back(dbapi_connection)

    for name in ("close", "invalidate", "soft_invalidate", "checkin"):
        event.listen(engine.pool, name, _closed)


def read_staff_table(engine: Engine, timeout_seconds: float) -> None:
    """Read a real table within `timeout_seconds`, or raise: the readiness probe.

    `SELECT 1` answers even when the database file is locked or the schema is missing;
    signing in reads `staff_user`, so that is what readiness reads. On SQLite it uses a
    connection of its own, read-only and outside the pool: a pooled connection's setup
    waits the full busy timeout when another process holds the file.
    """
    if engine.dialect.name == "sqlite":
        database = engine.url.database or ""
        if _sqlite_in_memory(str(engine.url)) or not database:
            with engine.connect() as conn:
                conn.execute(text("SELECT id FROM staff_user LIMIT 1")).first()
            return
        uri = f"{Path(database).resolve().as_uri()}?mode=ro"
        raw = sqlite3.connect(uri, uri=True, timeout=timeout_seconds)
        try:
            raw.execute("SELECT id FROM staff_user LIMIT 1").fetchall()
        finally:
            raw.close()
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            ms = int(timeout_seconds * 1000)
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {ms}")
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")
        conn.execute(text("SELECT id FROM staff_user LIMIT 1")).first()
        conn.rollback()
