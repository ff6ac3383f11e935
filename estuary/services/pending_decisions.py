"""Payout decisions the console could only report as "pending delivery" (no worker
answered in time), and their real outcome once it is known.

The console audits such a decision with outcome `pending` and its Temporal update id. When
a worker applies it, the decision activity audits `payouts.decision_applied` with the same
id. A decision the workflow refuses never reaches an activity, so the payout sweep asks
Temporal about the pending ones (by update id) and audits `payouts.decision_refused`
(refused by the workflow's checks, or dropped because its run ended first). Nothing here
calls Temporal: the sweep's activities do, with these as their database side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from estuary.db import db
from estuary.models import AuditEvent, Payout
from estuary.services import audit

DECISION_ACTIONS = ("approvals.approve", "approvals.reject")
OUTCOME_ACTIONS = ("payouts.decision_applied", "payouts.decision_refused")


@dataclass(frozen=True)
class PendingDecision:
    update_id: str
    workflow_id: str
    target: str
    actor: str
    decision: str


def unresolved(limit: int = 200) -> list[PendingDecision]:
    """Pending decisions (newest first) with no outcome event yet."""
    pending = db.session.scalars(
        select(AuditEvent)
        .where(AuditEvent.outcome == "pending", AuditEvent.action.in_(DECISION_ACTIONS))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    ).all()
    if not pending:
        return []
    resolved: set[str] = set()
    for event in db.session.scalars(
        select(AuditEvent).where(
            AuditEvent.action.in_(OUTCOME_ACTIONS), AuditEvent.id > min(e.id for e in pending)
        )
    ):
        resolved.add(str(json.loads(event.params_json or "{}").get("update_id") or ""))
    out: list[PendingDecision] = []
    for event in pending:
        params = json.loads(event.params_json or "{}")
        update_id = str(params.get("update_id") or "")
        if not update_id or update_id in resolved or not event.target.startswith("payout:"):
            continue
        payout_id = event.target.removeprefix("payout:")
        payout = db.session.get(Payout, int(payout_id)) if payout_id.isdigit() else None
        if payout is None:
            continue
        out.append(
            PendingDecision(
                update_id,
                payout.workflow_id,
                event.target,
                event.actor,
                str(params.get("decision") or event.action.rsplit(".", 1)[-1]),
            )
        )
    return out


def record_outcome(decision: PendingDecision, outcome: str, message: str) -> None:
    """Audit that a pending decision was not applied (refused, or dropped)."""
    if outcome != "refused":
        raise ValueError(f"unknown decision outcome {outcome!r}")
    audit.record(
        action="payouts.decision_refused",
        target=decision.target,
        outcome="denied",
        params={"update_id": decision.update_id, "decision": decision.decision},
        detail=f"{decision.decision} sent as pending delivery: {message}"[:1000],
        actor=decision.actor,
        role="workflow",
    )
