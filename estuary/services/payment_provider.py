"""The payment provider adapter: transfers to practitioners and subscription charges.

The default provider settles inside the app: a transfer is a real `Transfer` row keyed by
its idempotency key (unique constraint), written and committed in the provider's OWN
database session, as an outside provider would commit on its side whatever happens to
the caller's transaction afterwards. Asking again with the same key returns the first
transfer: that is what makes a retried, reset or restarted payout move money once.

A transfer is first `processing` (accepted, money not yet out), then `paid`. With
PROVIDER_PROCESSING_SECONDS > 0 it stays processing that long after it was accepted, as a
real provider's bank transfer does: the row records `processing` and `settles_at`, and
every answer (by key, or the statement) reports it paid once `settles_at` has passed.
The default (0) records it paid at once.

Fault switches (app config, read on every call; tests mutate them; the first three and the
two PROVIDER_* delays can also come from the environment so a worker subprocess can be
told to misbehave):

  PROVIDER_FAILURE_PERCENT            share of calls (0-100) that fail with a transient
                                      ProviderUnavailable BEFORE anything is committed
  PAYMENT_PROVIDER_FAIL_AFTER_COMMIT  number of transfer calls that commit the transfer,
                                      then fail as if the response was lost (decremented
                                      on each use)
  PAYMENT_PROVIDER_DELAY_AFTER_COMMIT_SECONDS, or its newer name
  PROVIDER_ANSWER_DELAY_SECONDS       seconds a transfer call sleeps after committing and
                                      before answering: above the transfer activity's
                                      timeout, the answer is lost and the payout's outcome
                                      is unknown (it goes to `reconciling`)
  PROVIDER_PROCESSING_SECONDS         how long an accepted transfer stays `processing`
  PAYMENT_PROVIDER_DECLINE_PAYEES     set of practitioner ids whose transfers are declined
                                      (permanent: ProviderDeclined)
  PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS
                                      set of subscription ids whose charges are declined
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from estuary.database import SQLITE_BEGIN
from estuary.db import db, insert_unless_present_statement
from estuary.models import Transfer
from estuary.models.base import utcnow
from estuary.services.errors import BusinessRuleError, ExpectedFailure

log = logging.getLogger("estuary.payment_provider")
_switch_lock = threading.Lock()


class ProviderUnavailable(ExpectedFailure):
    """A transient provider failure (timeout, 5xx, lost response): retrying is safe."""


class ProviderDeclined(BusinessRuleError):
    """The provider refused the transfer for good (e.g. the destination is invalid)."""

    type_name = "ProviderDeclined"


@dataclass(frozen=True)
class TransferReceipt:
    transfer_id: int
    idempotency_key: str
    provider_reference: str
    amount_cents: int
    created: bool  # False when the key had been transferred before
    status: str = "paid"  # processing (accepted, not paid out yet) / paid


@dataclass(frozen=True)
class ChargeOutcome:
    approved: bool
    reference: str | None = None
    failure_reason: str | None = None


def _setting(name: str, default: str = "") -> str:
    value = current_app.config.get(name)
    if value is None:
        value = os.environ.get(name, default)
    return str(value)


def _transient_fault(what: str) -> ProviderUnavailable | None:
    """The injected transient failure this call draws (PROVIDER_FAILURE_PERCENT), if any."""
    percent = int(_setting("PROVIDER_FAILURE_PERCENT", "0") or 0)
    if percent > 0 and random.randint(1, 100) <= percent:
        return ProviderUnavailable(f"payment provider unavailable ({what}; injected fault)")
    return None


def _take_fail_after_commit() -> bool:
    with _switch_lock:
        raw = current_app.config.get("PAYMENT_PROVIDER_FAIL_AFTER_COMMIT")
        if raw is None:
            raw = os.environ.get("PAYMENT_PROVIDER_FAIL_AFTER_COMMIT", "0")
        remaining = int(raw or 0)
        if remaining <= 0:
            return False
        current_app.config["PAYMENT_PROVIDER_FAIL_AFTER_COMMIT"] = remaining - 1
        return True


def _id_set(name: str) -> set[int]:
    value = current_app.config.get(name) or ()
    return {int(v) for v in value}


# Built once (statements are immutable), on the table (Core: the provider's reads and its
# one insert need no ORM objects, and the ORM's session, identity map and flush cost
# more than the statements): a payout found paid or reconciling asks for its transfer by
# key, and a transfer under a key that was there reads the first one with it.
_TRANSFERS = Transfer.__table__
_TRANSFER_BY_KEY = select(_TRANSFERS).where(_TRANSFERS.c.idempotency_key == bindparam("key"))


def _read_connection() -> Connection:
    """A connection of the provider's own for a read, outside the caller's transaction.

    It must not begin IMMEDIATE on SQLite: the caller's transaction may hold the write
    lock, and this read would wait for its own thread; WAL lets it read meanwhile."""
    return db.engine.connect().execution_options(**{SQLITE_BEGIN: "LEGACY"})


@contextmanager
def _write_connection() -> Iterator[Connection]:
    """A connection of the provider's own for its one insert, committed when it returns.

    On a database server the insert runs on its own (autocommit): one statement is atomic
    by itself, and BEGIN and COMMIT would be two more round trips. SQLite keeps a
    transaction, begun as the process begins them (a worker's IMMEDIATE: the writer takes
    its turn, `estuary.database`)."""
    if db.engine.dialect.name == "sqlite":
        with db.engine.begin() as conn:
            yield conn
    else:
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield conn


def find_transfer(idempotency_key: str) -> TransferReceipt | None:
    """The transfer made under a key, if any (asks the provider, not the caller's session).

    Read only: a processing transfer whose `settles_at` has passed is reported paid (the
    provider's state is a function of time), so asking never writes and never waits on
    a lock the caller holds (SQLite has one writer)."""
    with _read_connection() as conn:
        row = conn.execute(_TRANSFER_BY_KEY, {"key": idempotency_key}).first()
    if row is None:
        return None
    return _receipt(row, created=False)


class _TransferState(Protocol):
    status: str | None
    settles_at: datetime | None


def transfer_status(row: _TransferState) -> str:
    """processing until `settles_at`, then paid (a `Transfer`, or a row of its table)."""
    if row.status == "processing" and (row.settles_at is None or row.settles_at <= utcnow()):
        return "paid"
    return row.status or "paid"


def list_transfers(after_id: int = 0, limit: int = 500) -> list[TransferReceipt]:
    """The provider's transfers in id order (its statement). Read only (see find_transfer)."""
    with _read_connection() as conn:
        rows = conn.execute(
            select(_TRANSFERS)
            .where(_TRANSFERS.c.id > after_id)
            .order_by(_TRANSFERS.c.id)
            .limit(limit)
        ).all()
    return [_receipt(r, created=False) for r in rows]


def transfer(
    *,
    idempotency_key: str,
    destination: str | None,
    amount_cents: int,
    currency: str,
    payout_id: int | None,
    payee_id: int,
) -> TransferReceipt:
    """Send `amount_cents` to `destination` once per key; a repeat returns the first.

    Raises ProviderDeclined (permanent) or ProviderUnavailable (transient, retry).
    """
    if not isinstance(amount_cents, int) or amount_cents <= 0:
        raise ProviderDeclined(f"transfer amount must be positive cents, got {amount_cents!r}")
    refusal = _refusal(destination, payee_id)
    if refusal is None:
        # The usual case, a new key: one statement that inserts unless the key is there
        # (under a key that was there, the first transfer is read on the same connection).
        receipt = _commit_transfer(idempotency_key, destination, amount_cents, currency, payout_id)
    else:
        # A transfer made under this key before is still the answer, whatever would
        # refuse a new one now (the destination since removed, an injected fault).
        existing = find_transfer(idempotency_key)
        if existing is None:
            raise refusal
        receipt = existing
    if receipt.amount_cents != amount_cents:
        # Same key, different amount: the caller is confused; never "fix" it silently.
        raise ProviderDeclined(
            f"transfer {idempotency_key} was made for {receipt.amount_cents} cents, "
            f"not {amount_cents}"
        )
    delay = float(
        _setting("PROVIDER_ANSWER_DELAY_SECONDS", "")
        or _setting("PAYMENT_PROVIDER_DELAY_AFTER_COMMIT_SECONDS", "0")
        or 0
    )
    if delay > 0:
        log.info("provider: transfer %s committed; answering in %.1fs", idempotency_key, delay)
        time.sleep(delay)
    if _take_fail_after_commit():
        raise ProviderUnavailable(
            f"payment provider response lost after committing {idempotency_key} (injected fault)"
        )
    return receipt


def _refusal(destination: str | None, payee_id: int) -> ExpectedFailure | None:
    """Why a new transfer would be refused (permanent or transient), or None."""
    if not destination:
        return ProviderDeclined(f"practitioner {payee_id} has no payout destination")
    if payee_id in _id_set("PAYMENT_PROVIDER_DECLINE_PAYEES"):
        return ProviderDeclined(f"the provider declined the transfer to {destination}")
    return _transient_fault("transfer")


def _commit_transfer(
    key: str, destination: str | None, amount_cents: int, currency: str, payout_id: int | None
) -> TransferReceipt:
    processing = float(_setting("PROVIDER_PROCESSING_SECONDS", "0") or 0)
    values = {
        "idempotency_key": key,
        "payout_id": payout_id,
        "destination": destination,
        "amount_cents": amount_cents,
        "currency": currency,
        "provider_reference": f"tr_{uuid.uuid4().hex[:20]}",
        "status": "processing" if processing > 0 else "paid",
        "settles_at": utcnow() + timedelta(seconds=processing) if processing > 0 else None,
    }
    # Committed on a connection of the provider's own, whatever becomes of the caller's
    # transaction. A new transfer's receipt is made from the values written, not read
    # back; under a key that was there, the first transfer is read and answered. A
    # concurrent call under the same key is settled by the key's conflict clause: on
    # PostgreSQL the insert waits for the other transaction and does nothing if it
    # committed; on SQLite writers take turns.
    with _write_connection() as conn:
        statement = insert_unless_present_statement(conn.dialect.name, Transfer, "idempotency_key")
        transfer_id = conn.execute(statement, values).scalar()
        if transfer_id is None:
            return _receipt(conn.execute(_TRANSFER_BY_KEY, {"key": key}).one(), created=False)
    log.info("provider: transfer %s committed (%s cents)", key, amount_cents)
    return TransferReceipt(
        transfer_id=transfer_id,
        idempotency_key=key,
        provider_reference=values["provider_reference"],
        amount_cents=amount_cents,
        created=True,
        status=transfer_status(_Written(values["status"], values["settles_at"])),
    )


@dataclass(frozen=True)
class _Written:
    status: str | None
    settles_at: datetime | None


def _receipt(row: Any, *, created: bool) -> TransferReceipt:
    """The receipt of a `transfer` row (an ORM `Transfer` or a row of its table)."""
    return TransferReceipt(
        transfer_id=row.id,
        idempotency_key=row.idempotency_key,
        provider_reference=row.provider_reference,
        amount_cents=row.amount_cents,
        created=created,
        status=transfer_status(row),
    )


def charge(*, idempotency_key: str, subscription_id: int, amount_cents: int) -> ChargeOutcome:
    """Charge a practitioner's stored card for a subscription period.

    Declines are outcomes; transient failures raise ProviderUnavailable. The caller keeps
    the record (one SubscriptionCharge row per key) in its own transaction.
    """
    if subscription_id in _id_set("PAYMENT_PROVIDER_DECLINE_SUBSCRIPTIONS"):
        return ChargeOutcome(approved=False, failure_reason="card declined by the provider")
    fault = _transient_fault("charge")
    if fault is not None:
        raise fault
    return ChargeOutcome(approved=True, reference=f"ch_{uuid.uuid4().hex[:20]}")
