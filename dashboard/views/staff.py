"""Staff admin: the users and the permissions matrix for everyone to read; creating
users, setting roles and approver limits, disabling (their sessions end at once) and
resetting passwords for admins only.

An admin cannot disable themselves or change their own role (another admin must), so the
console can never be left without an admin by accident.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from dashboard.permissions import ROLE_ORDER, matrix_rows
from dashboard.writes import form_params, guard, record, record_invalid
from estuary.contracts.inputs import parse_money
from estuary.db import db
from estuary.models import ROLES, StaffUser
from estuary.services import signin
from estuary.services.staff import StaffError, create_user, validate_password

bp = Blueprint("staff", __name__, url_prefix="/staff")


def _users() -> list[StaffUser]:
    return list(db.session.scalars(select(StaffUser).order_by(StaffUser.email)))


def _render(
    errors: dict[str, str] | None = None,
    values: dict | None = None,
    focus: int | None = None,
    status: int = 200,
):
    return (
        render_template(
            "staff/index.html",
            users=_users(),
            roles=ROLES,
            role_order=ROLE_ORDER,
            matrix=matrix_rows(),
            errors=errors or {},
            values=values or {},
            focus=focus,
        ),
        status,
    )


def _parse_limit(raw: str | None) -> tuple[int | None, str | None]:
    """An approver limit typed as an amount; empty means none of the user's own."""
    if not (raw or "").strip():
        return None, None
    try:
        return parse_money(raw or ""), None
    except ValueError as exc:
        return None, str(exc)


def _user_or_404(user_id: int) -> StaffUser:
    user = db.session.get(StaffUser, user_id)
    if user is None:
        abort(404)
    return user


def _done(message: str, **audit: Any) -> ResponseReturnValue:
    """Audit a successful change, tell the admin, and go back to the staff list."""
    record("success", **audit)
    flash(message, "success")
    return redirect(url_for("staff.index"), code=303)


@bp.get("/")
@guard("view")
def index():
    return _render()


@bp.post("/create")
@guard("manage_staff")
def create():
    form = request.form
    values = {k: form.get(k, "") for k in ("email", "name", "role", "approval_limit")}
    params = form_params(form, keep={"email", "name", "role", "approval_limit"})
    target = f"staff:{str(values['email']).strip().lower()[:254]}"
    limit, limit_error = _parse_limit(form.get("approval_limit"))
    errors: dict[str, str] = {}
    if limit_error:
        errors["approval_limit"] = limit_error
    password = str(form.get("password", ""))
    user = None
    if not errors:
        try:
            user = create_user(
                email=str(form.get("email", "")),
                name=str(form.get("name", "")),
                role=str(form.get("role", "")),
                password=password,
            )
        except StaffError as exc:
            db.session.rollback()
            errors[exc.field or "email"] = exc.message
    if errors or user is None:
        record_invalid(target, errors, params=params)
        return _render(errors, values, status=422)
    if limit is not None:
        user.approval_limit_cents = limit
    return _done(
        f"Created {user.email} ({user.role}).",
        target=f"staff:{user.id}",
        params={**params, "password": "set"},
        detail=f"created {user.email} as {user.role}",
    )


@bp.post("/<int:user_id>/role")
@guard("manage_staff")
def set_role(user_id: int):
    user = _user_or_404(user_id)
    target = f"staff:{user.id}"
    role = str(request.form.get("role", ""))
    limit, limit_error = _parse_limit(request.form.get("approval_limit"))
    params = form_params(request.form, keep={"role", "approval_limit"})
    errors: dict[str, str] = {}
    if role not in ROLES:
        errors["role"] = f"role must be one of: {', '.join(ROLES)}"
    if limit_error:
        errors["approval_limit"] = limit_error
    if user.id == current_user.id and role != user.role:
        errors["role"] = "you cannot change your own role; ask another admin"
    if errors:
        record_invalid(target, errors, params=params)
        return _render(errors, dict(request.form), focus=user.id, status=422)
    old = (user.role, user.approval_limit_cents)
    user.role = role
    user.approval_limit_cents = limit
    ended = 0
    if old[0] != role:
        # A new role applies to a fresh sign-in, never to a session opened under the old one.
        ended = signin.end_user_sessions(user.id)
    return _done(
        f"{user.email}: role {role}.",
        target=target,
        params=params,
        detail=f"role {old[0]} -> {role}; limit {old[1]} -> {limit}; {ended} sessions ended",
    )


@bp.post("/<int:user_id>/disable")
@guard("manage_staff")
def disable(user_id: int):
    user = _user_or_404(user_id)
    target = f"staff:{user.id}"
    if user.id == current_user.id:
        record("invalid", target=target, detail="an admin cannot disable themselves")
        return _render(
            {"disable": "you cannot disable yourself; ask another admin"}, focus=user.id, status=422
        )
    user.disabled = True
    ended = signin.end_user_sessions(user.id)
    return _done(
        f"Disabled {user.email}; {ended} session(s) ended.",
        target=target,
        detail=f"disabled {user.email}; {ended} sessions ended",
    )


@bp.post("/<int:user_id>/enable")
@guard("manage_staff")
def enable(user_id: int):
    user = _user_or_404(user_id)
    user.disabled = False
    return _done(
        f"Enabled {user.email}.", target=f"staff:{user.id}", detail=f"enabled {user.email}"
    )


@bp.post("/<int:user_id>/password")
@guard("manage_staff")
def reset_password(user_id: int):
    user = _user_or_404(user_id)
    target = f"staff:{user.id}"
    password = str(request.form.get("password", ""))
    try:
        validate_password(password)
    except StaffError as exc:
        record("invalid", target=target, params={"password": "[redacted]"}, detail=exc.message)
        return _render({f"password-{user.id}": exc.message}, focus=user.id, status=422)
    user.set_password(password)
    ended = signin.end_user_sessions(user.id)
    return _done(
        f"New password set for {user.email}; their sessions ended.",
        target=target,
        params={"password": "[redacted]"},
        detail=f"password reset for {user.email}; {ended} sessions ended",
    )
