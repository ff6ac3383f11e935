"""The audit trail: one append-only event per staff action, hash-chained.

Each event's hash covers its content and the previous event's hash; `prev_hash` is
unique, so two writers can never both extend the same event (the loser retries on the
new head). `verify()` recomputes the chain and names the first row that does not fit,
which finds an edited, inserted or deleted row.

`record()` writes in the caller's session and commits: a view's domain change and its
audit event commit together; on a failure path the view rolls back first, then records.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from flask import g, has_request_context, request
from flask_login import current_user
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from dashboard.extensions import db
from dashboard.models import AuditEvent
from dashboard.models.base import utcnow

GENESIS = "0" * 64
# "pending": sent, but not confirmed (no worker answered in time); the real outcome is a
# later event naming the same update id.
OUTCOMES = ("success", "denied", "error", "invalid", "pending")
SECRET_KEYS = re.compile(
    r"password|passphrase|secret|token|csrf|api_?key|private_?key|authorization", re.IGNORECASE
)
MAX_PARAM_LENGTH = 500


def redact(params: dict[str, Any] | None) -> dict[str, Any]:
    """Drop secrets and clip long values before they are kept forever."""
    out: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if SECRET_KEYS.search(str(key)):
            out[key] = "[redacted]"
        elif isinstance(value, str) and len(value) > MAX_PARAM_LENGTH:
            out[key] = value[:MAX_PARAM_LENGTH] + "…"
        else:
            out[key] = value
    return out


def _digest(event: AuditEvent) -> str:
    body = json.dumps(
        {
            "occurred_at": event.occurred_at.isoformat(),
            "actor": event.actor,
            "role": event.role,
            "action": event.action,
            "target": event.target,
            "params": event.params_json,
            "reason": event.reason,
            "outcome": event.outcome,
            "detail": event.detail,
            "client_addr": event.client_addr,
            "request_id": event.request_id,
            "prev_hash": event.prev_hash,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(
    *,
    action: str,
    target: str = "",
    outcome: str = "success",
    params: dict[str, Any] | None = None,
    reason: str = "",
    detail: str = "",
    actor: str | None = None,
    role: str | None = None,
) -> AuditEvent:
    """Append one event (and commit the session)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if actor is None:
        authenticated = has_request_context() and current_user.is_authenticated
        actor = current_user.email if authenticated else "anonymous"
        role = current_user.role if authenticated else "-"
    client_addr = request.remote_addr or "" if has_request_context() else "cli"
    request_id = getattr(g, "request_id", "") if has_request_context() else ""
    params_json = json.dumps(redact(params), sort_keys=True, default=str)
    for _ in range(10):
        if db.engine.dialect.name == "postgresql":
            db.session.execute(text("SELECT pg_advisory_xact_lock(727274)"))
        head = db.session.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
        event = AuditEvent(
            occurred_at=utcnow(),
            actor=actor[:254],
            role=(role or "-")[:20],
            action=action[:80],
            target=target[:300],
            params_json=params_json,
            reason=reason[:1000],
            outcome=outcome,
            detail=detail[:1000],
            client_addr=client_addr[:64],
            request_id=request_id[:64],
            prev_hash=head.hash if head else GENESIS,
        )
        event.hash = _digest(event)
        try:
            with db.session.begin_nested():
                db.session.add(event)
        except IntegrityError:
            continue  # another writer extended the chain first: retry on the new head
        db.session.commit()
        return event
    raise RuntimeError("could not append to the audit chain after 10 tries")


@dataclass(frozen=True)
class ChainCheck:
    ok: bool
    events: int
    problem: str = ""
    event_id: int | None = None


def verify() -> ChainCheck:
    """Recompute the whole chain in id order."""
    prev = GENESIS
    count = 0
    for event in db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).yield_per(500):
        count += 1
        if event.prev_hash != prev:
            return ChainCheck(
                False,
                count,
                "previous hash does not match: a row was removed or inserted",
                event.id,
            )
        if _digest(event) != event.hash:
            return ChainCheck(
                False, count, "content does not match its hash: the row was edited", event.id
            )
        prev = event.hash
    return ChainCheck(True, count)
