"""The Estuary Ops console: `create_app()` builds the Flask app."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from config import Config, config_for_environment


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """Build the app: config, extensions, blueprints, commands."""
    config_class = config_class or config_for_environment()
    config_class.init()
    app = Flask(
        __name__,
        template_folder=os.path.join(os.path.dirname(__file__), "..", "templates"),
        static_folder=os.path.join(os.path.dirname(__file__), "..", "static"),
    )
    app.config.from_object(config_class)
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):
        raise RuntimeError("SECRET_KEY is not set")

    from dashboard.logs import configure_logging

    configure_logging(str(app.config["LOG_LEVEL"]), str(app.config["LOG_FORMAT"]))

    from dashboard.database import activity_threads, engine_options, init_database
    from dashboard.extensions import csrf, db, htmx, login_manager, migrate
    from workers.temporal import registry

    pool_size = int(app.config.get("DATABASE_POOL_SIZE") or 0) or activity_threads(
        int(app.config.get("WORKER_MAX_CONCURRENT_ACTIVITIES", 20)), len(registry.domains())
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
    migrate.init_app(
        app,
        db,
        directory=os.path.join(os.path.dirname(__file__), "..", "migrations"),
        render_as_batch=True,
        compare_type=True,
    )
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)

    import dashboard.models  # noqa: F401  (register every table with the metadata)
    from dashboard.temporal import TemporalGateway

    app.extensions["temporal"] = TemporalGateway(app.config)

    from dashboard.web import init_web

    init_web(app)

    from dashboard.metrics import init_request_metrics

    init_request_metrics(app)

    from dashboard.tracing import init_request_tracing

    init_request_tracing(app)

    from dashboard.views import register_blueprints

    register_blueprints(app)

    from workers.temporal.cli import register_commands

    register_commands(app)
    return app
