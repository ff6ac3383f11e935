"""Domain actions on the practitioner page: the onboarding's review documents, background
check result, extend and reject forms, and the subscription renewal's retry now and waive,
generated from the workflow specs; bad input gets field messages, refusals come inline."""

from __future__ import annotations

import asyncio
import html
import json
from datetime import timedelta

from estuary.contracts.practitioners import onboarding_workflow_id, subscription_workflow_id
from estuary.db import db
from estuary.models import Subscription
from estuary.models.base import utcnow
from tests.conftest import running_workers
from tests.console.write_support import (
    audit_events,
    counting_gateway_for,
    login,
    seed_practitioner,
    unreachable_gateway,
)


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _subscription(app, practitioner_id: int) -> int:
    with app.app_context():
        now = utcnow()
        sub = Subscription(
            practitioner_id=practitioner_id,
            tier="pro",
            price_cents=5_900,
            current_period_start=now - timedelta(days=5),
            current_period_end=now + timedelta(days=25),
        )
        db.session.add(sub)
        db.session.commit()
        return sub.id


async def _wait_running(env, workflow_id: str) -> None:
    handle = env.client.get_workflow_handle(workflow_id)
    for _ in range(200):
        try:
            await handle.query("progress")
            return
        except Exception:  # not started on a worker yet
            await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never answered progress")


async def test_practitioner_page_actions(app, local_env):
    pid = seed_practitioner(app, status="onboarding")
    sid = _subscription(app, pid)
    operator, user = login(app, "operator")
    viewer, _ = login(app, "viewer")
    async with running_workers(local_env.client, app, ["practitioners", "payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        for name, data in (
            ("PractitionerOnboardingWorkflow", {"practitioner_id": str(pid)}),
            ("SubscriptionRenewalWorkflow", {"subscription_id": str(sid), "confirmed": "yes"}),
        ):
            started = await asyncio.to_thread(
                operator.post,
                f"/workflows/{name}/start",
                data={**data, "action_reason": "console test"},
            )
            assert started.status_code in (200, 303), _text(started)[:800]
        onboarding = onboarding_workflow_id(pid)
        renewal = subscription_workflow_id(sid)
        await _wait_running(local_env, onboarding)
        await _wait_running(local_env, renewal)
        handle = local_env.client.get_workflow_handle(onboarding)
        for _ in range(200):  # the profile is complete: the run waits for documents
            progress = await handle.query("progress")
            if progress["documents"]["state"] == "awaiting_submission":
                break
            await asyncio.sleep(0.05)
        assert progress["current_step"] == "documents", progress["current_step"]

        page = _text(await asyncio.to_thread(operator.get, f"/practitioners/{pid}"))
        # Only what applies now: the onboarding waits for documents (plus extending that
        # step and rejecting); the renewal's updates; no other step's form.
        for name in ("submit_documents", "extend", "reject", "retry_now", "waive"):
            assert f'data-testid="action-{name}"' in page, name
        for name in (
            "complete_profile",
            "review_documents",
            "record_background_check",
            "background_check_result",
            "complete_training_module",
            "configure_service",
        ):
            assert f'data-testid="action-{name}"' not in page, name
        assert f"Subscription #{sid}" in page
        assert 'name="actor"' not in page
        # Viewers read the page but get no forms.
        assert 'data-testid="action-' not in _text(
            await asyncio.to_thread(viewer.get, f"/practitioners/{pid}")
        )

        def post(workflow_id, kind, name, data, **kw):
            return asyncio.to_thread(
                operator.post, f"/runs/{workflow_id}/{kind}/{name}", data=data, **kw
            )

        wf = {"workflow_type": "PractitionerOnboardingWorkflow"}
        bad_cases = (
            ({"step": "documents", "days": "0", "reason": "slow post"}, "at least 1"),
            ({"step": "documents", "days": "NaN", "reason": "x"}, "is not a whole number"),
            ({"step": "documents", "days": "1e309", "reason": "x"}, "is not a whole number"),
            ({"step": "nap", "days": "3", "reason": "x"}, "is not one of"),
            ({"step": "documents", "days": "3"}, "Reason: is required"),
            ({"step": "documents", "days": "3", "reason": "r" * 501}, "at most 500"),
        )
        for data, message in bad_cases:
            response = await post(onboarding, "update", "extend", {**wf, **data})
            assert response.status_code == 422, data
            assert message in _text(response), data
        review = await post(onboarding, "update", "review_documents", {**wf, "approved": "no"})
        assert review.status_code == 422
        assert "say what is wrong" in _text(review)
        check = await post(
            onboarding,
            "update",
            "record_background_check",
            {**wf, "passed": "maybe", "reference": "BC-1"},
        )
        assert check.status_code == 422 and "is not yes/no" in _text(check)
        # The signal of the same fact is not sent from the console (nothing would say
        # whether the workflow used it) ...
        signal = await post(
            onboarding, "signal", "background_check_result", {**wf, "passed": "yes"}
        )
        assert signal.status_code == 404
        # ... and the update is refused by the workflow's validator, with its reason.
        refused_check = await post(
            onboarding,
            "update",
            "record_background_check",
            {**wf, "passed": "yes", "reference": "BC-1"},
            headers={"HX-Request": "true"},
        )
        assert refused_check.status_code == 422
        fragment = _text(refused_check)
        assert (
            "Refused by the workflow" in fragment
            and "at the documents step, not background check" in fragment
        )
        assert "Sent" not in fragment
        event = audit_events(app, action="runs.update")[-1]
        assert event.outcome == "denied"
        params = json.loads(event.params_json)
        assert params["actor"] == user.email and params["reference"] == "BC-1"
        assert params["name"] == "record_background_check"

        # Nothing failed to charge, so the renewal's validator refuses: shown in the form.
        refused = await post(
            renewal,
            "update",
            "waive",
            {"workflow_type": "SubscriptionRenewalWorkflow", "reason": "goodwill"},
            headers={"HX-Request": "true"},
        )
        assert refused.status_code == 422
        fragment = _text(refused)
        assert 'data-testid="action-error"' in fragment and "Refused by the workflow" in fragment
        assert audit_events(app, action="runs.update")[-1].outcome == "denied"

        for wid in (onboarding, renewal):
            await local_env.client.get_workflow_handle(wid).terminate("test over")


def test_domain_pages_wait_for_an_unreachable_temporal_once(app):
    gw = unreachable_gateway(app)
    pid = seed_practitioner(app, status="onboarding")
    for _ in range(3):
        _subscription(app, pid)
    operator, _ = login(app, "operator")
    page = operator.get(f"/practitioners/{pid}")
    assert page.status_code in (200, 503)
    assert "Temporal is not answering" in _text(page)
    # One failed call stops the rest of the page's Temporal calls (read side included).
    assert gw.calls <= 2
