"""The payout confirmation runs the payout workflow's own pre-checks (estuary/services/
payout_checks.py): a missing destination, an amount above the balance, nothing to pay,
today's payout already taken, and the approvals needed, said in one sentence; a blocking
problem disables Confirm and the server refuses the confirmed POST (409, nothing started,
a "denied" audit event). Temporal is unreachable here: the checks come from the app
database, and the page says Temporal could not be asked."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from estuary.contracts.payments import payout_workflow_id
from estuary.db import db
from estuary.models import Payout, Practitioner
from estuary.services import payout_batches, payout_checks, payouts
from estuary.services.errors import BusinessRuleError
from tests.console.write_support import (
    audit_events,
    count_rows,
    login,
    seed_practitioner,
    unreachable_gateway,
)

PAYOUT = "PractitionerPayoutWorkflow"
URL = f"/workflows/{PAYOUT}/start"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _sentence(body: str) -> str:
    found = re.search(r'data-testid="confirm-sentence">([^<]*)<', body)
    assert found, "no confirmation sentence"
    return found.group(1)


def _confirm_disabled(body: str) -> bool:
    button = re.search(r'<button[^>]*data-testid="confirm-start"[^>]*>', body)
    assert button, "no Confirm button"
    return " disabled" in button.group(0)


def _paid_today(app, pid: int, status: str = "paid", amount: int = 12_000) -> int:
    with app.app_context():
        wid = payout_workflow_id(pid, datetime.now(UTC).date())
        payout = Payout(
            practitioner_id=pid,
            amount_cents=amount,
            currency="USD",
            status=status,
            idempotency_key=f"payout:{wid}:1",
            workflow_id=wid,
            requested_by="someone@test.local",
            approvals_required=0,
        )
        db.session.add(payout)
        db.session.commit()
        return payout.id


def _form(pid: int, amount: str = "", **more: str) -> dict[str, str]:
    return {"practitioner_id": str(pid), "amount_cents": amount, "action_reason": "asked", **more}


@pytest.fixture
def operator(app):
    unreachable_gateway(app)
    client, _ = login(app, "operator")
    return client


def _refused_and_nothing_started(app, client, form: dict[str, str], words: str) -> None:
    before = count_rows(app, Payout)
    response = client.post(URL, data={**form, "confirmed": "yes"})
    assert response.status_code == 409
    body = _text(response)
    assert words in body and _confirm_disabled(body)
    assert count_rows(app, Payout) == before
    denied = [e for e in audit_events(app, action="catalog.start") if e.outcome == "denied"]
    assert denied and words in denied[-1].detail
    assert not [e for e in audit_events(app, action="catalog.start") if e.outcome == "success"]


def test_missing_destination_is_said_and_confirm_refused(app, operator):
    pid = seed_practitioner(app, balance_cents=40_000, name="Nadia Nodest", destination=None)
    response = operator.post(URL, data=_form(pid))
    assert response.status_code == 200
    body = _text(response)
    sentence = _sentence(body)
    assert sentence == (
        "Would pay Nadia Nodest 400.00 USD, but cannot start until the problem below is fixed."
    )
    assert "Nadia Nodest (practitioner" in body and "has no payout destination." in body
    assert 'data-testid="confirm-problems"' in body and _confirm_disabled(body)
    assert "Temporal" in body  # it could not be asked; the database decided
    _refused_and_nothing_started(app, operator, _form(pid), "has no payout destination")


def test_already_paid_today_is_said_and_confirm_refused(app, operator):
    pid = seed_practitioner(app, balance_cents=30_000, name="Paula Paid")
    payout_id = _paid_today(app, pid)
    body = _text(operator.post(URL, data=_form(pid)))
    assert "Paula Paid (practitioner" in body
    assert f"was already paid today (payout {payout_id}, 120.00 USD)" in body
    assert "can start tomorrow" in body and _confirm_disabled(body)
    _refused_and_nothing_started(app, operator, _form(pid), "was already paid today")


def test_rejected_today_uses_up_the_day_but_a_failed_payout_does_not(app, operator):
    rejected = seed_practitioner(app, balance_cents=30_000, name="Rita Rejected")
    _paid_today(app, rejected, status="rejected")
    body = _text(operator.post(URL, data=_form(rejected)))
    assert "had a payout rejected today" in body and _confirm_disabled(body)

    failed = seed_practitioner(app, balance_cents=30_000, name="Fred Failed")
    _paid_today(app, failed, status="failed")  # a failed run's id may run again
    body = _text(operator.post(URL, data=_form(failed)))
    assert not _confirm_disabled(body)
    assert (
        _sentence(body)
        == "Pays Fred Failed 300.00 USD now; needs no approval (below the threshold)."
    )


def test_a_payout_under_way_today_is_shown_not_refused(app, operator):
    pid = seed_practitioner(app, balance_cents=90_000, name="Wanda Waiting")
    payout_id = _paid_today(app, pid, status="pending_approval", amount=60_000)
    body = _text(operator.post(URL, data=_form(pid)))
    assert not _confirm_disabled(body)
    assert _sentence(body) == (
        f"A payout to Wanda Waiting is already under way today (payout #{payout_id}, "
        "600.00 USD, pending approval): confirming shows that run and starts nothing new."
    )
    # Its hold took the balance: that is no problem of a start that finds the run.
    body = _text(operator.post(URL, data=_form(pid, "5000.00")))
    assert not _confirm_disabled(body) and "is more than" not in body


@pytest.mark.parametrize(
    ("amount", "sentence"),
    [
        ("499.99", "Pays Tia Tiers 499.99 USD now; needs no approval (below the threshold)."),
        ("500.00", "Pays Tia Tiers 500.00 USD once approved; needs one approver (not you)."),
        ("5000.00", "Pays Tia Tiers 5,000.00 USD once approved; needs one approver (not you)."),
        (
            "5000.01",
            "Pays Tia Tiers 5,000.01 USD once approved; needs two different approvers "
            "(neither may be you).",
        ),
        (
            "",
            "Pays Tia Tiers 6,000.00 USD once approved; needs two different approvers "
            "(neither may be you).",
        ),
    ],
)
def test_the_sentence_names_the_approvals_needed(app, operator, amount, sentence):
    pid = seed_practitioner(app, balance_cents=600_000, name="Tia Tiers")
    body = _text(operator.post(URL, data=_form(pid, amount)))
    assert _sentence(body) == sentence
    assert not _confirm_disabled(body)
    assert count_rows(app, Payout) == 0  # a confirmation page starts nothing


def test_the_tier_follows_the_configured_policy(app, operator):
    """The thresholds are the server's settings (the form cannot give them)."""
    pid = seed_practitioner(app, balance_cents=20_000, name="Stella Strict")
    app.config["PAYOUT_APPROVAL_THRESHOLD_CENTS"] = 5_000
    app.config["PAYOUT_DUAL_APPROVAL_THRESHOLD_CENTS"] = 9_000
    body = _text(operator.post(URL, data=_form(pid, "90.00")))
    assert (
        _sentence(body)
        == "Pays Stella Strict 90.00 USD once approved; needs one approver (not you)."
    )
    body = _text(operator.post(URL, data=_form(pid, "90.01")))
    assert "needs two different approvers" in _sentence(body)
    response = operator.post(URL, data=_form(pid, "90.00", approval_threshold_cents="900.00"))
    assert response.status_code == 422
    assert "is filled in by the server" in _text(response)


