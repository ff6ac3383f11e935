"""The composition root: the one Flask app of an Estuary Ops process.

`create_app()` is the console (`dashboard.create_app`: its blueprints) with every package's
commands, each registered by its owner: `dashboard.register_commands` (seed-demo, users,
audit) and `workers.register_commands` (start workers, trigger workflows, schedules,
deployment, each domain's own); then every state-changing command is wrapped in its audit
event. It is the only module allowed to import both `dashboard` and `workers`,
which otherwise never import each other. `FLASK_APP=estuary_ops` and gunicorn's
`estuary_ops:create_app()` use it.

The commands are registered the first time one is looked up or listed (`flask <command>`,
`flask --help`, a test's CLI runner), not when the app is built: the console serving
requests (gunicorn, `flask run`'s server) never imports `workers`, so no workflow or
activity module is loaded in a console process. The console knows the workflows from the
catalogue (`estuary.contracts.catalogue`), which is data.
"""

from __future__ import annotations

from typing import Any

import click
from flask import Flask
from flask.cli import AppGroup

from config import Config


class _CommandsOnFirstUse(AppGroup):
    """`app.cli`: the app's own commands (the blueprints'), and every package's, which
    are registered on first lookup or listing."""

    def __init__(self, app: Flask, base: AppGroup) -> None:
        super().__init__(base.name)
        self.commands.update(base.commands)
        self._app = app
        self._registered = False

    def _register(self) -> None:
        if self._registered:
            return
        self._registered = True
        import dashboard
        import workers
        from estuary.services.command_audit import audit_commands

        dashboard.register_commands(self._app)
        workers.register_commands(self._app)
        # Last, so it wraps every package's commands (each state-changing one is audited).
        audit_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._register()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._register()
        return super().get_command(ctx, cmd_name)


def create_app(config_class: type[Config] | None = None, **overrides: Any) -> Flask:
    """The console app; its `flask` commands are every package's (registered on first use)."""
    import dashboard

    app = dashboard.create_app(config_class, **overrides)
    app.cli = _CommandsOnFirstUse(app, app.cli)
    return app
