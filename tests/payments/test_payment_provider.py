"""The in-app payment provider: one transfer per idempotency key, whatever asks again.

A new key is one statement (insert unless the key is there); a key that was there is
answered with its first transfer, also when a new transfer would now be refused.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from estuary.db import db
from estuary.models import Transfer
from estuary.services import payment_provider
from estuary.services.payment_provider import ProviderDeclined, ProviderUnavailable


def send(key: str, *, amount: int = 2_500, destination: str | None = "acct_p", payee: int = 7):
    return payment_provider.transfer(
        idempotency_key=key,
        destination=destination,
        amount_cents=amount,
        currency="USD",
        payout_id=None,
        payee_id=payee,
    )


def refusing(app, refuse: str) -> dict:
    """Make a new transfer to payee 7 refused for `refuse`: the arguments to send with."""
    if refuse == "destination removed":
        return {"destination": None}
    if refuse == "payee declined":
        app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = {7}
    else:
        app.config["PROVIDER_FAILURE_PERCENT"] = 100
    return {}


def transfers(key: str) -> int:
    return db.session.scalar(select(func.count(Transfer.id)).where(Transfer.idempotency_key == key))


def test_a_key_sent_again_gets_its_first_transfer(app):
    with app.app_context():
        first = send("provider:repeat")
        again = send("provider:repeat")
        assert first.created and not again.created
        assert again.transfer_id == first.transfer_id
        assert again.provider_reference == first.provider_reference
        assert again.status == "paid"
        assert transfers("provider:repeat") == 1


@pytest.mark.parametrize(
    "refuse",
    ["destination removed", "payee declined", "provider down"],
)
def test_a_key_sent_before_is_answered_even_when_a_new_transfer_would_be_refused(app, refuse):
    with app.app_context():
        first = send("provider:before")
        kwargs = refusing(app, refuse)
        again = send("provider:before", **kwargs)
        assert (again.transfer_id, again.created) == (first.transfer_id, False)
        assert transfers("provider:before") == 1


@pytest.mark.parametrize(
    ("refuse", "error", "message"),
    [
        ("destination removed", ProviderDeclined, "practitioner 7 has no payout destination"),
        ("payee declined", ProviderDeclined, "declined the transfer to acct_p"),
        ("provider down", ProviderUnavailable, "payment provider unavailable"),
    ],
)
def test_a_refused_new_key_writes_nothing(app, refuse, error, message):
    with app.app_context():
        kwargs = refusing(app, refuse)
        with pytest.raises(error, match=message):
            send("provider:refused", **kwargs)
        assert transfers("provider:refused") == 0


def test_a_key_sent_again_for_another_amount_is_declined(app):
    with app.app_context():
        send("provider:amount", amount=2_500)
        with pytest.raises(ProviderDeclined, match="was made for 2500 cents, not 2600"):
            send("provider:amount", amount=2_600)
        assert transfers("provider:amount") == 1


def test_concurrent_sends_of_one_key_make_one_transfer(app):
    """Threads sending the same key at once (on PostgreSQL, inserts that wait for each
    other's commit): one row, and every caller gets its id."""
    start = threading.Barrier(4)
    receipts = []
    errors = []

    def go() -> None:
        with app.app_context():
            try:
                start.wait(timeout=10)
                receipts.append(send("provider:race"))
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len({r.transfer_id for r in receipts}) == 1
    assert sorted(r.created for r in receipts) == [False, False, False, True]
    with app.app_context():
        assert transfers("provider:race") == 1
