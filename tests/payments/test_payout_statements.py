"""How many SQL statements a payout below the approval threshold costs, per activity.

Not a timed test: the statements are what the payments worker's CPU per payout is mostly
made of (docs/performance.md, "Batch payout"), so their number is pinned. A change that
adds one to the money path should say so here, and why. Counted with a
`before_cursor_execute` listener on the app's engine, the activities run as the worker
runs them (`ActivityEnvironment`, SQLite transactions begun IMMEDIATE), `BEGIN` left out
(PostgreSQL's psycopg sends it without a cursor execute).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, func, select
from temporalio.testing import ActivityEnvironment

import workers.payments.activities as activities
from estuary.contracts.payments import CreatePayoutInput, NotifyPayoutInput, TransferPayoutInput
from estuary.db import db
from estuary.models import LedgerTransaction, Notification, Payout, Transfer
from estuary.services import ledger

# Statements per activity of one payout (BEGIN left out), the same on both databases:
# create_payout: the practitioner's lock returning its row, the payouts under the
# workflow id, the available balance, the payout, the hold (its transaction row and its
# two entries in one INSERT). transfer_payout: the `processing` mark returning the
# payout's keys and its practitioner's destination (committed), the provider's transfer
# row inserted unless its key is there (its own commit), the settlement (2), `paid` (the
# payout's keys are not read again: only its status changes). notify_payout: the payout
# with its practitioner, the outbox row.
EXPECTED = {"create_payout": 6, "transfer_payout": 5, "notify_payout": 2}


@contextmanager
def counting(engine, counts: Counter, statements: list[str]) -> Iterator[list[str]]:
    """Count each statement under the activity named in the list yielded, and note in
    `statements` whether SQLAlchemy compiled it or found it in its compiled cache."""
    current: list[str] = ["?"]

    def count(_conn, _cursor, statement: str, _params, context, _many) -> None:
        if statement.strip().upper().startswith("BEGIN"):
            return
        counts[current[0]] += 1
        cached = "cached" if context.cache_hit == context.cache_hit.CACHE_HIT else "compiled"
        statements.append(f"{current[0]} ({cached}): {statement.splitlines()[0][:90]}")

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield current
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_statements_per_payout_below_the_threshold(app, money):
    app.config["SQLITE_BEGIN_IMMEDIATE"] = True  # as in the worker process
    pids = [money.practitioner(balance=10_000 + n) for n in range(2)]
    env = ActivityEnvironment()
    with app.app_context():
        engine = db.engine
    for pid in pids:
        counts: Counter = Counter()
        statements: list[str] = []
        with counting(engine, counts, statements) as current:
            current[0] = "create_payout"
            record = env.run(
                activities.create_payout,
                CreatePayoutInput(
                    workflow_id=f"payments-payout-{pid}-statements",
                    practitioner_id=pid,
                    amount_cents=None,
                    requested_by="ops-requester@test.local",
                    reason="statements",
                    payment_method="bank_transfer",
                    approval_threshold_cents=50_000,
                    dual_approval_threshold_cents=500_000,
                    approval_timeout_seconds=3600,
                    run_id="run-1",
                ),
            )
            current[0] = "transfer_payout"
            result = env.run(activities.transfer_payout, TransferPayoutInput(record.payout_id))
            current[0] = "notify_payout"
            env.run(activities.notify_payout, NotifyPayoutInput(record.payout_id, "paid"))
        assert record.status == "approved" and result.status == "paid"
        assert dict(counts) == EXPECTED, "\n".join(statements)
        if pid != pids[0]:
            # From the second payout on, every statement comes from the compiled cache: a
            # statement SQLAlchemy cannot cache (a multi-row `insert().values()`, a
            # statement built with literal values) is compiled again on every payout,
            # which cost more than running it (docs/performance.md).
            compiled = [s for s in statements if "(compiled)" in s]
            assert compiled == [], "\n".join(statements)

    # And the payouts did what the statements were for: money held, sent once, settled,
    # and the practitioner told.
    with app.app_context():
        for pid in pids:
            payout = db.session.scalar(select(Payout).where(Payout.practitioner_id == pid))
            assert payout.status == "paid" and payout.paid_at is not None
            key = payout.idempotency_key
            assert (
                db.session.scalar(
                    select(func.count(Transfer.id)).where(Transfer.idempotency_key == key)
                )
                == 1
            )
            keys = set(
                db.session.scalars(
                    select(LedgerTransaction.key).where(LedgerTransaction.key.like(f"%:{key}"))
                )
            )
            assert keys == {f"payout-hold:{key}", f"payout-settle:{key}"}
            assert ledger.balance(ledger.available_account(pid)) == 0
            assert ledger.balance(ledger.held_account(pid)) == 0
            assert (
                db.session.scalar(
                    select(func.count(Notification.id)).where(
                        Notification.key == f"payout-paid:{key}"
                    )
                )
                == 1
            )
