"""Request plumbing for the console: sign-in loading and session checks, request ids,
security headers, error pages."""

from __future__ import annotations

import re
import uuid
from typing import Any

from flask import (
    Flask,
    Response,
    g,
    jsonify,
    render_template,
    send_from_directory,
    session,
)
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from htmx_flask import request  # flask's request, typed with `request.htmx`
from markupsafe import Markup, escape
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from dashboard import times
from dashboard.extensions import login_manager
from estuary.contracts.inputs import MAX_ID, is_id_text
from estuary.contracts.money import format_money, input_text
from estuary.db import db
from estuary.models import StaffUser

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)


# The navigation: (endpoint, label). An entry shows once its blueprint is registered.
NAV = (
    ("home.index", "Home"),
    ("catalog.index", "Workflows"),
    ("runs.index", "Runs"),
    ("approvals.index", "Approvals"),
    ("practitioners.index", "Practitioners"),
    ("bookings.index", "Bookings"),
    ("payouts.index", "Payouts"),
    ("reconciliation.index", "Reconciliation"),
    ("notifications.index", "Notifications"),
    ("workers_page.index", "Workers"),
    ("schedules.index", "Schedules"),
    ("audit.index", "Audit log"),
    ("staff.index", "Staff"),
)


_WRAP_AFTER = re.compile(r"(?<=[@._:/-])")


def wrap_at_punctuation(value: object) -> Markup:
    """Text (an email, an id) that may wrap after its punctuation and nowhere else, so
    `ada.approver@estuary.local` never breaks in the middle of a word."""
    text = "" if value is None else str(value)
    return Markup("<wbr>").join(escape(piece) for piece in _WRAP_AFTER.split(text))


def format_actor(value: str | None) -> str:
    """A TriggeredBy value for display: `staff:<id>` becomes that person's email."""
    if not value:
        return "-"
    from estuary.services.staff import STAFF_REF, staff_emails_by_ref

    if not STAFF_REF.match(value):
        return value
    if "staff_emails" not in g:  # once per request, however many rows show an actor
        g.staff_emails = staff_emails_by_ref()
    return g.staff_emails.get(value, value)


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in every URL: ASCII digits only, and no larger than the INTEGER
    column the ids live in, so `/practitioners/9223372036854775808` is a 404, not a
    database overflow."""

    regex = r"[0-9]{1,10}"

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def init_web(app: Flask) -> None:
    """Everything the console adds to the app around its blueprints."""
    # Before any blueprint adds a rule: rules pick their converters when added.
    app.url_map.converters["int"] = DatabaseIdConverter
    proxies = int(app.config.get("TRUSTED_PROXY_COUNT", 0))
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    _template_helpers(app)
    _sign_in(app)
    _request_hooks(app)
    _error_handlers(app)


def _template_helpers(app: Flask) -> None:
    """Filters, globals and the navigation the templates use (and the favicon)."""
    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["money_input"] = input_text
    # Times: one format, in the staff member's zone, UTC in the tooltip (dashboard/times.py).
    app.jinja_env.filters["dt"] = times.time_element
    app.jinja_env.filters["dt_text"] = times.format_local
    app.jinja_env.filters["dt_utc"] = times.format_utc
    app.jinja_env.filters["dt_input"] = times.input_value
    app.jinja_env.globals["time_zone_label"] = times.zone_label
    app.jinja_env.globals["time_input_example"] = times.INPUT_EXAMPLE
    app.jinja_env.filters["actor"] = format_actor
    app.jinja_env.filters["wrap_at_punctuation"] = wrap_at_punctuation

    app.jinja_env.globals["running_for"] = times.running_for

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """Browsers and tools that ask for /favicon.ico without reading the page's link."""
        return send_from_directory(
            str(app.static_folder), "favicon.svg", mimetype="image/svg+xml", max_age=86_400
        )

    @app.context_processor
    def navigation() -> dict:
        from dashboard.permissions import can

        items = [(ep, label) for ep, label in NAV if ep in app.view_functions]
        return {"nav_items": items, "can": lambda action: can(current_user, action)}


def _sign_in(app: Flask) -> None:
    """flask-login: where to sign in, and who a session belongs to."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to see this page."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str) -> StaffUser | None:
        if not is_id_text(user_id):
            return None
        from estuary.services.signin import user_and_session

        # The server-side session comes with the user (one query); the session check
        # below uses it instead of reading it again.
        user, g.staff_session = user_and_session(int(user_id), session.get("sid"))
        return user


def _request_hooks(app: Flask) -> None:
    """A request id, the server-side session check, and the security headers."""

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex

    @app.before_request
    def check_server_side_session() -> None:
        if request.endpoint in (
            None,
            "static",
            "health.healthz",
            "health.readyz",
            "metrics.metrics",
        ):
            return
        if not current_user.is_authenticated:
            return
        from estuary.services.signin import session_is_valid

        known = {"row": g.pop("staff_session")} if "staff_session" in g else {}
        if not session_is_valid(session.get("sid"), current_user.id, **known):
            logout_user()
            session.clear()

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if app.config.get("SESSION_COOKIE_SECURE"):
            # Secure cookies mean the console is served over TLS: tell browsers to keep it so.
            response.headers.setdefault(
                "Strict-Transport-Security", "max-age=31536000; includeSubDomains"
            )
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.vary.add("HX-Request")
        if current_user.is_authenticated and request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def _error_handlers(app: Flask) -> None:
    """Error pages in staff words; failed CSRF checks and misrouted changes are audited."""

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        from estuary.services import audit

        db.session.rollback()
        audit.record(
            action=str(request.endpoint or request.path),
            target=request.path,
            outcome="denied",
            detail=f"CSRF check failed: {exc.description}",
        )
        return _error_page(
            400,
            "The form expired or did not come from this console. Reload the page and try again.",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if (
            exc.code in (404, 405)
            and request.method not in ("GET", "HEAD", "OPTIONS")
            and not g.get("audit_recorded")
        ):
            # A change aimed at no route (or the wrong method) is still an attempt.
            from estuary.services import audit

            db.session.rollback()
            audit.record(
                action=str(request.endpoint or "routing")[:80],
                target=request.path,
                outcome="invalid",
                detail=f"refused by routing: {exc.code} {exc.name} ({request.method})",
            )
        return _error_page(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def server_error(exc: Exception):
        db.session.rollback()
        app.logger.exception("unhandled error (request %s)", g.get("request_id"))
        return _error_page(500, "Something went wrong on our side. The error was logged.")


def _error_page(code: int, message: str):
    if request.path.startswith(("/api/", "/healthz", "/readyz", "/metrics")) or (
        request.accept_mimetypes.best == "application/json"
    ):
        return jsonify(error=message, request_id=g.get("request_id", "")), code
    template = "errors/error.html"
    if request.htmx:
        template = "errors/_error_fragment.html"
    return render_template(template, code=code, message=message), code
