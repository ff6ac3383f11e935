"""Blueprints of the console; `register_blueprints` wires them into the app."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from dashboard.views import health

    app.register_blueprint(health.bp)
