"""Choosing whom a batch payout pays: one page of practitioners at a time, each either a
candidate (active, a payout destination, at least the minimum available) or skipped with
the reason, returned as the batch workflow's own contract types."""

from __future__ import annotations

from sqlalchemy import select

from estuary.contracts.payments import (
    BATCH_LINE_LIMIT,
    BatchPayoutLine,
    BatchPayoutResult,
    PayoutCandidate,
    PayoutCandidatePage,
    payout_workflow_id,
)
from estuary.db import db
from estuary.models import Payout, Practitioner
from estuary.services import ledger, payout_checks
from estuary.services.errors import BusinessRuleError


def _skipped(practitioner_id: int, amount_cents: int, reason: str) -> BatchPayoutLine:
    return BatchPayoutLine(practitioner_id, amount_cents, "skipped", reason)


def _window(
    explicit: list[int] | None, cursor: int, size: int
) -> tuple[list[int], dict[int, Practitioner]]:
    """The next `size` practitioner ids after `cursor` (from the explicit list, if any)
    and the practitioners among them that exist."""
    if explicit is not None:
        ids = [i for i in explicit if i > cursor][:size]
        found = db.session.scalars(select(Practitioner).where(Practitioner.id.in_(ids)))
        return ids, {p.id: p for p in found}
    rows = list(
        db.session.scalars(
            select(Practitioner)
            .where(Practitioner.id > cursor)
            .order_by(Practitioner.id)
            .limit(size)
        )
    )
    return [p.id for p in rows], {p.id: p for p in rows}


def _why_not_paid(practitioner: Practitioner | None, used_today: Payout | None) -> str | None:
    if practitioner is None:
        return "unknown practitioner"
    if practitioner.status != "active":
        return f"practitioner is {practitioner.status}"
    if not practitioner.payout_destination:
        return "no payout destination"
    # The same check as a single payout's confirmation (payout_checks).
    problem = payout_checks.day_used_up_problem(practitioner, used_today)
    return problem.message if problem is not None else None


def select_candidates(
    *,
    min_amount_cents: int,
    after_practitioner_id: int,
    limit: int,
    practitioner_ids: list[int] | None = None,
    max_scan: int = 2000,
    payout_date: str | None = None,
) -> PayoutCandidatePage:
    """The next practitioners (by id, after the cursor) whose available balance is at
    least the minimum, at most `limit` of them, looking at no more than `max_scan` ids.

    Practitioners at or above the minimum who cannot be paid (not active, no payout
    destination) come back as skipped; with an explicit id list, unknown ids and those
    below the minimum are reported as skipped too. Reads in windows of `limit` ids, so a
    page costs two small queries when most practitioners qualify. With `payout_date`, a
    practitioner whose payout that day is used up (paid, rejected, expired: its id cannot
    run again) is skipped with the reason in words, instead of failing to start (one
    more query per window).
    """
    if limit < 1 or max_scan < 1:
        raise BusinessRuleError("limit and max_scan must be positive")
    explicit = sorted(set(practitioner_ids)) if practitioner_ids is not None else None
    page = PayoutCandidatePage([], [], after_practitioner_id, exhausted=False)
    scanned = 0
    while scanned < max_scan:
        window = min(limit, max_scan - scanned)
        ids, rows = _window(explicit, page.next_cursor, window)
        if not ids:
            page.exhausted = True
            return page
        balances = ledger.balances([ledger.available_account(i) for i in ids])
        used = (
            payout_checks.used_up([payout_workflow_id(i, payout_date) for i in ids])
            if payout_date
            else {}
        )
        for pid in ids:
            if len(page.candidates) >= limit:
                return page
            page.next_cursor = pid
            scanned += 1
            practitioner = rows.get(pid)
            available = balances.get(ledger.available_account(pid), 0) if practitioner else 0
            if practitioner is not None and available < min_amount_cents:
                if explicit is not None:
                    page.skipped.append(_skipped(pid, available, "below the minimum amount"))
                continue
            used_today = used.get(payout_workflow_id(pid, payout_date)) if payout_date else None
            reason = _why_not_paid(practitioner, used_today)
            if reason is not None:
                page.skipped.append(_skipped(pid, available, reason))
                continue
            page.candidates.append(PayoutCandidate(pid, available))
        if len(ids) < window:
            page.exhausted = True
            return page
    return page


def dry_run(
    *,
    min_amount_cents: int,
    practitioner_ids: list[int] | None = None,
    page_size: int = 500,
    payout_date: str | None = None,
) -> BatchPayoutResult:
    """What a batch payout with these terms would pay now, read like its dry run reads it
    (the same candidate pages, skipped lines and totals) without starting a run: the
    console's confirmation page shows it, and leaves nothing behind in the runs list.
    `payout_date` (yyyymmdd, the batch's day) skips those whose payout that day is used
    up, as the batch itself does."""
    result = BatchPayoutResult(dry_run=True)
    cursor = 0
    while True:
        page = select_candidates(
            min_amount_cents=min_amount_cents,
            after_practitioner_id=cursor,
            limit=page_size,
            practitioner_ids=practitioner_ids,
            payout_date=payout_date,
        )
        lines = [
            *page.skipped,
            *(
                BatchPayoutLine(c.practitioner_id, c.available_cents, "would_pay")
                for c in page.candidates
            ),
        ]
        for line in lines:
            _count(result, line)
        cursor = page.next_cursor
        if page.exhausted:
            return result


def _count(result: BatchPayoutResult, line: BatchPayoutLine) -> None:
    """Add one line to a dry run's result: its count, its total, its detail (the first
    BATCH_LINE_LIMIT lines)."""
    if len(result.lines) < BATCH_LINE_LIMIT:
        result.lines.append(line)
    else:
        result.lines_truncated = True
    if line.outcome == "would_pay":
        result.would_pay_count += 1
        result.would_pay_cents += line.amount_cents
    else:
        result.skipped_count += 1
        result.skipped_cents += line.amount_cents