def test_amount_above_the_balance_and_nothing_to_pay(app, operator):
    pid = seed_practitioner(app, balance_cents=10_000, name="Bea Balance")
    body = _text(operator.post(URL, data=_form(pid, "100.01")))
    assert "100.01 USD is more than practitioner" in body
    assert "available balance of 100.00 USD" in body and _confirm_disabled(body)
    _refused_and_nothing_started(app, operator, _form(pid, "100.01"), "is more than practitioner")

    empty = seed_practitioner(app, balance_cents=0, name="Ed Empty")
    body = _text(operator.post(URL, data=_form(empty)))
    assert "Ed Empty (practitioner" in body and "has nothing available to pay out" in body
    assert _confirm_disabled(body)


def test_bad_input_changes_nothing_and_unknown_practitioner_is_named(app, operator):
    for data in (
        _form(0),
        _form(1, "-5"),
        _form(1, "ten"),
        {"practitioner_id": "abc", "action_reason": "x", "confirmed": "yes"},
    ):
        response = operator.post(URL, data=data)
        assert response.status_code == 422, data
        assert "Nothing was started" in _text(response)
    response = operator.post(URL, data={**_form(999_999_999), "confirmed": "yes"})
    assert response.status_code == 422
    assert "no practitioner with id 999999999" in _text(response)
    assert count_rows(app, Payout) == 0


def test_the_workflow_step_and_the_batch_use_the_same_checks(app):
    """`create_payout` (the workflow's first write) refuses with the page's words, and the
    batch's candidate selection skips today's used-up practitioner in words."""
    nodest = seed_practitioner(app, balance_cents=5_000, name="No Dest", destination=None)
    paid = seed_practitioner(app, balance_cents=8_000, name="Paid Today")
    fine = seed_practitioner(app, balance_cents=9_000, name="Fine Fiona")
    _paid_today(app, paid)
    today = datetime.now(UTC).strftime("%Y%m%d")
    with app.app_context():
        practitioner = db.session.get(Practitioner, nodest)
        _, _, problem = payout_checks.payable_amount(practitioner, None, "USD")
        assert problem is not None and problem.code == "no_destination"
        with pytest.raises(BusinessRuleError) as refused:
            payouts.create_payout(
                workflow_id=payout_workflow_id(nodest, today),
                practitioner_id=nodest,
                amount_cents=None,
                requested_by="ops@test.local",
                reason="test",
                payment_method="bank_transfer",
                approval_threshold_cents=50_000,
                dual_approval_threshold_cents=500_000,
                config=app.config,
            )
        assert refused.value.message == problem.message
        db.session.rollback()
        page = payout_batches.select_candidates(
            min_amount_cents=1_000,
            after_practitioner_id=0,
            limit=50,
            practitioner_ids=[nodest, paid, fine],
            payout_date=today,
        )
        assert [c.practitioner_id for c in page.candidates] == [fine]
        skipped = {line.practitioner_id: line.detail for line in page.skipped}
        assert skipped[nodest] == "no payout destination"
        assert "Paid Today (practitioner" in skipped[paid]
        assert "was already paid today" in skipped[paid]
        assert db.session.scalar(select(Payout.id).where(Payout.practitioner_id == fine)) is None


def test_a_batch_dry_run_says_dry_run_once_and_what_it_does(app, operator):
    response = operator.post(
        "/workflows/BatchPractitionerPayoutWorkflow/start",
        data={"min_amount_cents": "100.00", "dry_run": "y", "action_reason": "look first"},
    )
    assert response.status_code == 200
    body = _text(response)
    assert body.count("<dt>Dry run</dt>") == 1  # the input's own field, not a second line too
    assert _sentence(body) == (
        "Lists what a batch payout to every practitioner with at least 100.00 USD available "
        "would pay now; moves no money."
    )
    assert not _confirm_disabled(body)
