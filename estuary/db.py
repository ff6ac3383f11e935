"""The database extensions (Flask-SQLAlchemy `db`, Flask-Migrate `migrate`) and the declarative
`Base`: created unbound here, bound to an app by `estuary.app.init_domain`."""

from collections.abc import Callable
from typing import TypeVar

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
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
