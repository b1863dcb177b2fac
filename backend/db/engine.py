"""Engine and session factory for SQLite (embedded) and PostgreSQL (scale-out)."""

from __future__ import annotations

import functools
import select
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Insert, Table, bindparam, create_engine, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    # Operators paste libpq-style URLs; SQLAlchemy needs the psycopg 3 driver named.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Requests run in a thread pool and the worker loop in its own thread.
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=20)
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin_immediate)
    else:
        event.listen(engine, "checkout", _drop_if_closed_by_server)
    return engine


def _drop_if_closed_by_server(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Instead of pool_pre_ping's SELECT 1 on every checkout (a round trip per transaction, a
    few percent of an on-sale's CPU), look at the pooled connection's socket: an idle
    connection has nothing to read unless the server closed it (restart, idle timeout,
    pg_terminate_backend) or sent something unasked. Only then is it pinged for real; a dead
    one makes the pool retry with a new connection, as pre-ping did."""
    if dbapi_connection.closed or dbapi_connection.broken:
        raise exc.DisconnectionError("connection closed")
    readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    if not readable:
        return
    try:
        dbapi_connection.execute("SELECT 1")
        dbapi_connection.rollback()  # back to idle, as the pool hands connections out
    except Exception as error:
        raise exc.DisconnectionError(f"connection closed by the server: {error}") from error


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let pysqlite stop issuing its own BEGIN so ours (IMMEDIATE) is the one that counts.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    # Take the write lock at BEGIN: a read-then-write transaction (holds, queue admission) can
    # then never be overtaken by another writer between its read and its write.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def insert_if_new(session: Session, model: type[Any], values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING of one ``model`` row, on the session's connection;
    True if the row went in, False if a unique key already had one (a concurrent insert of
    the same key waits for the other transaction to end). One statement, where a savepoint
    around a plain INSERT, or a lookup before it, took more."""
    connection = session.connection()
    statement = _insert_if_new_statement(connection.dialect.name, model.__table__, tuple(values))
    # A row back means it was inserted (rowcount is -1 on psycopg once RETURNING is involved).
    return connection.execute(statement, values).first() is not None


@functools.cache
def _insert_if_new_statement(dialect: str, table: Table, columns: tuple[str, ...]) -> Insert:
    """Built once per table and column set: building the statement around the values on every
    call cost an on-sale's checkout and payment webhook more CPU than running it."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (
        insert(table)
        .values({column: bindparam(column) for column in columns})
        .on_conflict_do_nothing()
        .returning(*table.primary_key.columns)
    )
