"""Who may do what: the one permissions matrix of the console.

Every view that reads or changes anything names an action from `MATRIX`; the staff page
shows this table. The UI hiding a button is never the check: `require()` is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, request
from flask_login import current_user

F = TypeVar("F", bound=Callable[..., Any])

ROLE_ORDER = ("viewer", "operator", "approver", "admin")

# action -> roles allowed, with a short description for the staff page.
MATRIX: dict[str, tuple[frozenset[str], str]] = {
    "view": (frozenset(ROLE_ORDER), "See runs, domain pages, approvals queue, audit log"),
    "export_audit": (frozenset(ROLE_ORDER), "Download the audit log as CSV"),
    "start_workflow": (frozenset({"operator", "approver", "admin"}), "Start workflows"),
    "signal": (
        frozenset({"operator", "approver", "admin"}),
        "Domain actions: mark sessions, review documents, extend steps, renewal actions",
    ),
    "cancel": (frozenset({"operator", "approver", "admin"}), "Cancel a run or a booking"),
    "retry": (frozenset({"operator", "approver", "admin"}), "Run a failed run again"),
    "approve_payout": (
        frozenset({"approver", "admin"}),
        "Approve or reject payouts (never one's own request)",
    ),
    "terminate": (frozenset({"admin"}), "Terminate a run"),
    "reset": (frozenset({"admin"}), "Reset a run to an earlier point"),
    "manage_schedules": (frozenset({"admin"}), "Pause, resume, trigger schedules"),
    "manage_staff": (frozenset({"admin"}), "Create users, set roles, disable, reset passwords"),
}


def can(user: Any, action: str) -> bool:
    if action not in MATRIX:
        raise KeyError(f"unknown action {action!r}")
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return user.role in MATRIX[action][0]


_PLURAL = {"viewer": "viewers", "operator": "operators", "approver": "approvers", "admin": "admins"}
_ARTICLE = {
    "viewer": "a viewer",
    "operator": "an operator",
    "approver": "an approver",
    "admin": "an admin",
}


def denial_message(user: Any, action: str) -> str:
    """What a 403 says, in staff words: which roles may do it and which role you have."""
    roles = [r for r in ROLE_ORDER if r in MATRIX[action][0]]
    names = [_PLURAL[r] for r in roles]
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    what = MATRIX[action][1]
    what = what[:1].lower() + what[1:]
    role = getattr(user, "role", "") or ""
    you = f"You are signed in as {_ARTICLE.get(role, role)}"
    name = getattr(user, "name", "") or getattr(user, "email", "")
    if name:
        you += f" ({name})"
    return (
        f"Only {who} can {what}. {you}; an admin can give you the "
        f"{roles[0]} role on the Staff page if your work needs it."
    )


def require(action: str) -> Callable[[F], F]:
    """View decorator: sign-in required, then `action` must be allowed for the role.

    A denial is audited (outcome "denied") before the 403.
    """
    if action not in MATRIX:
        raise KeyError(f"unknown action {action!r}")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from dashboard.extensions import login_manager

            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not can(current_user, action):
                from estuary.services import audit

                audit.record(
                    action=f"{request.endpoint}",
                    target=request.path,
                    outcome="denied",
                    detail=f"role {current_user.role} may not {action}",
                )
                abort(403, denial_message(current_user, action))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def matrix_rows() -> list[tuple[str, str, dict[str, bool]]]:
    """(action, description, {role: allowed}) for the staff page."""
    return [
        (action, desc, {role: role in roles for role in ROLE_ORDER})
        for action, (roles, desc) in MATRIX.items()
    ]
