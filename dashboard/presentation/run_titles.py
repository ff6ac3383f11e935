"""A run's name in the business's words: "Payout to Maya Chen · 1,842.50 USD",
"Onboarding of Kwame Asante (step 3 of 6: background check)", "Batch payout of
2026-12-01 · 143 practitioners". The workflow type (`BatchPractitionerPayoutWorkflow`)
is the secondary detail pages show small and muted.

One table, `TITLES`, says per workflow type how its title is made from what is known
of the run: its search attributes (entity type and id), its input, its progress or
result when the page has them (the run page), and the names the app database holds
(`Names`, loaded once for a whole list of runs: a runs page of 100 rows makes one query
per kind of entity, not one per row). A type not in the table, or a run whose entity is
gone, still gets a readable title from its entity and type.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import select

from dashboard import times
from dashboard.presentation.run_values import count_and_cents
from estuary.contracts.money import format_money
from estuary.contracts.practitioners import ONBOARDING_STEPS
from estuary.db import db
from estuary.models import (
    BackgroundCheck,
    Booking,
    OnboardingProgress,
    PackagePurchase,
    Payout,
    Practitioner,
    Subscription,
    TrainingModule,
)

_WORDS = re.compile(r"(?<=[a-z])(?=[A-Z])")
_DATE_IN_ID = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:-(\d{2})(\d{2})(\d{2}))?")


@dataclass(frozen=True)
class RunTitle:
    text: str  # what the run is, in the staff's words
    kind: str  # the workflow type, shown small and muted

    def __str__(self) -> str:
        return self.text


def type_words(workflow_type: str) -> str:
    """`PractitionerPayoutWorkflow` -> "Practitioner payout" (a type with no title rule)."""
    base = workflow_type.removesuffix("Workflow") or workflow_type
    words = _WORDS.sub(" ", base).split()
    return " ".join([words[0], *(w.lower() for w in words[1:])]) if words else workflow_type


def step_words(step: str | None) -> str:
    """`background_check` -> "background check"."""
    return (step or "").replace("_", " ")


def onboarding_step_text(step: str | None) -> str:
    """ "step 3 of 6: background check" for a step of the six; "" for none."""
    if step not in ONBOARDING_STEPS:
        return ""
    return f"step {ONBOARDING_STEPS.index(step) + 1} of {len(ONBOARDING_STEPS)}: {step_words(step)}"


def _currency() -> str:
    if has_app_context():
        return str(current_app.config.get("CURRENCY") or "USD")
    return "USD"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


# --- the names, loaded once for many runs ---------------------------------------------------


@dataclass
class Names:
    """What the app database says about the entities of some runs, by id."""

    practitioners: dict[int, Practitioner] = field(default_factory=dict)
    bookings: dict[int, Booking] = field(default_factory=dict)
    payouts_by_workflow: dict[str, Payout] = field(default_factory=dict)
    packages: dict[int, PackagePurchase] = field(default_factory=dict)
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    onboardings: dict[int, OnboardingProgress] = field(default_factory=dict)
    checks_by_reference: dict[str, BackgroundCheck] = field(default_factory=dict)
    # A batch's child payouts by the batch's workflow id (their reason is "batch <id>").
    batch_payouts: dict[str, list[Payout]] = field(default_factory=dict)

    def practitioner_name(self, practitioner_id: Any) -> str:
        pid = _int(practitioner_id)
        if pid is None:
            return "a practitioner"
        p = self.practitioners.get(pid)
        return p.name if p is not None else f"practitioner #{pid}"

    def add_practitioners(self, ids: Iterable[Any]) -> None:
        """Load the practitioners among `ids` not known yet (a batch's lines)."""
        missing = {i for i in (_int(x) for x in ids) if i is not None} - set(self.practitioners)
        if not missing:
            return
        try:
            for p in db.session.scalars(select(Practitioner).where(Practitioner.id.in_(missing))):
                self.practitioners[p.id] = p
        except Exception:  # a title never breaks a page: fall back to ids
            db.session.rollback()

    @classmethod
    def load(cls, runs: Iterable[Any], extra_practitioners: Iterable[int] = ()) -> Names:
        """The names for these runs (RunInfo-like: workflow_id, entity_type, entity_id)."""
        runs = list(runs)
        out = cls()
        ids: dict[str, set[int]] = {}
        for run in runs:
            eid = _int(getattr(run, "entity_id", None))
            if eid is not None and getattr(run, "entity_type", None):
                ids.setdefault(run.entity_type, set()).add(eid)
        money_ids = [r.workflow_id for r in runs if "payout" in (r.workflow_type or "").lower()]
        batch_ids = [
            r.workflow_id
            for r in runs
            if r.workflow_type == "BatchPractitionerPayoutWorkflow"
            and getattr(r, "status", None) == "Completed"
        ]
        check_refs = [
            str(r.entity_id)
            for r in runs
            if r.workflow_type == "BackgroundCheckProviderWorkflow" and r.entity_id
        ]
        # Where an onboarding stands is only part of an onboarding run's title.
        onboarding = any(r.workflow_type == "PractitionerOnboardingWorkflow" for r in runs)
        try:
            out._load(ids, money_ids, check_refs, set(extra_practitioners), onboarding)
            out._load_batches(batch_ids)
        except Exception:  # a title never breaks a page: fall back to ids
            db.session.rollback()
        return out

    def _load_batches(self, batch_workflow_ids: list[str]) -> None:
        """The payouts the finished batches among these runs started (one query)."""
        if not batch_workflow_ids:
            return
        self.batch_payouts = {w: [] for w in batch_workflow_ids}
        reasons = {f"batch {w}": w for w in batch_workflow_ids}
        for p in db.session.scalars(select(Payout).where(Payout.reason.in_(list(reasons)))):
            self.batch_payouts[reasons[p.reason]].append(p)

    def _load(
        self,
        ids: dict[str, set[int]],
        payout_workflow_ids: list[str],
        check_references: list[str],
        practitioner_ids: set[int],
        onboarding: bool,
    ) -> None:
        practitioner_ids |= ids.get("practitioner", set())
        if payout_workflow_ids:
            for p in db.session.scalars(
                select(Payout).where(Payout.workflow_id.in_(payout_workflow_ids))
            ):
                known = self.payouts_by_workflow.get(p.workflow_id)
                if known is None or p.id > known.id:  # the newest payout of that id
                    self.payouts_by_workflow[p.workflow_id] = p
                practitioner_ids.add(p.practitioner_id)
        if check_references:
            for c in db.session.scalars(
                select(BackgroundCheck).where(BackgroundCheck.reference.in_(check_references))
            ):
                self.checks_by_reference[c.reference] = c
                practitioner_ids.add(c.practitioner_id)
        if ids.get("booking"):
            for b in db.session.scalars(select(Booking).where(Booking.id.in_(ids["booking"]))):
                self.bookings[b.id] = b
                practitioner_ids.add(b.practitioner_id)
        if ids.get("package_purchase"):
            for pp in db.session.scalars(
                select(PackagePurchase).where(PackagePurchase.id.in_(ids["package_purchase"]))
            ):
                self.packages[pp.id] = pp
                practitioner_ids.add(pp.practitioner_id)
        if ids.get("subscription"):
            for s in db.session.scalars(
                select(Subscription).where(Subscription.id.in_(ids["subscription"]))
            ):
                self.subscriptions[s.id] = s
                practitioner_ids.add(s.practitioner_id)
        if practitioner_ids:
            for p in db.session.scalars(
                select(Practitioner).where(Practitioner.id.in_(practitioner_ids))
            ):
                self.practitioners[p.id] = p
        if practitioner_ids and onboarding:
            for o in db.session.scalars(
                select(OnboardingProgress).where(
                    OnboardingProgress.practitioner_id.in_(practitioner_ids)
                )
            ):
                self.onboardings[o.practitioner_id] = o


def module_titles(codes: Iterable[Any]) -> dict[str, str]:
    """The training catalogue's titles of these module codes ("platform-101" -> "Using
    the Estuary platform"), one query; codes not in the catalogue are left out."""
    wanted = {str(c) for c in codes if isinstance(c, str) and c}
    if not wanted or not has_app_context():
        return {}
    try:
        rows = db.session.execute(
            select(TrainingModule.code, TrainingModule.title).where(TrainingModule.code.in_(wanted))
        )
        return {code: title for code, title in rows}
    except Exception:  # a title never breaks a page: the codes stay
        db.session.rollback()
        return {}


# --- what is known of one run ----------------------------------------------------------------


@dataclass
class Known:
    run: Any  # RunInfo
    names: Names
    input: Mapping[str, Any] = field(default_factory=dict)
    progress: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """A value from the result, then the progress, then the input."""
        for source in (self.result, self.progress, self.input):
            if isinstance(source, Mapping) and source.get(key) is not None:
                return source[key]
        return None

    @property
    def entity_id(self) -> int | None:
        return _int(self.run.entity_id)

    def practitioner_id(self) -> int | None:
        return _int(self.get("practitioner_id")) or (
            self.entity_id if self.run.entity_type == "practitioner" else None
        )

    def id_date(self) -> str:
        """The date (and time) a business id carries: `…-2026-12-01`, `…-20261201`."""
        m = _DATE_IN_ID.search(self.run.workflow_id or "")
        if not m:
            return times.format_local(self.run.start_time).split(" ")[0]
        day = f"{m[1]}-{m[2]}-{m[3]}"
        return f"{day} {m[4]}:{m[5]}" if m[4] else day


def payout_title(name: str, amount_cents: Any, currency: str | None = None) -> str:
    """ "Payout to Maya Chen · 1,842.50 USD" (the amount left out while it is not known)."""
    text = f"Payout to {name}"
    if _int(amount_cents) is None:
        return text
    return f"{text} · {format_money(int(amount_cents), currency or _currency())}"


def payout_row_title(payout: Any, practitioner: Any = None) -> str:
    """A payout record's title (approvals, payouts lists)."""
    name = (
        practitioner.name if practitioner is not None else f"practitioner #{payout.practitioner_id}"
    )
    return payout_title(name, payout.amount_cents, payout.currency)


def _payout(k: Known) -> str:
    payout = k.names.payouts_by_workflow.get(k.run.workflow_id)
    pid = (payout.practitioner_id if payout else None) or k.practitioner_id()
    amount = k.get("amount_cents")
    currency = None
    if payout is not None:
        amount, currency = payout.amount_cents, payout.currency
    return payout_title(k.names.practitioner_name(pid), amount, currency)


_BATCH_PARTS = ("paid", "waiting_for_approval", "skipped", "failed", "would_pay")


def _batch_count(k: Known) -> int | None:
    """How many practitioners the batch handled, from its result or its progress."""
    for source in (k.result, k.progress):
        if isinstance(source, Mapping) and any(
            p in source or f"{p}_count" in source for p in _BATCH_PARTS
        ):
            return sum(count_and_cents(source, p)[0] for p in _BATCH_PARTS)
    return None


def _batch(k: Known) -> str:
    dry = bool(k.get("dry_run")) or "dry-run" in (k.run.workflow_id or "")
    text = f"{'Dry run of the batch payout' if dry else 'Batch payout'} of {k.id_date()}"
    count = _batch_count(k)
    if count == 0:
        text += " · nobody to pay"
    elif count is not None:
        text += f" · {count} practitioner{'' if count == 1 else 's'}"
    return text


def _onboarding(k: Known) -> str:
    pid = k.practitioner_id()
    text = f"Onboarding of {k.names.practitioner_name(pid)}"
    progress = k.names.onboardings.get(pid) if pid is not None else None
    step = k.progress.get("current_step") if isinstance(k.progress, Mapping) else None
    if not k.run.is_running:
        status = (k.result.get("outcome") if isinstance(k.result, Mapping) else None) or (
            progress.status if progress is not None else None
        )
        if status == "in_progress":  # the record of a run that did not finish its steps
            status = None
        return f"{text} ({step_words(status)})" if status else text
    if step is None and progress is not None and progress.workflow_id == k.run.workflow_id:
        step = progress.current_step
    where = onboarding_step_text(step)
    return f"{text} ({where})" if where else text


def _booking_words(booking: Booking | None, names: Names, booking_id: int | None) -> str:
    if booking is None:
        return f"Booking #{booking_id}" if booking_id is not None else "A booking"
    who = names.practitioner_name(booking.practitioner_id)
    first = who.split(" ")[0] if who and not who.startswith("practitioner #") else who
    service = booking.service.name if booking.service is not None else "session"
    return f"{service} with {first}, {times.format_local(booking.start_at)}"


def _lifecycle(k: Known) -> str:
    bid = _int(k.get("booking_id")) or k.entity_id
    booking = k.names.bookings.get(bid) if bid is not None else None
    head = f"Booking #{bid} lifecycle" if bid is not None else "Booking lifecycle"
    return f"{head} — {_booking_words(booking, k.names, bid)}" if booking else head


def _rescheduling(k: Known) -> str:
    bid = _int(k.get("booking_id")) or k.entity_id
    booking = k.names.bookings.get(bid) if bid is not None else None
    head = f"Rescheduling of booking #{bid}" if bid is not None else "Rescheduling of a booking"
    return f"{head} — {_booking_words(booking, k.names, bid)}" if booking else head


def _package(k: Known) -> str:
    ppid = _int(k.get("package_purchase_id")) or k.entity_id
    pp = k.names.packages.get(ppid) if ppid is not None else None
    if pp is None:
        return f"Package payout of purchase #{ppid}" if ppid is not None else "Package payout"
    return (
        f"Package payout to {k.names.practitioner_name(pp.practitioner_id)} · "
        f"{pp.sessions_total} sessions, {format_money(pp.net_cents, pp.currency)}"
    )


def _subscription(k: Known) -> str:
    sid = _int(k.get("subscription_id")) or k.entity_id
    sub = k.names.subscriptions.get(sid) if sid is not None else None
    if sub is None:
        return f"Subscription renewal #{sid}" if sid is not None else "Subscription renewal"
    return (
        f"Subscription renewal of {k.names.practitioner_name(sub.practitioner_id)} · "
        f"{sub.tier} {format_money(sub.price_cents, sub.currency)}"
    )


def _practitioner_run(label: str) -> Callable[[Known], str]:
    def title(k: Known) -> str:
        return f"{label} of {k.names.practitioner_name(k.practitioner_id())}"

    return title


def _training(k: Known) -> str:
    cert = k.get("certification") or (k.run.workflow_id or "").rsplit("-", 1)[-1]
    who = k.names.practitioner_name(k.practitioner_id())
    return f"Training of {who} for {step_words(str(cert))}" if cert else f"Training of {who}"


def _background_check(k: Known) -> str:
    check = k.names.checks_by_reference.get(str(k.run.entity_id or k.get("reference") or ""))
    pid = k.practitioner_id() or (check.practitioner_id if check else None)
    return f"Background check of {k.names.practitioner_name(pid)}"


def _reminders(k: Known) -> str:
    kind = k.get("reminder_type")
    what = f"{step_words(str(kind))} reminders" if kind else "booking reminders"
    what = what[0].upper() + what[1:]
    start, end = k.get("window_start"), k.get("window_end")
    if start and end:
        return f"{what} for {times.format_local(start)} to {times.format_local(end)}"
    return f"{what} of {k.id_date()}"


def _commissions(k: Known) -> str:
    start, end = k.get("period_start"), k.get("period_end")
    if start and end:
        return f"Commissions for {str(start)[:10]} to {str(end)[:10]}"
    return f"Commissions of {k.id_date()}"


def _dated(label: str) -> Callable[[Known], str]:
    return lambda k: f"{label} of {k.id_date()}"


TITLES: dict[str, Callable[[Known], str]] = {
    "PractitionerPayoutWorkflow": _payout,
    "BatchPractitionerPayoutWorkflow": _batch,
    "ProgressivePackagePayoutWorkflow": _package,
    "PractitionerOnboardingWorkflow": _onboarding,
    "PractitionerVerificationWorkflow": _practitioner_run("Document verification"),
    "TrainingCertificationWorkflow": _training,
    "BackgroundCheckProviderWorkflow": _background_check,
    "SubscriptionRenewalWorkflow": _subscription,
    "BookingLifecycleWorkflow": _lifecycle,
    "ReschedulingWorkflow": _rescheduling,
    "BatchReminderWorkflow": _reminders,
    "CommissionCalculationWorkflow": _commissions,
    "LedgerReconciliationWorkflow": _dated("Ledger check"),
    "PayoutReconciliationWorkflow": _dated("Payout reconciliation"),
    "PayoutSweepWorkflow": _dated("Payout sweep"),
    "SecurityUpkeepWorkflow": _dated("Security upkeep"),
}


def _fallback(k: Known) -> str:
    text = type_words(k.run.workflow_type or "Run")
    if k.run.entity_type and k.run.entity_id:
        if k.run.entity_type == "practitioner":
            return f"{text} of {k.names.practitioner_name(k.run.entity_id)}"
        return f"{text} of {step_words(k.run.entity_type)} {k.run.entity_id}"
    return text


def run_title(
    run: Any,
    names: Names | None = None,
    *,
    input: Any = None,
    progress: Any = None,
    result: Any = None,
) -> RunTitle:
    """The run's title from what is known of it (the mappings may be None)."""
    known = Known(
        run,
        names if names is not None else Names.load([run], _practitioner_in(input, progress)),
        input if isinstance(input, Mapping) else {},
        progress if isinstance(progress, Mapping) else {},
        result if isinstance(result, Mapping) else {},
    )
    rule = TITLES.get(run.workflow_type or "", _fallback)
    try:
        text = rule(known)
    except Exception:  # a surprising payload: still a readable title
        text = _fallback(known)
    return RunTitle(text, run.workflow_type or "")


def _practitioner_in(*sources: Any) -> list[int]:
    out = []
    for source in sources:
        if isinstance(source, Mapping):
            pid = _int(source.get("practitioner_id"))
            if pid is not None:
                out.append(pid)
    return out


def run_titles(runs: Iterable[Any]) -> dict[str, RunTitle]:
    """Titles for a list of runs by run id, with one query per kind of entity."""
    runs = list(runs)
    names = Names.load(runs)
    return {r.run_id: run_title(r, names) for r in runs}


# --- a title from a workflow id alone (ops flags, links that know only the id) -------------

# Business id prefix -> (workflow type, entity type of the number that follows).
ID_PREFIXES: tuple[tuple[str, str, str | None], ...] = (
    ("payments-package-payout-", "ProgressivePackagePayoutWorkflow", "package_purchase"),
    ("payments-batch-payout-", "BatchPractitionerPayoutWorkflow", None),
    ("payments-payout-", "PractitionerPayoutWorkflow", "practitioner"),
    ("practitioners-onboarding-", "PractitionerOnboardingWorkflow", "practitioner"),
    ("practitioners-verification-", "PractitionerVerificationWorkflow", "practitioner"),
    ("practitioners-subscription-", "SubscriptionRenewalWorkflow", "subscription"),
    ("practitioners-training-", "TrainingCertificationWorkflow", "practitioner"),
    ("practitioners-background-check-", "BackgroundCheckProviderWorkflow", "background_check"),
    ("bookings-lifecycle-", "BookingLifecycleWorkflow", "booking"),
)
_LEADING_NUMBER = re.compile(r"(\d+)")


@dataclass(frozen=True)
class _IdOnly:
    """A run known by its workflow id only, as the title rules read a RunInfo."""

    workflow_id: str
    workflow_type: str
    entity_type: str | None
    entity_id: str | None
    run_id: str = ""
    status: str = "Running"
    start_time: Any = None
    is_running: bool = True


def _id_only(workflow_id: str) -> _IdOnly | None:
    for prefix, workflow_type, entity_type in ID_PREFIXES:
        if workflow_id.startswith(prefix):
            rest = workflow_id[len(prefix) :]
            number = _LEADING_NUMBER.match(rest)
            entity_id = number[1] if number and entity_type else None
            if entity_type == "background_check":  # the check's reference, not a number
                entity_id = rest
            return _IdOnly(workflow_id, workflow_type, entity_type, entity_id)
    return None


def id_titles(workflow_ids: Iterable[str]) -> dict[str, str]:
    """Titles for many business ids (a batch's child payouts) with one query per kind of
    entity; ids of an unknown shape are left out."""
    runs = [r for r in (_id_only(w) for w in dict.fromkeys(workflow_ids)) if r is not None]
    names = Names.load(runs)
    return {r.workflow_id: run_title(r, names).text for r in runs}


def id_title(workflow_id: str | None) -> str:
    """The title of the run a business id names ("Onboarding of Ines Moreau (step 4 of 6:
    training)"), or the id itself when its shape is not known."""
    run = _id_only(workflow_id or "")
    return run_title(run).text if run is not None else (workflow_id or "")
