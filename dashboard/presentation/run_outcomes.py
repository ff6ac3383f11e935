"""How a run ended, in business words, where "Completed" would mislead: "Rejected by
approver@… (duplicate)", "Nothing paid: 12 skipped", "Dry run: would pay 3 · 2,693.50
USD", with a tone (ok / warn / neutral / bad) instead of the green of a completed run.
The run page reads it from the run's result; list rows (`run_labels`) from the app
database (a payout's record; for a batch, the payouts it started, whose reason is
"batch <workflow id>"), since a list has no results at hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dashboard.presentation.run_titles import Names, RunTitle, run_title
from dashboard.presentation.run_values import count_and_cents, currency, parse_json_text, words
from estuary.contracts.money import format_money

# An outcome's tone as the status badge class it borrows (static/css/app.css).
TONE_CLASSES = {"ok": "completed", "warn": "stalled", "neutral": "canceled", "bad": "failed"}


@dataclass(frozen=True)
class Outcome:
    label: str  # "Rejected by approver@estuary.local"
    tone: str  # ok / warn / neutral / bad


def _payout_outcome(status: str, payout: Any, reason_code: Any = None) -> Outcome | None:
    if status == "paid":
        return Outcome("Paid", "ok")
    if status == "rejected":
        who = ""
        if payout is not None:
            rejections = [a for a in payout.approvals if a.decision == "reject"]
            if rejections:
                who = rejections[-1].approver
                reason_code = reason_code or rejections[-1].reason_code
        text = f"Rejected by {who}" if who else "Rejected"
        return Outcome(text + (f" ({words(reason_code)})" if reason_code else ""), "warn")
    if status == "expired":
        return Outcome("Expired: not approved in time", "warn")
    if status == "cancelled":
        return Outcome("Cancelled: nothing paid", "neutral")
    if status == "reconciling":
        return Outcome("Transfer outcome not known yet", "warn")
    if status == "failed":
        return Outcome("Payout failed: nothing paid", "bad")
    if status == "pending_approval":
        return Outcome("Waiting for approval", "warn")
    return None


def _batch_outcome(result: Mapping[str, Any]) -> Outcome | None:
    paid, paid_cents = count_and_cents(result, "paid")
    waiting, _w = count_and_cents(result, "waiting_for_approval")
    skipped, _s = count_and_cents(result, "skipped")
    failed, _f = count_and_cents(result, "failed")
    if result.get("dry_run"):
        count, cents = count_and_cents(result, "would_pay")
        return Outcome(
            f"Dry run: would pay {count} · {format_money(cents or 0, currency())}", "neutral"
        )
    if paid == 0 and waiting == 0:
        if not skipped and not failed:
            return Outcome("Nothing paid: nobody was due a payout", "warn")
        parts = [f"{skipped} skipped"] if skipped else []
        if failed:
            parts.append(f"{failed} failed")
        return Outcome("Nothing paid: " + ", ".join(parts), "bad" if failed else "warn")
    text = f"Paid {paid} · {format_money(paid_cents or 0, currency())}"
    if waiting:
        text += f"; {waiting} waiting for approval"
    if failed:
        return Outcome(text + f"; {failed} failed", "warn")
    return Outcome(text, "ok")


_NOT_PAID = ("failed", "rejected", "expired", "cancelled")


def _batch_list_outcome(workflow_id: str, payouts: list[Any]) -> Outcome:
    """A finished batch as a list row says it, from the payouts it started (the app
    database): the practitioners it skipped left no payout, so their count is on the run
    page only."""
    if workflow_id.startswith("payments-batch-payout-dry-run-"):
        return Outcome("Dry run: no money moved", "neutral")
    if not payouts:
        return Outcome("Nothing paid", "warn")
    paid = [p for p in payouts if p.status == "paid"]
    waiting = sum(1 for p in payouts if p.status == "pending_approval")
    not_paid = sum(1 for p in payouts if p.status in _NOT_PAID)
    if not paid and not waiting and not_paid == len(payouts):
        return Outcome(f"Nothing paid: {not_paid} not paid (failed, rejected or expired)", "bad")
    cents = sum(p.amount_cents for p in paid)
    text = f"Paid {len(paid)} of {len(payouts)} · {format_money(cents, currency())}"
    moving = len(payouts) - len(paid) - waiting - not_paid  # approved, transfer under way
    if waiting:
        text += f"; {waiting} waiting for approval"
    if moving:
        text += f"; {moving} being paid"
    if not_paid:
        text += f"; {not_paid} not paid"
    return Outcome(text, "ok" if len(paid) == len(payouts) else "warn")


def outcome(run: Any, names: Names, result: Any = None) -> Outcome | None:
    """How a completed run ended, when its business outcome says more than "Completed"
    (None: show the run's status as it is). Payouts are read from the app database when
    no result is at hand (the runs list)."""
    if run.status != "Completed":
        return None
    value = parse_json_text(result) if result is not None else None
    wt = run.workflow_type
    if wt == "PractitionerPayoutWorkflow":
        payout = names.payouts_by_workflow.get(run.workflow_id)
        status = value.get("status") if isinstance(value, Mapping) else None
        status = status or (payout.status if payout is not None else None)
        code = value.get("reason_code") if isinstance(value, Mapping) else None
        return _payout_outcome(str(status), payout, code) if status else None
    if wt == "BatchPractitionerPayoutWorkflow" and isinstance(value, Mapping):
        return _batch_outcome(value)
    if wt == "BatchPractitionerPayoutWorkflow" and run.workflow_id in names.batch_payouts:
        return _batch_list_outcome(run.workflow_id, names.batch_payouts[run.workflow_id])
    if wt == "PractitionerOnboardingWorkflow" and isinstance(value, Mapping):
        ended = value.get("outcome")
        if ended == "completed":
            return Outcome("Onboarded", "ok")
        if ended:
            reason = f": {words(value['reason'])}" if value.get("reason") else ""
            return Outcome(f"Onboarding {words(ended)}{reason}", "warn")
    if wt == "BookingLifecycleWorkflow" and isinstance(value, Mapping) and value.get("outcome"):
        ended = str(value["outcome"])
        return Outcome(f"Booking {words(ended)}", "ok" if ended == "completed" else "neutral")
    return None


TONE_CLASSES = {"ok": "completed", "warn": "stalled", "neutral": "canceled", "bad": "failed"}


@dataclass(frozen=True)
class RunLabel:
    """A run as a list row names it: its title and, when "Completed" would mislead, its
    business outcome."""

    title: RunTitle
    outcome: Outcome | None

    @property
    def tone_class(self) -> str:
        return TONE_CLASSES.get(self.outcome.tone, "canceled") if self.outcome else ""


def run_labels(runs: Any) -> dict[str, RunLabel]:
    """Labels for a list of runs by run id: one database query per kind of entity."""
    runs = list(runs or [])
    names = Names.load(runs)
    return {r.run_id: RunLabel(run_title(r, names), outcome(r, names)) for r in runs}
