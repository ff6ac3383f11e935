"""`/healthz` (the process is up) and `/readyz` (the database serves a real table read in
time, and Temporal answers)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from dashboard.extensions import csrf
from estuary.database import read_staff_table
from estuary.db import db
from temporal_gateway.access import gateway
from temporal_gateway.gateway import GatewayError

bp = Blueprint("health", __name__)
csrf.exempt(bp)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    problems: dict[str, str] = {}
    timeout = float(current_app.config.get("READYZ_DATABASE_TIMEOUT_SECONDS", 2))
    try:
        read_staff_table(db.engine, timeout)
    except Exception as exc:  # any driver error means "not ready"
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        problems["database"] = (
            f"cannot read the staff table within {timeout:g} s: {type(exc).__name__}: {cause}"
        )
    try:
        gateway().check()
    except GatewayError as exc:
        problems["temporal"] = exc.message
    if problems:
        return jsonify(status="unavailable", problems=problems), 503
    return jsonify(status="ok", database="ok", temporal="ok")
