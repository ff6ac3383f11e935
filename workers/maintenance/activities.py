"""Maintenance activities: thin calls into the sign-in and audit services.

(`flask.current_app` is reached through the module, never imported by name: the registry
scans this module's globals, and touching the proxy outside an app context fails.)"""

from __future__ import annotations

from datetime import timedelta

import flask
from temporalio.exceptions import ApplicationError

from estuary.contracts.maintenance import AnchorResult, PruneResult
from estuary.services import audit, signin
from workers.temporal.base_activities import read_activity


@read_activity
def prune_signin_records() -> PruneResult:
    """Delete sign-in attempts and ended sessions older than SIGNIN_RETENTION_DAYS (the
    audit log keeps every sign-in), and counters that no longer limit anyone."""
    days = int(flask.current_app.config["SIGNIN_RETENTION_DAYS"])
    gone = signin.prune(timedelta(days=days))
    return PruneResult(gone["login_attempts"], gone["sessions"], gone["counters"])


@read_activity
def anchor_audit_head() -> AnchorResult:
    """Append the audit chain head to AUDIT_ANCHOR_PATH (idempotent: an unchanged head is
    not written twice, so a retried activity adds nothing)."""
    try:
        anchor = audit.anchor_head()
    except audit.AnchorError as exc:
        # A tampered anchor file does not heal by retrying: fail the run for ops to see.
        raise ApplicationError(
            f"audit anchor refused: {exc} (run `flask audit verify`)",
            type="AuditAnchorTampered",
            non_retryable=True,
        ) from None
    if anchor is None:
        return AnchorResult()
    return AnchorResult(seq=anchor.seq, line=anchor.line)
