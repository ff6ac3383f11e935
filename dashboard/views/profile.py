"""The signed-in staff member's own profile: who they are, and the time zone the console
shows times in (dashboard/times.py). Until they choose one, the first page their browser
loads saves the browser's zone here (static/js/app.js), once."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from dashboard import times
from dashboard.writes import guard, record
from estuary.db import db

bp = Blueprint("profile", __name__, url_prefix="/profile")


@bp.get("")
@guard("view")
def index():
    return render_template(
        "profile/index.html",
        zones=times.zone_names(),
        current_zone=current_user.time_zone or "",
        error=None,
        now=datetime.now(UTC),
    )


@bp.post("/time-zone")
@guard("view")
def set_time_zone():
    """Save the zone picked on the profile, or (with `from_browser`) the browser's zone
    when none is saved yet; a zone that is no IANA zone changes nothing."""
    raw = str(request.form.get("time_zone") or "").strip()[: times.MAX_ZONE_LENGTH + 1]
    from_browser = request.form.get("from_browser") == "yes"
    target = f"staff:{current_user.id}"
    params = {"time_zone": raw, "from_browser": "yes" if from_browser else "no"}
    if times.zone_or_none(raw) is None:
        record("invalid", target=target, params=params, detail="not a time zone")
        message = f"{raw!r} is not a time zone; pick one from the list (e.g. Europe/Paris)."
        if from_browser:
            return {"saved": False, "message": message}, 422
        return (
            render_template(
                "profile/index.html",
                zones=times.zone_names(),
                current_zone=current_user.time_zone or "",
                error=message,
                now=datetime.now(UTC),
            ),
            422,
        )
    if from_browser and current_user.time_zone:
        # The staff member chose one already (perhaps on another device): theirs stands.
        return {"saved": False, "time_zone": current_user.time_zone}, 200
    before = current_user.time_zone
    current_user.time_zone = raw
    db.session.commit()
    record(
        "success",
        target=target,
        params=params,
        detail=f"time zone {before or 'none'} -> {raw}",
    )
    if from_browser:
        return {"saved": True, "time_zone": raw}, 200
    flash(f"Times are now shown in {raw}.", "success")
    return redirect(url_for("profile.index"), code=303)
