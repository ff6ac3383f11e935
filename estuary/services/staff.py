"""Staff accounts: creation and validation (the admin pages build on this)."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from estuary.db import db
from estuary.models import ROLES, StaffUser

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}$")
MIN_PASSWORD_LENGTH = 12


# What Temporal's TriggeredBy search attribute holds for a staff member: search
# attributes stay in clear in Temporal (it indexes them), so no email goes there.
STAFF_REF = re.compile(r"^staff:(\d{1,18})$")


def staff_ref(user: StaffUser) -> str:
    return f"staff:{user.id}"


def staff_emails_by_ref() -> dict[str, str]:
    """`staff:<id>` -> email for every staff account (a small table: one query)."""
    rows = db.session.execute(select(StaffUser.id, StaffUser.email))
    return {f"staff:{uid}": email for uid, email in rows}


class StaffError(Exception):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise StaffError(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if len(password) > 256:
        raise StaffError("password must be at most 256 characters", field="password")


def create_user(*, email: str, name: str, role: str, password: str) -> StaffUser:
    """Create and commit a staff user; refuses a bad email, role, weak password or duplicate."""
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise StaffError(f"{email!r} is not an email address", field="email")
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}", field="role")
    name = name.strip()
    if not name or len(name) > 200:
        raise StaffError("name is required (at most 200 characters)", field="name")
    validate_password(password)
    taken = db.session.scalar(select(StaffUser.id).where(func.lower(StaffUser.email) == email))
    if taken is not None:
        raise StaffError(f"{email} already has an account", field="email")
    user = StaffUser(email=email, name=name, role=role)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user
