"""An approval sent while the payments worker is down (issue 10): the console reports and
audits it as "pending delivery" (never failed, never an error); when the worker comes back
and applies it, the audit log gets the applied event naming the same update id, and a
pending decision the workflow refused is audited as refused by the payout sweep."""

from __future__ import annotations

import asyncio
import html
import json
import uuid

from sqlalchemy import select

from estuary.contracts.payments import PayoutSweepInput
from estuary.contracts.search_attributes import run_attributes
from estuary.db import db
from estuary.models import Payout
from tests.conftest import running_workers, unique_prefix
from tests.console.write_support import (
    audit_events,
    counting_gateway_for,
    login,
    seed_practitioner,
    wait_for,
)
from tests.payments.helpers import payout_input, start_payout, wait_for_stage
from workers.payments.workflows import PayoutSweepWorkflow


def _payout(app, payout_id: int) -> Payout:
    with app.app_context():
        payout = db.session.scalar(select(Payout).where(Payout.id == payout_id))
        db.session.expunge(payout)
        return payout


async def test_an_approval_nobody_answered_is_pending_then_its_outcome_is_audited(app, local_env):
    pid = seed_practitioner(app, balance_cents=70_000)
    approver, user = login(app, "approver")
    second, second_user = login(app, "approver")
    prefix = unique_prefix()
    async with running_workers(local_env.client, app, ["payments"], prefix=prefix):
        handle = await start_payout(local_env.client, prefix, payout_input(pid))
        waiting = await wait_for_stage(handle, "waiting for approval")
    # The worker is gone; the console waits at most 2 s for an answer.
    app.config["TEMPORAL_RPC_TIMEOUT"] = 2
    counting_gateway_for(app, local_env, prefix)
    payout_id = waiting["payout_id"]
    response = await asyncio.to_thread(
        approver.post,
        f"/approvals/{payout_id}/approve",
        data={"amount_cents": "700.00", "practitioner_id": str(pid)},
    )
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 202, body[-3000:]
    assert "Pending delivery" in body and "Do not send it again" in body
    [sent] = audit_events(app, action="approvals.approve")
    assert sent.outcome == "pending" and sent.actor == user.email
    assert "pending delivery" in sent.detail
    update_id = json.loads(sent.params_json)["update_id"]
    assert update_id and not audit_events(app, outcome="error")
    # A second approver, also while no worker answers: the payout needs only one, so the
    # workflow will refuse this one when it gets it.
    late = await asyncio.to_thread(
        second.post,
        f"/approvals/{payout_id}/approve",
        data={"amount_cents": "700.00", "practitioner_id": str(pid)},
    )
    assert late.status_code == 202
    late_id = json.loads(audit_events(app, action="approvals.approve")[1].params_json)["update_id"]

    # The worker returns: the update is applied, and the audit log says so.
    async with running_workers(local_env.client, app, ["payments"], prefix=prefix):
        applied = await wait_for(
            lambda: audit_events(app, action="payouts.decision_applied"),
            timeout=60,
            what="the applied event",
        )
        result = await handle.result()
        # The sweep asks Temporal about decisions still pending in the audit log.
        sweep = await local_env.client.execute_workflow(
            PayoutSweepWorkflow.run,
            PayoutSweepInput(requested_by="test", min_closed_seconds=0),
            id=f"payments-payout-sweep-{uuid.uuid4().hex[:8]}",
            task_queue=f"{prefix}payments",
            search_attributes=run_attributes("payments", "payout_sweep", "all", "test"),
        )
    assert result.status == "paid" and _payout(app, payout_id).status == "paid"
    [event] = applied
    assert event.actor == user.email and event.outcome == "success"
    assert json.loads(event.params_json)["update_id"] == update_id
    assert sweep.decisions_resolved == 1
    [refused] = audit_events(app, action="payouts.decision_refused")
    assert refused.actor == second_user.email and refused.outcome == "denied"
    assert json.loads(refused.params_json)["update_id"] == late_id
    assert not audit_events(app, outcome="error")
