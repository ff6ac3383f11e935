"""Bad input to every payments workflow input: refused with the field named, nothing
started (parse_input, the one parser for CLI and console) and, for runs started around
the parser, refused by the workflow before any step: nothing written."""

from __future__ import annotations

import uuid

import pytest
from temporalio.client import WorkflowFailureError

from estuary.contracts.inputs import InputError, parse_input
from estuary.contracts.payments import (
    REASON_CODES,
    ApprovePayoutDecision,
    BatchPayoutInput,
    CommissionCalculationInput,
    PackagePayoutInput,
    PractitionerPayoutInput,
    RejectPayoutDecision,
    SessionCompletedSignal,
)
from estuary.contracts.search_attributes import run_attributes
from estuary.models import Commission, Payout
from tests.conftest import running_workers
from workers.payments.workflows import (
    BatchPractitionerPayoutWorkflow,
    CommissionCalculationWorkflow,
    PractitionerPayoutWorkflow,
    ProgressivePackagePayoutWorkflow,
)

BAD_AMOUNTS = ["0", "-1", "NaN", "nan", "inf", "1e309", "10.005", "ten", "1,000.00", "0x10"]
BAD_IDS = ["0", "-1", "abc", "1.5", "1e309", "NaN", "99999999999999999999"]


def test_reason_codes_match_the_model():
    from estuary.models import REASON_CODES as MODEL_CODES

    assert tuple(REASON_CODES) == tuple(MODEL_CODES)


@pytest.mark.parametrize("amount", BAD_AMOUNTS)
def test_bad_amounts_refused_with_the_field_named(amount):
    cases = [
        (PractitionerPayoutInput, {"practitioner_id": "5", "amount_cents": amount}, "amount_cents"),
        (BatchPayoutInput, {"min_amount_cents": amount}, "min_amount_cents"),
        (
            ApprovePayoutDecision,
            {"actor": "a", "amount_cents": amount, "practitioner_id": "5"},
            "amount_cents",
        ),
    ]
    for input_type, values, field_name in cases:
        with pytest.raises(InputError) as err:
            parse_input(input_type, values)
        assert field_name in err.value.errors, (input_type, amount)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_ids_refused_with_the_field_named(bad):
    cases = [
        (PractitionerPayoutInput, {"practitioner_id": bad}, "practitioner_id"),
        (PackagePayoutInput, {"package_purchase_id": bad}, "package_purchase_id"),
        (BatchPayoutInput, {"min_amount_cents": "10", "practitioner_ids": f"1,{bad}"}, None),
        (SessionCompletedSignal, {"booking_id": bad}, "booking_id"),
        (
            RejectPayoutDecision,
            {"actor": "a", "amount_cents": "1", "practitioner_id": bad, "reason_code": "other"},
            "practitioner_id",
        ),
    ]
    for input_type, values, field_name in cases:
        with pytest.raises(InputError) as err:
            parse_input(input_type, values)
        assert (field_name or "practitioner_ids") in err.value.errors


@pytest.mark.parametrize(
    ("values", "field_name"),
    [
        ({"period_start": "2026-02-30", "period_end": "2026-03-01"}, "period_start"),
        ({"period_start": "NaN", "period_end": "2026-03-01"}, "period_start"),
        ({"period_start": "2026-03-01", "period_end": "1e309"}, "period_end"),
        ({"period_start": "2026-03-02", "period_end": "2026-03-01"}, "period_end"),
        ({"period_start": "2020-01-01", "period_end": "2026-03-01"}, "period_end"),
        ({"period_start": "2026-03-01"}, "period_end"),
    ],
)
def test_bad_commission_periods(values, field_name):
    with pytest.raises(InputError) as err:
        parse_input(CommissionCalculationInput, values)
    assert field_name in err.value.errors


@pytest.mark.parametrize(
    ("input_type", "values", "field_name"),
    [
        (
            PractitionerPayoutInput,
            {"practitioner_id": "5", "payment_method": "cash"},
            "payment_method",
        ),
        (PractitionerPayoutInput, {"practitioner_id": "5", "reason": "x" * 501}, "reason"),
        (
            PractitionerPayoutInput,
            {
                "practitioner_id": "5",
                "approval_threshold_cents": "100.00",
                "dual_approval_threshold_cents": "50.00",
            },
            "dual_approval_threshold_cents",
        ),
        (
            PractitionerPayoutInput,
            {"practitioner_id": "5", "approval_timeout_seconds": "5"},
            "approval_timeout_seconds",
        ),
        (BatchPayoutInput, {"min_amount_cents": "10", "chunk_size": "0"}, "chunk_size"),
        (BatchPayoutInput, {"min_amount_cents": "10", "dry_run": "maybe"}, "dry_run"),
        (
            PackagePayoutInput,
            {"package_purchase_id": "5", "expiry_policy": "keep"},
            "expiry_policy",
        ),
        (
            RejectPayoutDecision,
            {"actor": "a", "amount_cents": "1", "practitioner_id": "5", "reason_code": "bored"},
            "reason_code",
        ),
        (PractitionerPayoutInput, {"practitioner_id": "5", "surprise": "1"}, "surprise"),
    ],
)
def test_other_bad_fields(input_type, values, field_name):
    with pytest.raises(InputError) as err:
        parse_input(input_type, values)
    assert field_name in err.value.errors


