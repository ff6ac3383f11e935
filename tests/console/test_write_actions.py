"""Acting on runs from the console: domain actions as generated forms (signals carry the
actor, update refusals appear inline), cancel with a reason, terminate and reset for
admins, retry (run again with the same input, or reset to the last failure point) with
the money confirmation, and bulk retry of the failed runs matching a filter."""

from __future__ import annotations

import asyncio
import html
import json
import uuid

import pytest
from sqlalchemy import func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from dashboard.run_actions import bulk_retry, control
from estuary.contracts.bookings import BookingLifecycleInput, lifecycle_workflow_id
from estuary.db import db
from estuary.models import Booking, Payout, Transfer
from temporal_gateway.run_history import HistorySummary
from tests.conftest import running_workers, unique_prefix
from tests.console.write_support import (
    audit_events,
    counting_gateway_for,
    login,
    seed_booking,
    seed_practitioner,
    sign_in,
    unreachable_gateway,
    wait_for,
)

LIFECYCLE = "BookingLifecycleWorkflow"
PAYOUT = "PractitionerPayoutWorkflow"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


async def _post(client, url: str, data: dict, **kwargs):
    return await asyncio.to_thread(client.post, url, data=data, **kwargs)


async def _get(client, url: str, **kwargs):
    return await asyncio.to_thread(client.get, url, **kwargs)


async def _status(env, workflow_id: str) -> WorkflowExecutionStatus | None:
    return (await env.client.get_workflow_handle(workflow_id).describe()).status


async def _wait_status(env, workflow_id: str, status: WorkflowExecutionStatus, timeout=20):
    async def check():
        return await _status(env, workflow_id) == status

    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{workflow_id} did not reach {status}")
        await asyncio.sleep(0.1)


async def _wait_loaded(env, workflow_id: str) -> None:
    """Until the lifecycle has loaded its booking (updates before that are refused)."""
    handle = env.client.get_workflow_handle(workflow_id)
    for _ in range(200):
        try:
            if (await handle.query("progress"))["stage"] != "starting":
                return
        except Exception:  # the first workflow task has not run yet
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never loaded its booking")


def _booking_status(app, booking_id: int) -> str:
    with app.app_context():
        return db.session.get(Booking, booking_id).status


async def _start_lifecycle(client, booking_id: int) -> str:
    response = await _post(
        client,
        f"/workflows/{LIFECYCLE}/start",
        {"booking_id": str(booking_id), "action_reason": "test"},
    )
    assert response.status_code in (200, 303), _text(response)[:800]
    return lifecycle_workflow_id(booking_id)


# --- signals and updates ------------------------------------------------------------------------


