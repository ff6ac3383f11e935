"""The Estuary Ops console: `create_app()` builds the console's Flask app (domain setup,
sign-in, CSRF, htmx, the Temporal gateway, blueprints, console commands).

The process's app, with the worker commands as well, is `estuary_ops.create_app()`.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from config import Config


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """Build the console app: config, domain, extensions, gateway, blueprints, commands."""
    from estuary.app import init_domain, load_config

    app = Flask(
        __name__,
        template_folder=os.path.join(os.path.dirname(__file__), "..", "templates"),
        static_folder=os.path.join(os.path.dirname(__file__), "..", "static"),
    )
    load_config(app, config_class, overrides)
    init_domain(app)

    from dashboard.extensions import csrf, htmx, login_manager

    login_manager.init_app(app)
    _audit_the_signed_in_user(app)
    csrf.init_app(app)
    htmx.init_app(app)

    from temporal_gateway.gateway import TemporalGateway

    app.extensions["temporal"] = TemporalGateway(app.config)

    from dashboard.web import init_web

    init_web(app)

    from dashboard.metrics import init_request_metrics

    init_request_metrics(app)

    from dashboard.tracing import init_request_tracing

    init_request_tracing(app)

    from dashboard.views import register_blueprints

    register_blueprints(app)

    from dashboard.domain_pages import register_template_helpers
    from dashboard.presentation import live, run_progress
    from dashboard.presentation.run_panels import register_template_globals

    register_template_globals(app)
    run_progress.register_template_globals(app)
    live.register_template_globals(app)
    register_template_helpers(app)
    return app


def _audit_the_signed_in_user(app: Flask) -> None:
    """The audit log names the signed-in user (and their role) as a request's actor."""
    from flask_login import current_user

    from estuary.services import audit

    def request_actor() -> tuple[str, str]:
        if current_user.is_authenticated:
            return current_user.email, current_user.role
        return "anonymous", "-"

    audit.set_request_actor(app, request_actor)


def register_commands(app: Flask) -> None:
    """Register the console's `flask` commands (`dashboard.commands`)."""
    from dashboard.commands import register_commands as register

    register(app)
