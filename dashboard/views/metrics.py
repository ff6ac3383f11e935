"""`/metrics`: the console's Prometheus metrics (see dashboard.metrics for the names and
who may scrape)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, request

from dashboard.metrics import CONTENT_TYPE, exposition, scrape_refusal

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    refusal = scrape_refusal(request, str(current_app.config.get("METRICS_TOKEN") or ""))
    if refusal:
        abort(403, refusal)
    return Response(exposition(), mimetype=CONTENT_TYPE.split(";")[0], content_type=CONTENT_TYPE)
