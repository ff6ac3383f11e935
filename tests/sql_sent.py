"""The SQL statements a piece of code sends, for tests that pin how many queries it makes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.engine import Engine


@contextmanager
def sql_sent(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent on `engine` inside the block, in order."""
    sent: list[str] = []

    def count(_conn, _cursor, statement: str, *_args) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)
