"""The composition root: the one Flask app of an Estuary Ops process.

`create_app()` is the console (`dashboard.create_app`: blueprints and console) plus the
worker commands (`workers.register_commands`: start workers, trigger workflows, schedules,
domain commands). It is the only module allowed to import both `dashboard` and `workers`,
which otherwise never import each other. `FLASK_APP=estuary_ops` and gunicorn's
`estuary_ops:create_app()` use it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from config import Config


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """The console app with every command registered."""
    from dashboard import create_app as create_console
    from workers import register_commands

    app = create_console(config_class, **overrides)
    register_commands(app)
    return app
