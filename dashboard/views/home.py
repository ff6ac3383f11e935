"""Home: what needs attention now."""

from __future__ import annotations

from flask import Blueprint, render_template

from dashboard.permissions import require

bp = Blueprint("home", __name__)


@bp.get("/")
@require("view")
def index():
    from dashboard.services.overview import database_overview

    return render_template("home/index.html", overview=database_overview())
