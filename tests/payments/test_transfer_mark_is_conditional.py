"""The transfer marks a payout `processing` only while it is still `approved`.

On PostgreSQL nothing locks the payout between the transfer's read and its mark; a
writer that closes the payout in that gap (here: it is cancelled, its hold returned)
must not be overwritten by `processing`, or money would leave against a closed payout.
The mark is a conditional UPDATE: it marks nothing, the activity fails retryably, and
no transfer is sent. A retry reads the payout again and refuses it as cancelled."""

from __future__ import annotations

import pytest
from sqlalchemy import literal
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import workers.payments.activities as activities
from estuary.contracts.payments import CreatePayoutInput, TransferPayoutInput
from estuary.db import db
from estuary.models import Payout
from estuary.services import payouts


def test_a_payout_closed_between_read_and_mark_is_not_sent(app, money, monkeypatch):
    pid = money.practitioner(balance=12_000)
    env = ActivityEnvironment()
    record = env.run(
        activities.create_payout,
        CreatePayoutInput(
            workflow_id=f"payments-payout-{pid}-conditional",
            practitioner_id=pid,
            amount_cents=None,
            requested_by="ops-requester@test.local",
            reason="conditional mark",
            payment_method="bank_transfer",
            approval_threshold_cents=50_000,
            dual_approval_threshold_cents=500_000,
            approval_timeout_seconds=3600,
            run_id="run-1",
        ),
    )
    assert record.status == "approved"
    with app.app_context():
        payouts.close_unpaid(record.payout_id, "cancelled", "closed by a concurrent writer")
        db.session.commit()
    assert money.held(pid) == 0 and money.available(pid) == 12_000

    # The transfer's read still sees `approved` (as it would have a moment before the
    # concurrent close committed); the mark then meets the payout as it is now.
    original = payouts._FOR_TRANSFER
    stale_read = original.with_only_columns(
        *[
            literal("approved").label("status") if c.key == "status" else c
            for c in original.selected_columns
        ]
    )
    monkeypatch.setattr(payouts, "_FOR_TRANSFER", stale_read)
    transfers_before = money.transfers()
    with pytest.raises(ApplicationError) as failed:
        env.run(activities.transfer_payout, TransferPayoutInput(record.payout_id))
    assert failed.value.type == "PayoutChanged" and not failed.value.non_retryable
    assert money.transfers() == transfers_before
    with app.app_context():
        assert db.session.get(Payout, record.payout_id).status == "cancelled"

    monkeypatch.setattr(payouts, "_FOR_TRANSFER", original)
    with pytest.raises(ApplicationError) as refused:
        env.run(activities.transfer_payout, TransferPayoutInput(record.payout_id))
    assert refused.value.non_retryable and "cancelled" in refused.value.message
    assert money.transfers() == transfers_before
    assert money.held(pid) == 0 and money.available(pid) == 12_000 and money.ledger_ok()
