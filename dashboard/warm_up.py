"""Make a console process ready before it serves anyone (gunicorn's `post_worker_init`).

A fresh process compiles each Jinja template on the first request that renders it (53 of
them: about 15 ms each, 0.8 s in all on this machine), opens its first database
connection and connects its Temporal client on first use. gunicorn recycles every
process after `max_requests` requests, so without this the first staff requests after
each recycle paid those costs. Warming happens before the process accepts a connection;
the other processes serve meanwhile. Nothing here can stop a process from starting: a
database or Temporal that does not answer is logged and found again by the first request.

Last, what the process holds once ready (modules, the app, compiled templates, the
clients: about 160,000 objects) is moved out of the garbage collector's sight
(`gc.freeze`). Those objects live as long as the process, but Python's collector walked
all of them on every full collection: one every few dozen pages, 50-100 ms each on
this machine, 2.4 ms a page on average for the runs page (and a page that met one was
the slow one). Frozen, a full collection walks only what requests made since.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from estuary.app import freeze_long_lived_objects
from estuary.db import db
from temporal_gateway.access import gateway
from temporal_gateway.errors import GatewayError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WarmUp:
    templates: int
    database: str  # "ok" or why not
    temporal: str  # "ok" or why not
    seconds: float
    frozen_objects: int  # what the garbage collector no longer walks (`gc.freeze`)


def warm_up(app: Flask) -> WarmUp:
    """Compile every template, open a database connection, connect to Temporal."""
    started = time.monotonic()
    with app.app_context():
        names = app.jinja_env.list_templates(filter_func=lambda name: name.endswith(".html"))
        for name in names:
            app.jinja_env.get_template(name)
        try:
            db.session.execute(text("SELECT 1"))
            database = "ok"
        except SQLAlchemyError as exc:
            database = f"not reached ({type(exc).__name__})"
        finally:
            db.session.remove()
        try:
            gateway(app).check()
            temporal = "ok"
        except GatewayError as exc:
            temporal = f"not reached ({exc.message})"
    frozen = freeze_long_lived_objects()
    done = WarmUp(len(names), database, temporal, time.monotonic() - started, frozen)
    log.info(
        "console process ready: %d templates compiled, database %s, Temporal %s, %d objects "
        "frozen, in %.2fs",
        done.templates,
        done.database,
        done.temporal,
        done.frozen_objects,
        done.seconds,
    )
    return done
