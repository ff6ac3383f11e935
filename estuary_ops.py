"""The composition root: the one Flask app of an Estuary Ops process.

`create_app()` is the console (`dashboard.create_app`: its blueprints) with every package's
commands, each registered by its owner: `dashboard.register_commands` (seed-demo, users,
audit) and `workers.register_commands` (start workers, trigger workflows, schedules,
deployment, each domain's own); then every state-changing command is wrapped in its audit
event. It is the only module allowed to import both `dashboard` and `workers`,
which otherwise never import each other. `FLASK_APP=estuary_ops` and gunicorn's
`estuary_ops:create_app()` use it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from config import Config


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """The console app with every command registered."""
    import dashboard
    import workers
    from estuary.contracts import catalogue
    from estuary.services.command_audit import audit_commands
    from workers.temporal import registry

    catalogue.install(registry)
    app = dashboard.create_app(config_class, **overrides)
    dashboard.register_commands(app)
    workers.register_commands(app)
    # Last, so it wraps every package's commands (each state-changing one is audited).
    audit_commands(app.cli)
    return app
