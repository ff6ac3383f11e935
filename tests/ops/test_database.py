"""The app database under load and when it cannot serve: SQLite in WAL mode with a busy
timeout and IMMEDIATE transactions in workers (no "database is locked" under concurrent
read-then-write), the pool sized to the worker's activity threads, and `/readyz` failing
when the staff table cannot be read."""

from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from config import TestingConfig
from estuary.database import WRITER_TURNS, activity_threads, engine_options, ping_after_idle
from estuary.db import db
from estuary_ops import create_app
from tests.conftest import POSTGRES
from workers.temporal import registry

sqlite_only = pytest.mark.skipif(POSTGRES, reason="SQLite file locking")


def _sqlite_app(path, **overrides):
    return create_app(TestingConfig, SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}", **overrides)


def test_pool_is_sized_to_the_worker_activity_threads():
    assert activity_threads(20, 3) == 62
    pg = engine_options("postgresql+psycopg://u@h/db", pool_size=62, busy_timeout_seconds=15)
    assert pg["pool_size"] == 62
    assert "pool_pre_ping" not in pg  # ping_after_idle instead (below)
    lite = engine_options("sqlite:////tmp/x.db", pool_size=62, busy_timeout_seconds=15)
    assert lite["pool_size"] == 62 and lite["connect_args"] == {"timeout": 15}
    assert "pool_pre_ping" not in lite  # a local file cannot go stale
    assert "pool_size" not in engine_options("sqlite://", pool_size=62, busy_timeout_seconds=1)


def test_the_app_engine_uses_the_derived_pool_size(tmp_path):
    app = _sqlite_app(tmp_path / "pool.db", WORKER_MAX_CONCURRENT_ACTIVITIES=7)
    with app.app_context():
        assert db.engine.pool.size() == activity_threads(7, len(registry.domains()))
        db.engine.dispose()
    app = _sqlite_app(tmp_path / "pool.db", DATABASE_POOL_SIZE=9)
    with app.app_context():
        assert db.engine.pool.size() == 9
        db.engine.dispose()


