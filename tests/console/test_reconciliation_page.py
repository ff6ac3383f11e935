"""The Reconciliation page (issue 10): what the provider paid against payouts and the
ledger, the payouts waiting for the provider's word, and the flags with their evidence.
A page view changes nothing."""

from __future__ import annotations

import html

from sqlalchemy import func, select

from estuary.db import db
from estuary.models import LedgerTransaction, OpsFlag, Payout
from estuary.services import ops_flags, payment_provider, payouts
from tests.console.write_support import login, seed_practitioner


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _reconciling_payout(app, pid: int) -> Payout:
    with app.app_context():
        view = payouts.create_payout(
            workflow_id=f"payments-payout-{pid}-recon",
            practitioner_id=pid,
            amount_cents=None,
            requested_by="requester@test.local",
            reason="",
            payment_method="bank_transfer",
            approval_threshold_cents=50_000,
            dual_approval_threshold_cents=500_000,
            config=app.config,
        )
        payouts.set_status(view.payout_id, "processing")
        payouts.mark_reconciling(view.payout_id, "activity timed out")
        db.session.commit()
        payment_provider.transfer(
            idempotency_key=view.idempotency_key,
            destination="acct_test",
            amount_cents=view.amount_cents,
            currency="USD",
            payout_id=view.payout_id,
            payee_id=pid,
        )
        ops_flags.raise_flag(
            key="payout-in-doubt:test",
            kind="payout_in_doubt",
            entity_type="payout",
            entity_id=view.payout_id,
            message="the provider still reports it processing",
        )
        db.session.commit()
        return db.session.get(Payout, view.payout_id)


def test_the_page_shows_findings_in_doubt_payouts_and_flags_and_writes_nothing(app):
    pid = seed_practitioner(app, balance_cents=12_000)
    payout = _reconciling_payout(app, pid)
    viewer, _ = login(app, "viewer")
    response = viewer.get("/reconciliation/")
    body = _text(response)
    assert response.status_code == 200
    assert 'href="/reconciliation/"' in body  # in the navigation
    assert 'data-testid="not-reconciled"' in body
    assert 'data-testid="finding-in_doubt"' in body
    assert f"payout {payout.id} is reconciling but the provider paid transfer" in body
    assert "Paid out by the provider</dt><dd>120.00 USD" in body
    assert f'data-testid="in-doubt-{payout.id}"' in body and "activity timed out" in body
    assert "the provider still reports it processing" in body
    with app.app_context():
        assert db.session.get(Payout, payout.id).status == "reconciling"
        assert not db.session.scalar(
            select(func.count(LedgerTransaction.id)).where(LedgerTransaction.kind == "payout")
        )
        assert db.session.scalar(select(func.count(OpsFlag.id))) == 1


def test_a_clean_book_says_it_matches(app):
    viewer, _ = login(app, "viewer")
    body = _text(viewer.get("/reconciliation/"))
    assert 'data-testid="reconciled"' in body
    assert "Every provider transfer belongs to exactly one paid payout" in body


def test_signed_out_is_sent_to_sign_in(app):
    response = app.test_client().get("/reconciliation/")
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]


def test_a_payout_with_a_recorded_rejection_offers_no_decision(app):
    """Issue 10: a rejection recorded on a payout whose run was terminated before closing
    it is final in the console too (the workflow and the service refuse it as well)."""
    from estuary.models import PayoutApproval
    from tests.console.write_support import unreachable_gateway

    gw = unreachable_gateway(app)
    pid = seed_practitioner(app, balance_cents=70_000)
    with app.app_context():
        payout = Payout(
            practitioner_id=pid,
            amount_cents=60_000,
            status="pending_approval",
            idempotency_key=f"payout:payments-payout-{pid}-x:1",
            workflow_id=f"payments-payout-{pid}-x",
            requested_by="requester@test.local",
            approvals_required=1,
        )
        db.session.add(payout)
        db.session.flush()
        db.session.add(
            PayoutApproval(
                payout_id=payout.id,
                approver="first@test.local",
                decision="reject",
                amount_cents=60_000,
                payee_id=pid,
                reason_code="suspected_fraud",
            )
        )
        db.session.commit()
        payout_id = payout.id
    approver, _ = login(app, "approver")
    page = _text(approver.get("/approvals/"))
    assert "Already rejected by first@test.local (suspected_fraud): final." in page
    assert f'data-testid="approve-{payout_id}"' not in page
    refused = approver.post(
        f"/approvals/{payout_id}/approve",
        data={"amount_cents": "600.00", "practitioner_id": str(pid)},
    )
    assert refused.status_code == 409 and gw.calls == 0
