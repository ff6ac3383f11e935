"""Blueprints of the console; `register_blueprints` wires them into the app."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from dashboard.views import auth, health, home

    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(home.bp)
