"""Activity utilities: the Flask app binding and the `app_activity` and
`transactional_activity` decorators (the Flask form of the guide's `django_activity`);
`read_activity` and `write_activity` stack them with `activity.defn` and
`monitored_activity`, the way every sync domain activity is declared.

Sync activities run on the worker's thread pool. Each call gets its own Flask app context,
so each gets its own SQLAlchemy session (flask-sqlalchemy scopes sessions by app context).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flask import Flask, g
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from estuary.db import db
from estuary.services.errors import BusinessRuleError, ExpectedFailure
from workers.temporal.decorators import monitored_activity

T = TypeVar("T")
B = TypeVar("B")


def as_kwargs(inp: Any) -> dict[str, Any]:
    """An activity input's fields by name, as they are (nested dataclasses stay objects,
    unlike `dataclasses.asdict`): for the activity whose service takes exactly its
    input's fields, `return service.call(**as_kwargs(inp))`."""
    return {f.name: getattr(inp, f.name) for f in dataclasses.fields(inp)}


class _Binding(Generic[B]):
    """One process-wide value the activities use, set once by the worker."""

    def __init__(self, missing: str) -> None:
        self.value: B | None = None
        self.missing = missing

    def get(self) -> B:
        if self.value is None:
            raise RuntimeError(self.missing)
        return self.value


_app: _Binding[Flask] = _Binding("no Flask app bound for activities; call bind_app(app) first")
_client: _Binding[Client] = _Binding(
    "no Temporal client bound for activities; call bind_client first"
)


def bind_app(app: Flask) -> None:
    """Bind the Flask app whose context activities run in (done once by the worker)."""
    _app.value = app


def bound_app() -> Flask:
    return _app.get()


def bind_client(client: Client | None) -> None:
    """Bind the worker's Temporal client for the few async activities that signal or
    start other workflows (signal-with-start across domains); None releases it."""
    _client.value = client


def bound_client() -> Client:
    return _client.get()


def app_activity(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a sync activity inside its own Flask app context.

    A `BusinessRuleError` from the services becomes a non-retryable ApplicationError
    carrying the same message and type name; another `ExpectedFailure` (a provider briefly
    down) a retryable one under its class name, so `monitored_activity` logs both as one
    line (see workers.temporal.failures).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> T:
        with bound_app().app_context():
            # An audit event written here comes from a worker, not a command line.
            g.audit_origin = "worker"
            try:
                return fn(*args)
            except BusinessRuleError as exc:
                raise ApplicationError(exc.message, type=exc.type_name, non_retryable=True) from exc
            except ExpectedFailure as exc:
                raise ApplicationError(str(exc), type=type(exc).__name__) from exc
            finally:
                db.session.remove()

    return wrapper


def transactional_activity(fn: Callable[..., T]) -> Callable[..., T]:
    """Run the activity body in one database transaction: commit on success, else roll back.

    Must sit inside `app_activity` (it needs the app context).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any) -> T:
        try:
            result = fn(*args)
            db.session.commit()
            return result
        except BaseException:
            db.session.rollback()
            raise

    return wrapper


def read_activity(fn: Callable[..., T]) -> Callable[..., T]:
    """A sync activity named after its function, monitored, in its own app context."""
    return activity.defn(name=fn.__name__)(monitored_activity(app_activity(fn)))


def write_activity(fn: Callable[..., T]) -> Callable[..., T]:
    """`read_activity` whose body runs in one transaction (commit or roll back)."""
    return read_activity(transactional_activity(fn))