@sqlite_only
def test_worker_transactions_on_sqlite_never_fail_on_the_lock(tmp_path):
    """20 threads (a worker's activity pool) each read a counter and write it back, 25
    times: with WAL and BEGIN IMMEDIATE every transaction waits its turn, none is refused
    and no increment is lost."""
    app = _sqlite_app(tmp_path / "load.db", SQLITE_BEGIN_IMMEDIATE=True)
    with app.app_context():
        assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        db.session.execute(text("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)"))
        db.session.execute(text("INSERT INTO counter VALUES (1, 0)"))
        db.session.commit()
    errors: list[BaseException] = []
    threads_n, rounds = 20, 25

    def activity_like() -> None:
        for _ in range(rounds):
            with app.app_context():
                try:
                    n = db.session.execute(text("SELECT n FROM counter WHERE id = 1")).scalar()
                    db.session.execute(text("UPDATE counter SET n = :n WHERE id = 1"), {"n": n + 1})
                    db.session.commit()
                except Exception as exc:
                    errors.append(exc)
                    db.session.rollback()
                finally:
                    db.session.remove()

    threads = [threading.Thread(target=activity_like) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        assert db.session.execute(text("SELECT n FROM counter")).scalar() == threads_n * rounds
        db.engine.dispose()


@sqlite_only
def test_readyz_fails_while_the_database_file_is_locked(tmp_path, monkeypatch):
    path = tmp_path / "ready.db"
    app = _sqlite_app(path, READYZ_DATABASE_TIMEOUT_SECONDS=1)
    monkeypatch.setattr(app.extensions["temporal"], "check", lambda: None)
    with app.app_context():
        db.create_all()
        db.engine.dispose()
    client = app.test_client()
    assert client.get("/readyz").json == {"status": "ok", "database": "ok", "temporal": "ok"}

    with app.app_context():
        db.engine.dispose()  # the lock below needs every other connection closed
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM login_attempt")
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        problem = response.json["problems"]["database"]
        assert "cannot read the staff table within 1 s" in problem
        assert "locked" in problem
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert client.get("/readyz").status_code == 200


@sqlite_only
def test_readyz_fails_when_the_schema_is_missing(tmp_path, monkeypatch):
    app = _sqlite_app(tmp_path / "empty.db")
    monkeypatch.setattr(app.extensions["temporal"], "check", lambda: None)
    with app.app_context():  # the file exists, the migrations never ran
        db.session.execute(text("SELECT 1"))
        db.engine.dispose()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "no such table: staff_user" in response.json["problems"]["database"]


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_readyz_fails_while_the_staff_table_is_locked_on_postgresql(app, monkeypatch):
    app.config["READYZ_DATABASE_TIMEOUT_SECONDS"] = 1
    monkeypatch.setattr(app.extensions["temporal"], "check", lambda: None)
    client = app.test_client()
    assert client.get("/readyz").status_code == 200
    with app.app_context(), db.engine.connect() as holder:
        holder.exec_driver_sql("LOCK TABLE staff_user IN ACCESS EXCLUSIVE MODE")
        response = client.get("/readyz")
        holder.rollback()
    assert response.status_code == 503
    assert "canceling statement due to" in response.json["problems"]["database"]
    assert client.get("/readyz").status_code == 200


def _server_engine(idle_seconds: float):
    url = os.environ["TEST_DATABASE_URL"]
    engine = create_engine(url, **engine_options(url, pool_size=1, busy_timeout_seconds=1))
    ping_after_idle(engine, idle_seconds)
    return engine


def _drop_pooled_connection(engine) -> int:
    """The server ends the pool's one connection (as a restart would): its backend pid."""
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    killer = create_engine(os.environ["TEST_DATABASE_URL"], poolclass=NullPool)
    with killer.connect() as connection:
        assert connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})").scalar()
    killer.dispose()
    return pid


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_a_connection_idle_past_the_threshold_is_pinged_and_replaced_when_dropped(app):
    with app.app_context():  # the app's own engine has the ping, not SQLAlchemy's pre-ping
        assert len(db.engine.pool.dispatch.checkout) == 1 and not db.engine.pool._pre_ping
    engine = _server_engine(idle_seconds=0.2)
    try:
        dropped = _drop_pooled_connection(engine)
        time.sleep(0.3)
        with engine.connect() as connection:  # no error: the ping found it dead
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != dropped
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL (TEST_DATABASE_URL)")
def test_a_connection_back_a_moment_ago_is_not_pinged_and_a_drop_costs_one_error():
    """The trade made for a round trip less per checkout: a connection dropped within the
    idle threshold fails its first statement once (an activity is retried); the pool then
    replaces it and the next checkout works."""
    engine = _server_engine(idle_seconds=3600)
    pings = []
    ping = engine.dialect.do_ping
    engine.dialect.do_ping = lambda dbapi_connection: pings.append(1) or ping(dbapi_connection)
    try:
        dropped = _drop_pooled_connection(engine)
        with pytest.raises(OperationalError), engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() != dropped
        assert pings == []
    finally:
        engine.dispose()


@sqlite_only
def test_worker_transactions_take_turns_and_always_give_the_turn_back(tmp_path):
    """In a worker, SQLite writers of one process queue on a Python lock (not SQLite's
    polling busy handler); the turn comes back after a commit, a rollback, a failed
    statement and a session closed mid-transaction."""
    app = _sqlite_app(tmp_path / "turns.db", SQLITE_BEGIN_IMMEDIATE=True)
    with app.app_context():
        turn = WRITER_TURNS[db.engine]
        db.session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        assert turn.held()
        db.session.commit()
        assert not turn.held()
        db.session.execute(text("INSERT INTO t VALUES (1)"))
        db.session.rollback()
        assert not turn.held()
        with pytest.raises(Exception, match="no such table"):
            db.session.execute(text("INSERT INTO nowhere VALUES (1)"))
        db.session.rollback()
        assert not turn.held()
        db.session.execute(text("INSERT INTO t VALUES (2)"))
        db.session.remove()  # returned to the pool mid-transaction: reset, turn back
        assert not turn.held()
        # Another thread gets a turn at once.
        done = threading.Event()

        def other() -> None:
            with app.app_context():
                db.session.execute(text("INSERT INTO t VALUES (3)"))
                db.session.commit()
                db.session.remove()
            done.set()

        threading.Thread(target=other).start()
        assert done.wait(5)
        assert not turn.held()
        assert db.session.execute(text("SELECT id FROM t")).scalars().all() == [3]
        db.session.remove()
        db.engine.dispose()


@sqlite_only
def test_the_console_takes_no_writer_turn(tmp_path):
    app = _sqlite_app(tmp_path / "console.db")
    with app.app_context():
        db.session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        db.session.execute(text("INSERT INTO t VALUES (1)"))
        assert not WRITER_TURNS[db.engine].held()
        db.session.commit()
        db.engine.dispose()
