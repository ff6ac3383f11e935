"""Access to this process's TemporalGateway (`gateway()`), swappable in tests."""

from __future__ import annotations

from flask import Flask, current_app

from temporal_gateway.gateway import TemporalGateway


def gateway(app: Flask | None = None) -> TemporalGateway:
    return (app or current_app).extensions["temporal"]


def set_gateway(app: Flask, gw: TemporalGateway) -> None:
    old = app.extensions.get("temporal")
    app.extensions["temporal"] = gw
    if old is not None and old is not gw:
        old.close()
