"""`/healthz` (the process is up) and `/readyz` (database and Temporal reachable)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from dashboard.extensions import csrf, db
from dashboard.gateway import gateway
from dashboard.temporal import GatewayError

bp = Blueprint("health", __name__)
csrf.exempt(bp)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    problems: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        db.session.rollback()
        problems["database"] = f"unreachable: {type(exc).__name__}"
    try:
        gateway().check()
    except GatewayError as exc:
        problems["temporal"] = exc.message
    if problems:
        return jsonify(status="unavailable", problems=problems), 503
    return jsonify(status="ok", database="ok", temporal="ok")