async def test_booking_page_forms_validation_refusal_and_cancel(app, local_env):
    booking = seed_booking(app, hours_ahead=72)
    operator, user = login(app, "operator")
    async with running_workers(local_env.client, app, ["bookings", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        wid = await _start_lifecycle(operator, booking)
        await _wait_loaded(local_env, wid)

        page = await _get(operator, f"/bookings/{booking}")
        assert page.status_code == 200
        body = _text(page)
        # The session is three days ahead: cancel or move it; its outcome and feedback
        # are not offered yet (the lifecycle would ignore them).
        for name in ("cancel", "reschedule"):
            assert f'data-testid="action-{name}"' in body, name
        for name in ("mark_completed", "mark_no_show", "feedback_received"):
            assert f'data-testid="action-{name}"' not in body, name
        assert 'name="actor"' not in body
        assert 'data-testid="cancel-form"' in body  # cancel the run (operator)
        assert 'data-testid="terminate-form"' not in body  # admin only

        base = f"/runs/{wid}/update"
        # Bad input: field messages, nothing sent to the workflow.
        bad = await _post(
            operator,
            f"{base}/reschedule",
            {"workflow_type": LIFECYCLE, "new_start_at": "soon", "reason": "x" * 501},
        )
        assert bad.status_code == 422
        text = _text(bad)
        assert "is not a date and time" in text and "at most 500" in text
        no_reason = await _post(operator, f"{base}/cancel", {"workflow_type": LIFECYCLE})
        assert no_reason.status_code == 422
        assert "Reason: is required" in _text(no_reason)
        wrong_enum = await _post(
            operator,
            f"{base}/cancel",
            {"workflow_type": LIFECYCLE, "reason": "ill", "by": "the cat"},
        )
        assert wrong_enum.status_code == 422
        assert "is not one of" in _text(wrong_enum)
        assert [e.outcome for e in audit_events(app, action="runs.update")] == ["invalid"] * 3

        # The workflow's validator refuses: its reason is shown inline (htmx fragment).
        refused = await _post(
            operator,
            f"{base}/reschedule",
            {"workflow_type": LIFECYCLE, "new_start_at": "2001-02-03T04:05", "reason": "oops"},
            headers={"HX-Request": "true"},
        )
        assert refused.status_code == 422
        fragment = _text(refused)
        assert fragment.lstrip().startswith("<form")
        assert "Refused by the workflow" in fragment and "is not in the future" in fragment
        assert audit_events(app, action="runs.update")[-1].outcome == "denied"
        assert _booking_status(app, booking) == "confirmed"

        # Mass assignment: an `actor` field in the request is refused by name ...
        typed = await _post(
            operator,
            f"{base}/cancel",
            {"workflow_type": LIFECYCLE, "reason": "ill", "by": "client", "actor": "x@y"},
        )
        assert typed.status_code == 422 and "actor: is filled in by the server" in _text(typed)
        assert _booking_status(app, booking) == "confirmed"
        # ... and the signed-in user is the actor.
        done = await _post(
            operator,
            f"{base}/cancel",
            {
                "workflow_type": LIFECYCLE,
                "reason": "client is ill",
                "by": "client",
                "next": f"/bookings/{booking}",
            },
        )
        assert done.status_code == 303
        assert done.headers["Location"].endswith(f"/bookings/{booking}")
        await wait_for(lambda: _booking_status(app, booking) == "cancelled", what="cancelled")
        event = audit_events(app, action="runs.update")[-1]
        assert event.outcome == "success" and event.target == f"workflow:{wid}"
        params = json.loads(event.params_json)
        assert params["actor"] == user.email and params["name"] == "cancel"
        assert event.reason == "client is ill"
        with app.app_context():
            assert db.session.get(Booking, booking).cancelled_by == f"client:{user.email}"

        # A second cancel from the now stale page: nothing is sent, the page is shown
        # again (its actions now fit the closed run) with one message saying why.
        again = await _post(
            operator,
            f"{base}/cancel",
            {"workflow_type": LIFECYCLE, "reason": "twice", "next": f"/bookings/{booking}"},
            headers={"HX-Request": "true"},
        )
        assert again.status_code == 200
        assert again.headers["HX-Redirect"].endswith(f"/bookings/{booking}")
        assert audit_events(app, action="runs.update")[-1].outcome != "success"
        page = _text(await _get(operator, f"/bookings/{booking}"))
        assert page.count("Nothing was sent: the run has already finished") == 1


async def test_signal_carries_the_actor_and_viewers_are_refused(app, local_env):
    booking = seed_booking(app, hours_ahead=72)
    operator, user = login(app, "operator")
    viewer, _ = login(app, "viewer")
    async with running_workers(local_env.client, app, ["bookings", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        wid = await _start_lifecycle(operator, booking)
        url = f"/runs/{wid}/signal/feedback_received"
        form = {"workflow_type": LIFECYCLE, "rating": "5", "comment": "lovely"}
        denied = await _post(viewer, url, form)
        assert denied.status_code == 403
        bad = await _post(operator, url, {**form, "rating": "9"})
        assert bad.status_code == 422 and "at most 5" in _text(bad)
        unknown = await _post(operator, f"/runs/{wid}/signal/drop_tables", form)
        assert unknown.status_code == 404
        wrong_type = await _post(operator, url, {**form, "workflow_type": "NoSuchWorkflow"})
        assert wrong_type.status_code == 404
        sent = await _post(operator, url, form)
        assert sent.status_code == 303
        outcomes = [e.outcome for e in audit_events(app, action="runs.signal")]
        # denied (viewer), invalid (rating 9), invalid x2 (no such signal, no such workflow)
        assert outcomes == ["denied", "invalid", "invalid", "invalid", "success"]
        handle = local_env.client.get_workflow_handle(wid)
        signals = [
            e
            async for e in handle.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        assert len(signals) == 1
        payload = json.loads(
            signals[0].workflow_execution_signaled_event_attributes.input.payloads[0].data
        )
        assert payload["actor"] == user.email and payload["rating"] == 5


# --- cancel, terminate, reset ---------------------------------------------------------------------


async def test_cancel_needs_a_reason_terminate_and_reset_are_for_admins(app, local_env):
    first, second = seed_booking(app), seed_booking(app)
    operator, _ = login(app, "operator")
    admin, _ = login(app, "admin")
    async with running_workers(local_env.client, app, ["bookings", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        wid1 = await _start_lifecycle(operator, first)
        wid2 = await _start_lifecycle(operator, second)

        missing = await _post(operator, f"/runs/{wid1}/cancel", {"action_reason": " "})
        assert missing.status_code == 422 and "a reason is required" in _text(missing)
        assert await _status(local_env, wid1) == WorkflowExecutionStatus.RUNNING
        ok = await _post(operator, f"/runs/{wid1}/cancel", {"action_reason": "duplicate booking"})
        assert ok.status_code == 303
        await _wait_status(local_env, wid1, WorkflowExecutionStatus.CANCELED)

        denied = await _post(operator, f"/runs/{wid2}/terminate", {"action_reason": "stop"})
        assert denied.status_code == 403
        denied_reset = await _post(operator, f"/runs/{wid2}/reset", {"action_reason": "again"})
        assert denied_reset.status_code == 403
        assert await _status(local_env, wid2) == WorkflowExecutionStatus.RUNNING

        bad_point = await _post(
            admin,
            f"/runs/{wid2}/reset",
            {"action_reason": "again", "point": "event", "event_id": "x"},
        )
        assert bad_point.status_code == 422 and "is not a whole number" in _text(bad_point)
        reset = await _post(
            admin, f"/runs/{wid2}/reset", {"action_reason": "replay from start", "point": "start"}
        )
        assert reset.status_code == 303, _text(reset)[:1500]
        event = audit_events(app, action="runs.reset")[-1]
        assert event.outcome == "success" and "new run" in event.detail

        term = await _post(admin, f"/runs/{wid2}/terminate", {"action_reason": "test cleanup"})
        assert term.status_code == 303
        await _wait_status(local_env, wid2, WorkflowExecutionStatus.TERMINATED)
        desc = await local_env.client.get_workflow_handle(wid2).describe()
        history = [
            e async for e in local_env.client.get_workflow_handle(wid2).fetch_history_events()
        ]
        reason = history[-1].workflow_execution_terminated_event_attributes.reason
        assert "test cleanup" in reason and "admin-" in reason
        assert desc.status == WorkflowExecutionStatus.TERMINATED
        outcomes = {
            (e.action, e.outcome) for e in audit_events(app) if e.action.startswith("runs.")
        }
        assert ("runs.cancel", "invalid") in outcomes and (
            "runs.cancel",
            "success",
        ) in outcomes
        assert ("runs.terminate", "denied") in outcomes and (
            "runs.reset",
            "denied",
        ) in outcomes
        assert ("runs.terminate", "success") in outcomes


# --- retry --------------------------------------------------------------------------------------


async def test_retry_a_failed_run_with_the_same_input_and_by_reset(app, local_env):
    # A lifecycle for a booking that is not confirmed fails at once.
    booking = seed_booking(app, status="completed")
    other = seed_booking(app, status="completed")
    operator, user = login(app, "operator")
    async with running_workers(local_env.client, app, ["bookings", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        wid = await _start_lifecycle(operator, booking)
        wid2 = await _start_lifecycle(operator, other)
        await _wait_status(local_env, wid, WorkflowExecutionStatus.FAILED)
        await _wait_status(local_env, wid2, WorkflowExecutionStatus.FAILED)
        failed_run = (await local_env.client.get_workflow_handle(wid).describe()).run_id

        page = await _get(operator, f"/runs/{wid}/{failed_run}")
        assert 'data-testid="retry-forms"' in _text(page)
        # The run page's live refresh carries the Actions panel: a run that has just
        # failed offers Retry (and no Cancel) without a reload.
        live = _text(await _get(operator, f"/runs/{wid}/{failed_run}/live"))
        assert 'data-testid="run-actions"' in live and 'data-testid="retry-forms"' in live
        assert 'data-testid="cancel-form"' not in live
        assert f'name="next" value="/runs/{wid}/{failed_run}"' in live  # not the /live URL

        # Fix the data, then run again with the same input under the same id.
        with app.app_context():
            db.session.get(Booking, booking).status = "confirmed"
            db.session.commit()
        retried = await _post(
            operator, f"/runs/{wid}/retry", {"run_id": failed_run, "mode": "rerun"}
        )
        assert retried.status_code == 303, _text(retried)[:1500]
        await _wait_status(local_env, wid, WorkflowExecutionStatus.RUNNING)
        desc = await local_env.client.get_workflow_handle(wid).describe()
        assert desc.run_id != failed_run
        memo = await desc.memo()
        assert memo["retry_of"] == failed_run and memo["triggered_by"] == user.email
        event = audit_events(app, action="runs.retry")[-1]
        assert event.outcome == "success" and event.target == f"workflow:{wid}"

        # A running run is not retried.
        again = await _post(operator, f"/runs/{wid}/retry", {"mode": "rerun"})
        assert again.status_code == 303
        assert audit_events(app, action="runs.retry")[-1].outcome == "invalid"

        # Reset to the last failure point: a new run from the failed one's history.
        run2 = (await local_env.client.get_workflow_handle(wid2).describe()).run_id
        reset = await _post(operator, f"/runs/{wid2}/retry", {"run_id": run2, "mode": "reset"})
        assert reset.status_code == 303
        event = audit_events(app, action="runs.retry")[-1]
        assert event.outcome == "success" and "reset to event" in event.detail
        assert (await local_env.client.get_workflow_handle(wid2).describe()).run_id != run2


async def test_money_retry_says_whether_money_could_move_again(app, local_env):
    declined = seed_practitioner(app, balance_cents=40_000)
    slow = seed_practitioner(app, balance_cents=40_000)
    operator, _ = login(app, "operator")
    admin, _ = login(app, "admin")
    app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = [declined]
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        start = {"amount_cents": "100.00", "action_reason": "test payout", "confirmed": "yes"}
        await _post(
            operator, f"/workflows/{PAYOUT}/start", {**start, "practitioner_id": str(declined)}
        )
        wid = audit_events(app, action="catalog.start")[-1].target.removeprefix("workflow:")
        await _wait_status(local_env, wid, WorkflowExecutionStatus.FAILED)

        # No transfer happened: the confirmation says money could move.
        confirm = await _post(operator, f"/runs/{wid}/retry", {"mode": "rerun"})
        assert confirm.status_code == 200
        body = _text(confirm)
        assert "Money could move again" in body and "100.00 USD" in body
        assert 'name="action_reason_code"' in body
        # Retry offers its own codes (what was fixed), not the payout rejection codes.
        assert 'value="payee_details_corrected"' in body
        assert 'value="suspected_fraud"' not in body and 'value="duplicate"' not in body
        rejection_code = await _post(
            operator,
            f"/runs/{wid}/retry",
            {"mode": "rerun", "confirmed": "yes", "action_reason_code": "suspected_fraud"},
        )
        assert rejection_code.status_code == 422
        assert "&#39;suspected_fraud&#39; is not one of: provider_outage_resolved" in (
            rejection_code.get_data(as_text=True)
        )
        missing = await _post(operator, f"/runs/{wid}/retry", {"mode": "rerun", "confirmed": "yes"})
        assert missing.status_code == 422 and "reason code is required" in _text(missing)
        other = await _post(
            operator,
            f"/runs/{wid}/retry",
            {"mode": "rerun", "confirmed": "yes", "action_reason_code": "other"},
        )
        assert other.status_code == 422 and "say why" in _text(other)
        app.config["PAYMENT_PROVIDER_DECLINE_PAYEES"] = []
        ok = await _post(
            operator,
            f"/runs/{wid}/retry",
            {
                "mode": "rerun",
                "confirmed": "yes",
                "action_reason_code": "payee_details_corrected",
                "action_reason": "bank details fixed",
            },
        )
        assert ok.status_code == 303, _text(ok)[:1500]
        await _wait_status(local_env, wid, WorkflowExecutionStatus.COMPLETED)
        event = audit_events(app, action="runs.retry")[-1]
        assert event.outcome == "success"
        assert event.reason == "payee_details_corrected: bank details fixed"
        assert json.loads(event.params_json)["money_could_move"] is True

        # The transfer committed, then the run was terminated: money cannot move again.
        app.config["PAYMENT_PROVIDER_DELAY_AFTER_COMMIT_SECONDS"] = 4
        await _post(operator, f"/workflows/{PAYOUT}/start", {**start, "practitioner_id": str(slow)})
        wid2 = audit_events(app, action="catalog.start")[-1].target.removeprefix("workflow:")

        def transferred() -> bool:
            with app.app_context():
                return bool(
                    db.session.scalar(
                        select(func.count(Transfer.id))
                        .join(Payout, Payout.id == Transfer.payout_id)
                        .where(Payout.workflow_id == wid2)
                    )
                )

        await wait_for(transferred, what="the committed transfer")
        term = await _post(
            admin,
            f"/runs/{wid2}/terminate",
            {"action_reason_code": "other", "action_reason": "provider hangs", "money": "yes"},
        )
        assert term.status_code == 303, _text(term)[:1500]
        await _wait_status(local_env, wid2, WorkflowExecutionStatus.TERMINATED)
        app.config["PAYMENT_PROVIDER_DELAY_AFTER_COMMIT_SECONDS"] = 0
        confirm2 = await _post(operator, f"/runs/{wid2}/retry", {"mode": "rerun"})
        body2 = _text(confirm2)
        assert "Money cannot move again" in body2 and "transfer step already completed" in body2
        ok2 = await _post(
            operator,
            f"/runs/{wid2}/retry",
            {
                "mode": "rerun",
                "confirmed": "yes",
                "action_reason_code": "other",
                "action_reason": "finish the settled payout",
            },
        )
        assert ok2.status_code == 303
        await _wait_status(local_env, wid2, WorkflowExecutionStatus.COMPLETED)
        with app.app_context():
            transfers = db.session.scalar(
                select(func.count(Transfer.id))
                .join(Payout, Payout.id == Transfer.payout_id)
                .where(Payout.practitioner_id == slow)
            )
        assert transfers == 1


# --- bulk retry ---------------------------------------------------------------------------------


async def test_bulk_retry_previews_caps_and_confirms(app, local_env, monkeypatch):
    bookings = [seed_booking(app, status="completed") for _ in range(3)]
    operator, user = login(app, "operator")
    viewer = sign_in(app, login(app, "viewer")[1])
    async with running_workers(local_env.client, app, ["bookings", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        wids = [await _start_lifecycle(operator, b) for b in bookings]
        for wid in wids:
            await _wait_status(local_env, wid, WorkflowExecutionStatus.FAILED)
        url = f"/runs/bulk-retry?workflow_type={LIFECYCLE}&status=Failed"

        async def listed() -> str:
            page = await _get(operator, url)
            text = _text(page)
            return text if "<strong>3</strong> runs match" in text else ""

        deadline = asyncio.get_running_loop().time() + 15
        while not (body := await listed()):
            if asyncio.get_running_loop().time() > deadline:
                page = _text(await _get(operator, url))
                raise AssertionError(page[page.find("<main") :][:3000])
            await asyncio.sleep(0.3)
        for wid in wids:
            assert wid in body
        assert (await _get(viewer, url)).status_code == 403

        monkeypatch.setattr(bulk_retry, "BULK_RETRY_CAP", 2)
        capped = _text(await _get(operator, url))
        assert "the first 2 are shown" in capped
        assert capped.count('name="run"') == 2

        monkeypatch.undo()
        bad_filter = await _get(operator, "/runs/bulk-retry?workflow_type=Nope'--")
        assert bad_filter.status_code == 422

        chosen = [
            f"{wid}|{(await local_env.client.get_workflow_handle(wid).describe()).run_id}"
            for wid in wids[:2]
        ]
        form = {"workflow_type": LIFECYCLE, "status": "Failed", "run": chosen}
        no_reason = await _post(operator, "/runs/bulk-retry", form)
        assert no_reason.status_code == 422 and "a reason is required" in _text(no_reason)
        with app.app_context():
            for b in bookings:
                db.session.get(Booking, b).status = "confirmed"
            db.session.commit()
        done = await _post(operator, "/runs/bulk-retry", {**form, "action_reason": "data fixed"})
        assert done.status_code == 200
        summary = _text(done)
        assert "2 of 2 runs started again" in summary, summary[summary.find("<main") :]
        for wid in wids[:2]:
            await _wait_status(local_env, wid, WorkflowExecutionStatus.RUNNING)
        assert await _status(local_env, wids[2]) == WorkflowExecutionStatus.FAILED
        events = audit_events(app, action="runs.bulk_retry")
        assert [e.outcome for e in events] == ["denied", "invalid", "success", "success"]
        assert events[0].role == "viewer"
        assert all(e.actor == user.email for e in events[1:])

        # The retried runs stay Failed in Temporal's lists, but the next pass offers only
        # the one not yet retried (the preview once showed the same newest runs forever).
        async def only_the_third() -> str:
            text = _text(await _get(operator, url))
            return text if "<strong>1</strong> run matches" in text else ""

        deadline = asyncio.get_running_loop().time() + 15
        while not (body := await only_the_third()):
            assert asyncio.get_running_loop().time() < deadline, "retried runs still offered"
            await asyncio.sleep(0.3)
        assert wids[2] in body and wids[0] not in body and wids[1] not in body


async def test_runs_page_and_bulk_retry_see_the_same_runs(app, local_env):
    """One scope (`visibility.console_scope`) for every page: the runs page lists and bulk
    retry offers the same runs, those on a queue under this console's prefix (a domain's,
    or another it runs there), and neither shows a run of another deployment."""
    prefix = unique_prefix()
    counting_gateway_for(app, local_env, prefix)
    operator, _ = login(app, "operator")
    ours, shadow, foreign = (f"bookings-lifecycle-scope{uuid.uuid4().hex[:8]}" for _ in range(3))
    queues = {
        ours: f"{prefix}bookings",
        shadow: f"{prefix}bookings-shadow",
        foreign: f"{unique_prefix()}bookings",
    }
    for wid, queue in queues.items():
        handle = await local_env.client.start_workflow(
            LIFECYCLE, BookingLifecycleInput(booking_id=1), id=wid, task_queue=queue
        )
        await handle.terminate(reason="scope test")
    query = f"?workflow_type={LIFECYCLE}&status=Terminated"

    async def pages() -> tuple[str, str]:
        runs = _text(await _get(operator, f"/runs{query}"))
        offered = _text(await _get(operator, f"/runs/bulk-retry{query}"))
        return runs, offered

    def listed(page: str) -> set[str]:
        return {wid for wid in queues if wid in page}

    deadline = asyncio.get_running_loop().time() + 15
    runs, offered = await pages()
    while listed(runs) != {ours, shadow} or listed(offered) != {ours, shadow}:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError((listed(runs), listed(offered), runs[runs.find("<main") :][:2000]))
        await asyncio.sleep(0.3)
        runs, offered = await pages()
    # The other deployment's run is in Temporal's lists, on no page of this console.
    visible = await local_env.client.count_workflows(f"WorkflowId = '{foreign}'")
    assert visible.count == 1
    assert "<strong>2</strong> runs match" in offered


@pytest.mark.parametrize(
    ("kind", "offered", "refused"),
    [
        ("cancel", "started_in_error", "fix_deployed"),
        ("terminate", "stuck_run", "payee_details_corrected"),
        ("reset", "fix_deployed", "suspected_fraud"),
    ],
)
def test_each_money_action_accepts_only_its_own_reason_codes(app, kind, offered, refused):
    gw = unreachable_gateway(app)
    admin, _ = login(app, "admin")
    form = {"money": "yes", "action_reason": "x", "run_id": ""}
    response = admin.post(f"/runs/ok-id/{kind}", data={**form, "action_reason_code": refused})
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f"&#39;{refused}&#39; is not one of: " in body
    # The re-shown form offers this action's codes only.
    assert f'value="{offered}"' in body and f'value="{refused}"' not in body
    assert gw.calls == 0


def test_actions_refuse_bad_ids_before_temporal(app):
    gw = unreachable_gateway(app)
    operator, _ = login(app, "operator")
    for url in (
        "/runs/bad%20id/cancel",
        "/runs/x'y/retry",
        f"/runs/{'a' * 300}/cancel",
    ):
        assert operator.post(url, data={"action_reason": "x", "mode": "rerun"}).status_code == 404
    response = operator.post("/runs/ok-id/retry", data={"mode": "explode"})
    assert response.status_code == 303
    assert gw.calls == 0


@pytest.mark.parametrize("point", ["last_failure", "start"])
def test_reset_point_uses_the_history_summary(point):
    summary = HistorySummary(
        first_task_completed=4, last_task_completed=20, failure_task_completed=10
    )
    event, _ = control.reset_point(summary, point, "")
    assert event == (10 if point == "last_failure" else 4)
    bare = HistorySummary(first_task_completed=4, last_task_completed=20)
    assert bare.failure_point == 20
