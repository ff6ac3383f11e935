"""The domain's app factory, without HTTP: config, logging and the database.

Workers need a Flask app only for its config and a Flask-SQLAlchemy session per activity
(app context); the console builds on the same setup (`dashboard.create_app`).
"""

from __future__ import annotations

import gc
import os
from typing import Any

from flask import Flask

from config import Config, config_for_environment
from estuary.contracts.domains import DOMAINS

MIGRATIONS = os.path.join(os.path.dirname(__file__), "..", "migrations")


def load_config(app: Flask, config_class: type[Config] | None, overrides: dict[str, Any]) -> None:
    """Settings from `config_class` (default: the environment's), then `overrides`."""
    config_class = config_class or config_for_environment()
    config_class.init()
    app.config.from_object(config_class)
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set")


def init_domain(app: Flask) -> None:
    """Bind logging, the database (engine sized to the worker threads) and migrations."""
    from estuary.logs import configure_logging

    configure_logging(str(app.config["LOG_LEVEL"]), str(app.config["LOG_FORMAT"]))

    from estuary.database import activity_threads, engine_options, init_database
    from estuary.db import db, migrate

    pool_size = int(app.config.get("DATABASE_POOL_SIZE") or 0) or activity_threads(
        int(app.config.get("WORKER_MAX_CONCURRENT_ACTIVITIES", 20)), len(DOMAINS)
    )
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        **engine_options(
            app.config["SQLALCHEMY_DATABASE_URI"],
            pool_size=pool_size,
            busy_timeout_seconds=float(app.config.get("DATABASE_BUSY_TIMEOUT_SECONDS", 15)),
        ),
        **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}),
    }
    db.init_app(app)
    with app.app_context():
        init_database(app, db.engine)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True, compare_type=True)

    import estuary.models  # noqa: F401  (register every table with the metadata)


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """A Flask app with the domain set up and no HTTP side (no blueprints, no sign-in)."""
    app = Flask(__name__)
    load_config(app, config_class, overrides)
    init_domain(app)
    return app


def freeze_long_lived_objects() -> int:
    """Move what a process holds once it is ready out of the garbage collector's walks.

    A console process (after its warm-up) and a worker (once built) hold modules, the app,
    its clients and compiled templates or validated workflows for as long as they live,
    and a full collection used to walk all of them every time. Garbage is collected
    first: a frozen cycle is never freed. Returns how many objects are frozen.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
