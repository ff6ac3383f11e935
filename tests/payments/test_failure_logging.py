"""Worker logs on real payout workflows (time-skipping server): expected failures are one
line with their reason, only the unexpected keep a traceback (read with caplog); every
line carries workflow id, run id, activity and attempt (read as JSON)."""

from __future__ import annotations

import logging

import pytest
from temporalio.client import WorkflowFailureError

from estuary.services import payouts
from tests.conftest import json_lines, running_workers
from tests.payments.helpers import payout_input, start_payout


def lines(caplog: pytest.LogCaptureFixture, name: str, contains: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name and contains in r.getMessage()]


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info]


async def test_provider_decline_is_one_line_per_step_and_no_traceback(app, money, time_env, caplog):
    pid = money.practitioner(balance=20_000)
    app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = {pid}
    caplog.set_level(logging.INFO)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    assert tracebacks(caplog) == []
    refused = lines(caplog, "estuary.activity", "activity refused transfer_payout")
    assert len(refused) == 1
    assert refused[0].levelno == logging.WARNING
    assert "ProviderDeclined: the provider declined the transfer to acct_test" in (
        refused[0].getMessage()
    )
    assert "retried" not in refused[0].getMessage()
    # The SDK's own "Completing activity as failed" record for it is gone.
    assert lines(caplog, "temporalio.activity", "Completing activity as failed") == []
    ended = lines(caplog, "temporalio.workflow", "workflow failed")
    assert len(ended) == 1 and ended[0].levelno == logging.WARNING
    assert "PayoutFailed: payout" in ended[0].getMessage()
    assert "the hold of 20000 cents was returned" in ended[0].getMessage()


async def test_transient_provider_failure_is_one_line_and_retried(app, money, time_env, caplog):
    pid = money.practitioner(balance=12_000)
    # The provider commits the transfer, then its answer is lost once (ProviderUnavailable).
    app.config["PAYMENT_PROVIDER_FAIL_AFTER_COMMIT"] = 1
    caplog.set_level(logging.INFO)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        result = await handle.result()
    assert result.status == "paid"
    assert tracebacks(caplog) == []
    refused = lines(caplog, "estuary.activity", "activity refused transfer_payout")
    assert len(refused) == 1
    message = refused[0].getMessage()
    assert "attempt=1" in message and "ProviderUnavailable: payment provider response lost" in (
        message
    )
    assert message.endswith("; will be retried")
    assert len(lines(caplog, "estuary.activity", "activity done transfer_payout")) == 1


async def test_unexpected_error_keeps_its_traceback(app, money, time_env, caplog, monkeypatch):
    pid = money.practitioner(balance=9_000)
    real_transfer = payouts.transfer
    calls = {"n": 0}

    def broken_once(payout_id: int):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyError("bug: lookup of a missing key")
        return real_transfer(payout_id)

    monkeypatch.setattr(payouts, "transfer", broken_once)
    caplog.set_level(logging.INFO)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        result = await handle.result()
    assert result.status == "paid"
    failed = lines(caplog, "estuary.activity", "activity failed transfer_payout")
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    assert "KeyError" in failed[0].getMessage()
    sdk = lines(caplog, "temporalio.activity", "Completing activity as failed")
    assert len(sdk) == 1 and sdk[0].exc_info is not None
    assert isinstance(sdk[0].exc_info[1], KeyError)
    assert len(tracebacks(caplog)) == 1


async def test_worker_lines_have_workflow_run_activity_and_attempt(
    app, money, time_env, log_output
):
    pid = money.practitioner(balance=3_000)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await handle.result()
        run_id = (await handle.describe()).run_id
    records = json_lines(log_output)
    activity_lines = [
        r
        for r in records
        if r["logger"] == "estuary.activity" and r["message"].startswith("activity done")
    ]
    assert {r["activity"] for r in activity_lines} >= {"create_payout", "transfer_payout"}
    for r in activity_lines:
        assert (r["workflow_id"], r["run_id"], r["attempt"]) == (handle.id, run_id, 1)
        assert r["workflow_type"] == "PractitionerPayoutWorkflow"
    # A service's own logger inside an activity thread gets the same fields.
    provider = next(r for r in records if r["logger"] == "estuary.payment_provider")
    assert (provider["workflow_id"], provider["activity"]) == (handle.id, "transfer_payout")
    done = next(r for r in records if r["message"].startswith("workflow done"))
    assert (done["workflow_id"], done["run_id"]) == (handle.id, run_id)
    # The ids are fields, not repeated inside the message.
    assert "{'attempt'" not in done["message"]
