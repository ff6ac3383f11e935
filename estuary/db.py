"""The database extensions (Flask-SQLAlchemy `db`, Flask-Migrate `migrate`) and the declarative
`Base`: created unbound here, bound to an app by `estuary.app.init_domain`."""

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, Row, Update, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase

T = TypeVar("T")


class Base(DeclarativeBase):
    # Named constraints so migrations are stable on SQLite and PostgreSQL alike.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


db = SQLAlchemy(model_class=Base)
migrate = Migrate()


def add_once(row: T, find: Callable[[], T | None]) -> tuple[T, bool]:
    """Add `row`, which a unique key (an idempotency key) makes one of a kind, in a
    savepoint. When a concurrent transaction wrote the same key first, the unique
    constraint refuses ours and the row already there (`find()`) is returned instead.
    Returns (the row, True if this call added it)."""
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        existing = find()
        if existing is None:
            raise
        return existing, False
    return row, True


@functools.cache
def _row_lock(model: type, returning: tuple[str, ...] = ()) -> Update:
    """A no-op UPDATE of one row (`SET id = id`, the id a parameter `row_id`): it takes the
    row lock on PostgreSQL and the write lock on SQLite (where SELECT ... FOR UPDATE does
    nothing), so writers of that row (a balance, a package, a subscription) take turns.
    On the model's table (Core), returning the named columns, if any. Built once per model
    and columns: statements are immutable, and building one cost more CPU than running
    it."""
    table = model.__table__  # type: ignore[attr-defined]
    statement = update(table).where(table.c.id == bindparam("row_id")).values(id=table.c.id)
    return statement.returning(*(table.c[name] for name in returning)) if returning else statement


def lock_row(model: type, row_id: int) -> None:
    """Take the row lock (`_row_lock`) on one row until the transaction ends."""
    db.session.execute(_row_lock(model), {"row_id": row_id})


def lock_and_read_row(model: type, row_id: int, columns: tuple[str, ...]) -> Row[Any] | None:
    """`lock_row` that also reads the named columns of the row, in the same statement
    (UPDATE ... RETURNING, PostgreSQL and SQLite alike): a row with those attributes, or
    None when there is no such row. No ORM object is loaded."""
    return db.session.execute(_row_lock(model, columns), {"row_id": row_id}).first()


def insert_unless_present(model: type, values: Mapping[str, Any], key: str) -> tuple[int, bool]:
    """Insert one row of `model` unless a row with the same unique `key` column exists:
    (its id, True) for the new row, (the existing row's id, False) when the key was there.

    One statement for a new row (`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id`,
    PostgreSQL and SQLite alike) where `add_once` takes a savepoint, an ORM flush and its
    release; one more, the read of the existing id, for a repeat. The same guarantee under
    concurrency: on PostgreSQL an insert of a key another transaction has inserted but not
    committed waits for it, then does nothing if it committed; on SQLite writers are
    serialised. A Core statement on the model's table (the ORM's bulk-insert path around it
    cost more than the statement): column defaults apply, the session is not flushed
    first, and the row is not in the session's identity map until read.
    """
    statement = insert_unless_present_statement(db.session.get_bind().dialect.name, model, key)
    created = db.session.scalar(statement, dict(values))
    if created is not None:
        return created, True
    table = model.__table__  # type: ignore[attr-defined]
    existing = db.session.scalar(select(table.c.id).where(table.c[key] == values[key]))
    if existing is None:  # the conflict was on another unique column
        raise IntegrityError(str(statement), dict(values), Exception(f"{key} not found"))
    return existing, False


@functools.cache
def insert_unless_present_statement(dialect: str, model: type, key: str) -> Any:
    """`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id` on `model`'s table, its values
    given when it runs: built once per dialect, model and key (statements are immutable;
    the columns come from the parameters, so one statement serves every set of values).
    For a caller that runs it on a connection of its own (`insert_unless_present` runs it
    in the session); no row comes back when the key was there."""
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise RuntimeError(f"insert_unless_present: no ON CONFLICT support for {dialect}")
    table = model.__table__  # type: ignore[attr-defined]
    return insert(table).on_conflict_do_nothing(index_elements=[key]).returning(table.c.id)