# --- runs started around the parser ------------------------------------------------------


async def _start(client, prefix, workflow_run, inp, entity="x"):
    return await client.start_workflow(
        workflow_run,
        inp,
        id=f"bad-input-{uuid.uuid4().hex[:10]}",
        task_queue=f"{prefix}payments",
        search_attributes=run_attributes("payments", "test", entity, "test"),
    )


async def test_workflows_refuse_bad_input_before_any_step(app, money, time_env):
    pid = money.practitioner(balance=10_000)
    before = money.ledger_transactions()
    cases = [
        (
            PractitionerPayoutWorkflow.run,
            PractitionerPayoutInput(pid, amount_cents=0),
            "amount_cents: must be greater than zero",
        ),
        (
            PractitionerPayoutWorkflow.run,
            PractitionerPayoutInput(pid, amount_cents=-500),
            "amount_cents",
        ),
        (PractitionerPayoutWorkflow.run, PractitionerPayoutInput(0), "practitioner_id"),
        (
            PractitionerPayoutWorkflow.run,
            PractitionerPayoutInput(
                pid, approval_threshold_cents=10, dual_approval_threshold_cents=5
            ),
            "dual_approval_threshold_cents",
        ),
        (
            BatchPractitionerPayoutWorkflow.run,
            BatchPayoutInput(min_amount_cents=0),
            "min_amount_cents",
        ),
        (
            BatchPractitionerPayoutWorkflow.run,
            BatchPayoutInput(min_amount_cents=-1, practitioner_ids=[0]),
            "practitioner_ids",
        ),
        (
            CommissionCalculationWorkflow.run,
            CommissionCalculationInput("2026-01-31", "2026-01-01"),
            "period_end",
        ),
        (ProgressivePackagePayoutWorkflow.run, PackagePayoutInput(-3), "package_purchase_id"),
    ]
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        for run, inp, message in cases:
            handle = await _start(time_env.client, prefix, run, inp)
            with pytest.raises(WorkflowFailureError) as err:
                await handle.result()
            cause = err.value.cause
            assert cause.type == "InvalidInput" and message in cause.message, (inp, cause)
            history = await handle.fetch_history()
            assert not any(
                e.activity_task_scheduled_event_attributes.activity_type.name
                for e in history.events
            )
    assert money.count(Payout) == 0 and money.count(Commission) == 0
    assert money.ledger_transactions() == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda pid: PractitionerPayoutInput(999_999), "practitioner 999999 does not exist"),
        (lambda pid: PractitionerPayoutInput(pid, amount_cents=10_001), "more than practitioner"),
        (
            lambda pid: PractitionerPayoutInput(pid, approval_threshold_cents=99_999_999),
            "approval threshold 99999999 is above the configured",
        ),
        (
            lambda pid: PractitionerPayoutInput(pid, approval_timeout_seconds=8 * 24 * 3600),
            "approval timeout 691200 s is above the configured 604800 s",
        ),
    ],
)
async def test_refused_payouts_write_nothing(app, money, time_env, make, message):
    pid = money.practitioner(balance=10_000)
    before = money.ledger_transactions()
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await _start(time_env.client, prefix, PractitionerPayoutWorkflow.run, make(pid))
        with pytest.raises(WorkflowFailureError) as err:
            await handle.result()
    assert message in str(err.value.cause.cause)
    assert money.count(Payout) == 0 and money.ledger_transactions() == before
    assert money.available(pid) == 10_000


async def test_unknown_package_purchase_fails_clearly(app, money, time_env):
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await _start(
            time_env.client,
            prefix,
            ProgressivePackagePayoutWorkflow.run,
            PackagePayoutInput(424_242),
        )
        with pytest.raises(WorkflowFailureError) as err:
            await handle.result()
    assert "package purchase 424242 does not exist" in str(err.value.cause.cause)
    assert money.ledger_transactions() == 0
