"""The builders behind "pages speak the business" (issue 14, item 2), without Temporal:
run titles per workflow type (`run_titles`), progress and results per type
(`run_progress`), values as labelled fields (`run_values`) and outcomes in words
(`run_outcomes`), and the rendered cards carry no JSON, ISO time or cents."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import render_template_string
from sqlalchemy import select

from dashboard.presentation import run_outcomes, run_progress, run_titles, run_values
from estuary.contracts import catalogue
from estuary.db import db
from estuary.models import (
    BackgroundCheck,
    Booking,
    PackagePurchase,
    Payout,
    PayoutApproval,
    Practitioner,
)
from estuary.services.demo import INES, MAYA, seed_demo
from temporal_gateway.records import RunInfo
from tests.page_text import assert_speaks_business, raw_values
from tests.sql_sent import sql_sent

START = datetime(2026, 12, 1, 10, 15, tzinfo=UTC)


def run(workflow_type: str, workflow_id: str, entity_type=None, entity_id=None, status="Running"):
    return RunInfo(
        workflow_id=workflow_id,
        run_id="r-" + workflow_id,
        workflow_type=workflow_type,
        status=status,
        task_queue="q",
        start_time=START,
        close_time=None if status == "Running" else START,
        execution_time=START,
        history_length=10,
        domain="payments",
        entity_type=entity_type,
        entity_id=None if entity_id is None else str(entity_id),
        triggered_by="ops@estuary.test",
    )


@pytest.fixture
def demo(app):
    with app.app_context():
        seed_demo()
        ids = {p.name: p.id for p in db.session.scalars(select(Practitioner))}
        with app.test_request_context():
            yield ids


def _payout(practitioner_id: int, workflow_id: str, status: str = "pending_approval") -> Payout:
    payout = Payout(
        practitioner_id=practitioner_id,
        amount_cents=184250,
        currency="USD",
        status=status,
        idempotency_key=f"payout:{workflow_id}:1",
        workflow_id=workflow_id,
        requested_by="ops@estuary.test",
    )
    db.session.add(payout)
    db.session.flush()
    return payout


# --- titles ---------------------------------------------------------------------------------


def test_every_registered_workflow_type_has_a_title_rule(app):
    with app.app_context():
        names = {w.name for w in catalogue.all_workflows()}
    assert names <= set(run_titles.TITLES), names - set(run_titles.TITLES)


def test_a_payout_is_named_by_its_payee_and_amount(demo):
    wid = f"payments-payout-{demo[MAYA]}-20261201"
    _payout(demo[MAYA], wid)
    title = run_titles.run_title(run("PractitionerPayoutWorkflow", wid, "practitioner", demo[MAYA]))
    assert title.text == f"Payout to {MAYA} · 1,842.50 USD"
    assert title.kind == "PractitionerPayoutWorkflow"
    # Before its record exists, from the input.
    early = run_titles.run_title(
        run("PractitionerPayoutWorkflow", "payments-payout-x", "practitioner", demo[MAYA]),
        input={"practitioner_id": demo[MAYA], "amount_cents": 1250},
    )
    assert early.text == f"Payout to {MAYA} · 12.50 USD"


def test_an_onboarding_says_its_step(demo):
    wid = f"practitioners-onboarding-{demo[INES]}"
    r = run("PractitionerOnboardingWorkflow", wid, "practitioner", demo[INES])
    title = run_titles.run_title(r, progress={"current_step": "background_check"})
    assert title.text == f"Onboarding of {INES} (step 3 of 6: background check)"
    closed = run("PractitionerOnboardingWorkflow", wid, "practitioner", demo[INES], "Completed")
    assert (
        run_titles.run_title(closed, result={"outcome": "rejected"}).text
        == f"Onboarding of {INES} (rejected)"
    )


def test_batches_bookings_and_packages_are_named_for_people(demo):
    dry = run("BatchPractitionerPayoutWorkflow", "payments-batch-payout-dry-run-2026-12-01-101500")
    assert run_titles.run_title(dry).text == "Dry run of the batch payout of 2026-12-01 10:15"
    batch = run("BatchPractitionerPayoutWorkflow", "payments-batch-payout-2026-12-01")
    progress = {"paid": {"count": 140, "cents": 1}, "failed": {"count": 3, "cents": 0}}
    assert (
        run_titles.run_title(batch, progress=progress).text
        == "Batch payout of 2026-12-01 · 143 practitioners"
    )

    booking = db.session.scalars(select(Booking).order_by(Booking.id)).first()
    life = run(
        "BookingLifecycleWorkflow", f"bookings-lifecycle-{booking.id}", "booking", booking.id
    )
    text = run_titles.run_title(life).text
    who = db.session.get(Practitioner, booking.practitioner_id).name.split()[0]
    assert text.startswith(f"Booking #{booking.id} lifecycle — {booking.service.name} with {who}, ")
    assert raw_values(text) == []

    pp = db.session.scalars(select(PackagePurchase)).first()
    package = run(
        "ProgressivePackagePayoutWorkflow",
        f"payments-package-payout-{pp.id}",
        "package_purchase",
        pp.id,
    )
    assert run_titles.run_title(package).text.startswith("Package payout to ")


def _labels_and_statements(runs: list[RunInfo]) -> tuple[dict, list[str]]:
    """`run_labels(runs)` and the SQL statements it sent."""
    with sql_sent(db.engine) as statements:
        return run_outcomes.run_labels(runs), statements


def test_a_list_of_runs_gets_its_titles_in_one_query_per_kind(demo, app):
    runs = [
        run(
            "PractitionerOnboardingWorkflow", f"practitioners-onboarding-{pid}", "practitioner", pid
        )
        for pid in demo.values()
    ]
    labels, statements = _labels_and_statements(runs)
    assert len(labels) == len(runs) and len(statements) <= 3, statements
    assert labels[runs[0].run_id].title.text.startswith("Onboarding of ")


def test_where_onboardings_stand_is_read_only_for_onboarding_runs(demo):
    payouts = [
        run("PractitionerPayoutWorkflow", f"payments-payout-{pid}-1", "practitioner", pid)
        for pid in demo.values()
    ]
    onboarding = run(
        "PractitionerOnboardingWorkflow", "practitioners-onboarding-x", "practitioner", demo[MAYA]
    )
    for runs, reads_onboarding in ((payouts, False), ([*payouts, onboarding], True)):
        labels, statements = _labels_and_statements(runs)
        assert len(labels) == len(runs)
        assert any("onboarding_progress" in s for s in statements) is reads_onboarding


def test_an_unknown_type_or_a_missing_entity_still_reads_well(demo):
    odd = run("SomeNewThingWorkflow", "x-1", "practitioner", 99999)
    assert run_titles.run_title(odd).text == "Some new thing of practitioner #99999"


# --- values -----------------------------------------------------------------------------------


def test_keys_and_values_are_humanised(demo):
    assert run_values.humanise_key("amount_cents") == "Amount"
    assert run_values.humanise_key("practitioner_id") == "Practitioner"
    assert run_values.humanise_key("queued_booking_ids") == "Queued bookings"
    assert run_values.plain_text("released part 1 (6800 cents, booking 4)") == (
        "released part 1 (68.00 USD, booking 4)"
    )
    fields = {
        f.label: f
        for f in run_values.fields_of(
            {
                "amount_cents": 1250,
                "practitioner_id": demo[MAYA],
                "approval_deadline": "2026-12-08T08:39:12.177321+00:00",
                "approvals": [{"approver": "a@x", "at": "2026-12-01T10:00:00+00:00"}],
                "dry_run": False,
                "payment_method": "bank_transfer",
            }
        )
    }
    assert fields["Amount"].kind == "money"
    assert fields["Practitioner"].kind == "link" and fields["Practitioner"].href
    assert fields["Approval deadline"].kind == "time"
    assert fields["Approvals"].kind == "table" and fields["Approvals"].columns == ["Approver", "At"]
    assert fields["Dry run"].kind == "yes_no"


# --- progress and results --------------------------------------------------------------------


def _steps(**states):
    return {
        name: {"state": states.get(name, "pending"), "deadline": "2026-12-08T10:00:00+00:00"}
        for name in (
            "profile",
            "documents",
            "background_check",
            "training",
            "subscription",
            "services",
        )
    }


def test_onboarding_progress_is_a_checklist_of_six_steps():
    progress = {
        "stage": "background_check",
        "current_step": "background_check",
        "steps_done": ["profile", "documents"],
        "steps": _steps(profile="done", documents="done", background_check="waiting"),
        "documents": {"round": 1, "state": "approved", "submissions": [], "reviews": []},
        "settings": {"step_deadline_days": 7, "reminder_days": [2, 5]},
    }
    view = run_progress.progress_view("PractitionerOnboardingWorkflow", progress)
    assert [i.state for i in view.checklist] == [
        "done",
        "done",
        "current",
        "waiting",
        "waiting",
        "waiting",
    ]
    assert view.stage == "step 3 of 6: background check"
    assert view.checklist[2].due == "2026-12-08T10:00:00+00:00"
    assert [title for title, _fields in view.sections] == ["Documents", "Settings"]


def test_package_and_batch_progress_are_bars():
    package = run_progress.progress_view(
        "ProgressivePackagePayoutWorkflow",
        {
            "sessions_done": 2,
            "sessions_total": 5,
            "released_cents": 13600,
            "remaining_cents": 20400,
        },
    )
    assert package.total == 5 and [s.count for s in package.segments] == [2, 3]
    assert package.segments[0].amount == "136.00 USD"
    batch = run_progress.progress_view(
        "BatchPractitionerPayoutWorkflow",
        {
            "in_flight": 4,
            "paid": {"count": 10, "cents": 1000},
            "waiting_for_approval": {"count": 2, "cents": 50000},
            "skipped": {"count": 1, "cents": 0},
            "failed": {"count": 0, "cents": 0},
            "would_pay": {"count": 0, "cents": 0},
            "dry_run": False,
        },
    )
    assert {s.label: s.count for s in batch.segments} == {
        "paid": 10,
        "in flight": 4,
        "waiting for approval": 2,
        "failed": 0,
        "skipped": 1,
    }
    assert batch.total == 17
    assert sum(w for _s, _x, w, _f in batch.bar_parts()) == pytest.approx(100, abs=0.5)


def test_a_dry_run_result_is_a_table_of_names_amounts_and_reasons(demo):
    result = {
        "dry_run": True,
        "would_pay_count": 1,
        "would_pay_cents": 184250,
        "skipped_count": 1,
        "skipped_cents": 500,
        "lines": [
            {"practitioner_id": demo[MAYA], "amount_cents": 184250, "outcome": "would_pay"},
            {
                "practitioner_id": demo[INES],
                "amount_cents": 500,
                "outcome": "skipped",
                "detail": "not active",
            },
        ],
    }
    view = run_progress.result_view("BatchPractitionerPayoutWorkflow", result)
    assert [(line["name"], line["amount"], line["outcome"]) for line in view.lines] == [
        (MAYA, "1,842.50 USD", "would be paid"),
        (INES, "5.00 USD", "skipped"),
    ]
    assert view.lines[1]["detail"] == "not active"
    assert view.lines_total == "Would be paid: 1 · 1,842.50 USD"


def test_a_lifecycle_is_a_timeline_of_reminders():
    view = run_progress.progress_view(
        "BookingLifecycleWorkflow",
        {
            "stage": "waiting",
            "reminders": {
                "reminder_24h": {
                    "state": "sent",
                    "due_at": "2026-12-02T10:00:00+00:00",
                    "sent_at": "2026-12-02T10:00:01+00:00",
                },
                "reminder_1h": {
                    "state": "pending",
                    "due_at": "2026-12-03T09:00:00+00:00",
                    "sent_at": None,
                },
            },
            "next_timer": {"kind": "reminder_1h", "at": "2026-12-03T09:00:00+00:00"},
            "sent_log": [
                {
                    "kind": "booking_confirmed",
                    "key": "a",
                    "at": "2026-12-02T12:00:00+00:00",
                    "state": "sent",
                },
                {
                    "kind": "booking_confirmed",
                    "key": "b",
                    "at": "2026-12-02T12:00:00+00:00",
                    "state": "sent",
                },
                {
                    "kind": "reminder_24h",
                    "key": "c",
                    "at": "2026-12-02T10:00:01+00:00",
                    "state": "sent",
                },
            ],
        },
    )
    assert [(e.label, e.state) for e in view.events] == [
        ("Reminder 24h", "done"),
        ("Sent: booking confirmed", "done"),
        ("Reminder 1h", "waiting"),
        ("Next: reminder 1h", "current"),
    ]


# --- outcomes --------------------------------------------------------------------------------


def test_a_rejected_payout_and_a_batch_that_paid_nobody_are_not_completed(demo):
    wid = f"payments-payout-{demo[MAYA]}-20261130"
    payout = _payout(demo[MAYA], wid, status="rejected")
    db.session.add(
        PayoutApproval(
            payout_id=payout.id,
            approver="approver@estuary.local",
            decision="reject",
            amount_cents=payout.amount_cents,
            payee_id=payout.practitioner_id,
            reason_code="duplicate",
        )
    )
    db.session.flush()
    r = run("PractitionerPayoutWorkflow", wid, "practitioner", demo[MAYA], "Completed")
    label = run_outcomes.run_labels([r])[r.run_id]
    assert label.outcome.label == "Rejected by approver@estuary.local (duplicate)"
    assert label.tone_class == "stalled"

    batch = run(
        "BatchPractitionerPayoutWorkflow", "payments-batch-payout-2026-12-01", status="Completed"
    )
    names = run_titles.Names()
    nobody = run_outcomes.outcome(batch, names, {"dry_run": False, "skipped_count": 12})
    assert (nobody.label, nobody.tone) == ("Nothing paid: 12 skipped", "warn")
    paid = run_outcomes.outcome(
        batch, names, {"dry_run": False, "paid_count": 2, "paid_cents": 500}
    )
    assert (paid.label, paid.tone) == ("Paid 2 · 5.00 USD", "ok")
    running = run("PractitionerPayoutWorkflow", wid, "practitioner", demo[MAYA])
    assert run_outcomes.outcome(running, names) is None


# --- rendered -----------------------------------------------------------------------------------


def test_the_rendered_cards_carry_no_json_iso_times_or_cents(demo):
    progress = {
        "stage": "waiting",
        "steps_done": ["released part 1 (6800 cents, booking 4)"],
        "waiting_for": "approval (1 of 2)",
        "waiting_until": "2026-12-08T08:39:12.177321+00:00",
        "approvals": [{"approver": "a@x", "at": "2026-12-01T10:00:00+00:00", "amount_cents": 100}],
        "rejection": {"reason_code": "duplicate", "note": "twice"},
        "amount_cents": 184250,
        "practitioner_id": demo[MAYA],
        "ignored_signals": [{"name": "x", "at": "2026-12-01T10:00:00Z"}],
    }
    template = '{% from "runs/_progress.html" import run_view %}{{ run_view(view) }}'
    for wt in (
        "PractitionerPayoutWorkflow",
        "PractitionerOnboardingWorkflow",
        "BookingLifecycleWorkflow",
        "ProgressivePackagePayoutWorkflow",
        "BatchPractitionerPayoutWorkflow",
    ):
        view = run_progress.progress_view(wt, progress)
        html = render_template_string(template, view=view)
        assert_speaks_business(html, wt)
        assert "1,842.50 USD" in html or wt == "PractitionerOnboardingWorkflow"


def test_a_business_id_alone_is_enough_for_a_title(demo):
    wid = f"payments-payout-{demo[MAYA]}-20261201"
    _payout(demo[MAYA], wid)
    assert run_titles.id_title(wid) == f"Payout to {MAYA} · 1,842.50 USD"
    assert run_titles.id_title(f"practitioners-onboarding-{demo[INES]}").startswith(
        f"Onboarding of {INES}"
    )
    assert run_titles.id_title("something-else-7") == "something-else-7"
    many = run_titles.id_titles([wid, wid, "something-else-7"])
    assert many == {wid: f"Payout to {MAYA} · 1,842.50 USD"}


def test_a_background_check_is_named_by_its_practitioner(demo):
    db.session.add(
        BackgroundCheck(
            practitioner_id=demo[INES], idempotency_key="bc-test", reference="BC-TEST-1"
        )
    )
    db.session.flush()
    r = run(
        "BackgroundCheckProviderWorkflow",
        "practitioners-background-check-BC-TEST-1",
        "background_check",
        "BC-TEST-1",
    )
    assert run_outcomes.run_labels([r])[r.run_id].title.text == f"Background check of {INES}"
    assert run_titles.id_title(r.workflow_id) == f"Background check of {INES}"


# --- the last gaps: batch rows, module titles, entity action panels --------------------------


def _batch_payout(practitioner_id: int, batch_id: str, status: str, cents: int) -> Payout:
    payout = _payout(practitioner_id, f"payments-payout-{practitioner_id}-20261201", status)
    payout.reason = f"batch {batch_id}"
    payout.amount_cents = cents
    db.session.flush()
    return payout


def test_a_batch_row_in_the_runs_list_says_what_it_paid(demo):
    """A list has no results at hand: a finished batch's row reads the payouts it started
    (their reason is "batch <workflow id>") instead of a green "Completed"."""
    paying = "payments-batch-payout-2026-12-01"
    _batch_payout(demo[MAYA], paying, "paid", 184250)
    _batch_payout(demo[INES], paying, "pending_approval", 900000)
    rafael = db.session.scalar(select(Practitioner.id).where(Practitioner.name == "Rafael Duarte"))
    moving = _batch_payout(rafael, paying, "reconciling", 100)
    nobody = "payments-batch-payout-2026-11-30"
    dry = "payments-batch-payout-dry-run-2026-12-01-101500"
    running = "payments-batch-payout-2026-12-02"
    runs = [
        run("BatchPractitionerPayoutWorkflow", paying, status="Completed"),
        run("BatchPractitionerPayoutWorkflow", nobody, status="Completed"),
        run("BatchPractitionerPayoutWorkflow", dry, status="Completed"),
        run("BatchPractitionerPayoutWorkflow", running),
    ]
    labels = run_outcomes.run_labels(runs)
    paid = labels[runs[0].run_id]
    assert paid.outcome.label == (
        "Paid 1 of 3 · 1,842.50 USD; 1 waiting for approval; 1 being paid"
    )
    assert paid.tone_class == "stalled"
    assert labels[runs[1].run_id].outcome.label == "Nothing paid"
    assert labels[runs[1].run_id].tone_class == "stalled"
    assert labels[runs[2].run_id].outcome.label == "Dry run: no money moved"
    assert labels[runs[2].run_id].tone_class == "canceled"
    assert labels[runs[3].run_id].outcome is None  # running: its status as it is

    db.session.delete(moving)
    all_paid = "payments-batch-payout-2026-11-29"
    db.session.query(Payout).filter(Payout.reason == f"batch {paying}").update(
        {"reason": f"batch {all_paid}", "status": "paid"}
    )
    r = run("BatchPractitionerPayoutWorkflow", all_paid, status="Completed")
    label = run_outcomes.run_labels([r])[r.run_id]
    assert (label.outcome.label, label.tone_class) == (
        "Paid 2 of 2 · 10,842.50 USD",
        "completed",
    )


def test_a_batch_row_costs_one_query_for_all_batches(demo, app):
    runs = [
        run(
            "BatchPractitionerPayoutWorkflow",
            f"payments-batch-payout-2026-11-{d:02}",
            status="Completed",
        )
        for d in range(1, 21)
    ]
    labels, sent = _labels_and_statements(runs)
    statements = [s for s in sent if "FROM payout" in s and "payout.reason IN" in s]
    assert len(statements) == 1
    assert {labels[r.run_id].outcome.label for r in runs} == {"Nothing paid"}


def test_training_modules_are_shown_by_their_catalogue_titles(demo):
    progress = {
        "stage": "training",
        "current_step": "training",
        "waiting_for": "training_module_completed signal for platform-101, privacy-101",
        "steps": {
            **_steps(profile="done", documents="done", background_check="done", training="waiting"),
        },
        "training": {
            "assigned": ["safety-101", "privacy-101", "platform-101"],
            "completed": ["safety-101"],
            "completions": [{"module": "safety-101", "at": "2026-12-01T10:00:00+00:00"}],
        },
    }
    progress["steps"]["training"]["waiting_for"] = progress["waiting_for"]
    view = run_progress.progress_view("PractitionerOnboardingWorkflow", progress)
    assert view.waiting_for == (
        "modules completed: Using the Estuary platform, Privacy and records"
    )
    assert view.checklist[3].detail.startswith(
        "waiting for modules completed: Using the Estuary platform, Privacy and records"
    )
    template = '{% from "runs/_progress.html" import run_view %}{{ run_view(view) }}'
    html = render_template_string(template, view=view)
    for title in (
        "Client safety and boundaries",
        "Privacy and records",
        "Using the Estuary platform",
    ):
        assert title in html
    for code in ("safety-101", "privacy-101", "platform-101", "training_module_completed"):
        assert code not in html
    assert_speaks_business(html, "PractitionerOnboardingWorkflow")


def test_an_unknown_module_code_stays_a_code(demo):
    progress = {"training": {"assigned": ["retired-9"], "completed": [], "completions": []}}
    view = run_progress.progress_view("PractitionerOnboardingWorkflow", progress)
    html = render_template_string(
        '{% from "runs/_progress.html" import run_view %}{{ run_view(view) }}', view=view
    )
    assert "retired-9" in html


def test_entity_action_panels_head_each_run_with_its_title(demo):
    from types import SimpleNamespace

    wid = f"payments-payout-{demo[MAYA]}-20261201"
    _payout(demo[MAYA], wid)
    onboarding = run(
        "PractitionerOnboardingWorkflow",
        f"practitioners-onboarding-{demo[INES]}",
        "practitioner",
        demo[INES],
    )
    payout_run = run("PractitionerPayoutWorkflow", wid, "practitioner", demo[MAYA])

    def actions(r):
        return SimpleNamespace(
            run=r,
            payout_id=None,
            empty_pickers=[],
            forms=[],
            next="/",
            money=False,
            can_cancel=False,
            can_retry=False,
            can_terminate=False,
            can_reset=False,
        )

    ea = SimpleNamespace(
        error=None,
        runs=[actions(onboarding), actions(payout_run)],
        start_first=[],
        starts=[],
        entity_type="practitioner",
        any=True,
    )
    html = render_template_string('{% include "actions/_entity_actions.html" %}', ea=ea)
    assert "Onboarding of Ines Moreau" in html
    assert "Payout to Maya Okafor · 1,842.50 USD" in html
    heads = html.split('data-testid="entity-run-title">')[1:]
    assert heads[0].startswith("Onboarding of Ines Moreau")
    assert heads[1].startswith("Payout to Maya Okafor")
    # The workflow type stays, secondary: small and muted, after the title.
    assert '<span class="small muted">PractitionerOnboardingWorkflow</span>' in html
    payout = db.session.scalar(select(Payout).where(Payout.workflow_id == wid))
    ra = actions(payout_run)
    ra.can_cancel = True
    html = render_template_string(
        '{% include "domains/_payout_actions.html" %}',
        payout=payout,
        payout_decision=lambda p: None,
        payout_run_actions=lambda p: ra,
    )
    assert 'data-testid="entity-run-title">Payout to Maya Okafor · 1,842.50 USD</span>' in html
    assert '<span class="small muted">PractitionerPayoutWorkflow</span>' in html


def test_the_practitioner_page_lists_completed_modules_by_title(app):
    from estuary.models import TrainingCompletion
    from tests.console.read_support import login, unreachable_gateway

    with app.app_context():
        seed_demo()
        pid = db.session.scalar(select(Practitioner.id).where(Practitioner.name == INES))
        for code in ("safety-101", "retired-9"):
            db.session.add(TrainingCompletion(practitioner_id=pid, module_code=code))
        db.session.commit()
    unreachable_gateway(app)
    html = login(app).get(f"/practitioners/{pid}").get_data(as_text=True)
    listed = html.split('data-testid="training-completed">', 1)[1].split("</ul>", 1)[0]
    assert "Client safety and boundaries · " in listed
    assert "safety-101" not in listed
    assert "retired-9 · " in listed  # not in the catalogue: its code, not a blank
