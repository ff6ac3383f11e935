"""Sign-in and sign-out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user

from estuary.services import audit, signin

bp = Blueprint("auth", __name__, url_prefix="/auth")


def _safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    if "\\" in target:
        return url_for("home.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated and request.method == "GET":
        return redirect(url_for("home.index"))
    error = None
    email = ""
    status, retry_after = 200, None
    if request.method == "POST":
        email = request.form.get("email", "")
        password = request.form.get("password", "")
        result = signin.authenticate(email, password, request.remote_addr or "")
        if result.user is None:
            error = result.error
            status, retry_after = result.status, result.retry_after
            audit.record(
                action="auth.login",
                target=f"staff:{email.strip().lower()[:254]}",
                outcome="denied",
                detail=error or "",
                actor=email.strip().lower()[:254] or "anonymous",
                role="-",
            )
        else:
            session.clear()  # a new session on every sign-in
            token = signin.start_session(result.user, request.remote_addr or "")
            login_user(result.user)
            session["sid"] = token
            session.permanent = True
            audit.record(
                action="auth.login",
                target=f"staff:{result.user.id}",
                actor=result.user.email,
                role=result.user.role,
            )
            return redirect(_safe_next(request.args.get("next")))
    response = make_response(render_template("auth/login.html", error=error, email=email), status)
    if retry_after:
        response.headers["Retry-After"] = str(retry_after)
    return response


@bp.post("/logout")
@login_required
def logout():
    audit.record(action="auth.logout", target=f"staff:{current_user.id}")
    signin.end_session(session.get("sid"))
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))
