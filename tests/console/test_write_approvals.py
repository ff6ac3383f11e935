"""The approvals queue and the four-eyes rule: self-approval refused in the console and in
the workflow, approver limits, the amount and payee the approver saw, mass assignment
ignored, bad input refused, and two approvers clicking at once giving one decision."""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading

import pytest
from sqlalchemy import select

from estuary.contracts.payments import ApprovePayoutDecision
from estuary.db import db
from estuary.models import Payout, PayoutApproval, StaffUser
from temporal_gateway.access import gateway
from temporal_gateway.gateway import UpdateRejected
from tests.conftest import running_workers
from tests.console.write_support import (
    HttpSession,
    audit_events,
    count_rows,
    counting_gateway_for,
    live_console,
    login,
    seed_practitioner,
    wait_for,
)

PAYOUT = "PractitionerPayoutWorkflow"


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _payout(app, status: str | None = None) -> Payout | None:
    with app.app_context():
        query = select(Payout).order_by(Payout.id.desc())
        if status:
            query = query.where(Payout.status == status)
        payout = db.session.scalar(query.limit(1))
        if payout is not None:
            db.session.expunge(payout)
        return payout


async def _request_payout(app, client, practitioner_id: int, amount: str) -> Payout:
    response = await asyncio.to_thread(
        client.post,
        f"/workflows/{PAYOUT}/start",
        data={
            "practitioner_id": str(practitioner_id),
            "amount_cents": amount,
            "action_reason": "early payout requested",
            "confirmed": "yes",
        },
    )
    assert response.status_code in (200, 303), _text(response)[:800]
    return await wait_for(lambda: _payout(app, "pending_approval"), what="a payout waiting")


def _set_limit(app, user: StaffUser, cents: int | None) -> None:
    with app.app_context():
        db.session.get(StaffUser, user.id).approval_limit_cents = cents
        db.session.commit()


def _approvals(app) -> list[tuple[str, str]]:
    with app.app_context():
        return [
            (a.approver, a.decision)
            for a in db.session.scalars(select(PayoutApproval).order_by(PayoutApproval.id))
        ]


async def test_queue_four_eyes_limits_what_was_seen_and_mass_assignment(app, local_env):
    pid = seed_practitioner(app, balance_cents=90_000, name="Maya Okafor")
    other_payee = seed_practitioner(app, balance_cents=90_000)
    requester, req_user = login(app, "approver")
    limited, limited_user = login(app, "approver")
    second, second_user = login(app, "approver")
    operator, _ = login(app, "operator")
    viewer, _ = login(app, "viewer")
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        gw = counting_gateway_for(app, local_env, prefix)
        payout = await _request_payout(app, requester, pid, "600.00")
        assert payout.requested_by == req_user.email

        # The queue: payee, amount, requester, age, approvals so far.
        queue = _text(await asyncio.to_thread(second.get, "/approvals/"))
        assert "Maya Okafor" in queue and "600.00 USD" in queue
        assert req_user.email in queue and "0 of 1" in queue and " min<" in queue
        assert f'data-testid="approve-{payout.id}"' in queue
        # The payout's own page carries the same decision forms.
        payout_page = _text(await asyncio.to_thread(second.get, f"/payouts/{payout.id}"))
        assert 'data-testid="payout-actions"' in payout_page
        assert f'data-testid="approve-{payout.id}"' in payout_page
        own = _text(await asyncio.to_thread(requester.get, "/approvals/"))
        assert "You requested this payout: another approver must decide" in own
        assert f'data-testid="approve-{payout.id}"' not in own

        url = f"/approvals/{payout.id}/approve"
        seen = {"amount_cents": "600.00", "practitioner_id": str(pid), "note": "ok"}
        calls = gw.calls

        # Roles that may not decide at all.
        assert (await asyncio.to_thread(viewer.post, url, data=seen)).status_code == 403
        assert (await asyncio.to_thread(operator.post, url, data=seen)).status_code == 403

        # Self-approval: refused by the console...
        mine = await asyncio.to_thread(requester.post, url, data=seen)
        assert mine.status_code == 409
        assert "you requested this payout" in _text(mine).lower()
        # ...and by the workflow's validator when the console is bypassed.
        with app.app_context(), pytest.raises(UpdateRejected, match="requested this payout"):
            await asyncio.to_thread(
                gateway().update,
                payout.workflow_id,
                "approve",
                ApprovePayoutDecision(
                    actor=req_user.email, amount_cents=60_000, practitioner_id=pid
                ),
            )
        calls += 1

        # Approver limit.
        _set_limit(app, limited_user, 50_000)
        over = await asyncio.to_thread(limited.post, url, data=seen)
        assert over.status_code == 409 and "above your approval limit" in _text(over)

        # The approval names what the approver saw; a different amount or payee is refused.
        for changed in ({"amount_cents": "599.99"}, {"practitioner_id": str(other_payee)}):
            stale = await asyncio.to_thread(second.post, url, data={**seen, **changed})
            assert stale.status_code == 409
            assert "changed since you saw it" in _text(stale)

        # Bad input: field messages, nothing sent.
        for bad, message in (
            ({"amount_cents": "NaN"}, "is not an amount"),
            ({"amount_cents": "1e309"}, "is not an amount"),
            ({"amount_cents": "-600.00"}, "greater than zero"),
            ({"amount_cents": "600.005"}, "more than two decimal places"),
            ({"practitioner_id": "abc"}, "is not an id"),
            ({"note": "n" * 1001}, "at most 1000"),
        ):
            response = await asyncio.to_thread(second.post, url, data={**seen, **bad})
            assert response.status_code == 422, bad
            assert message in _text(response), bad
        reject_url = f"/approvals/{payout.id}/reject"
        for bad, message in (
            ({}, "Reason code: is required"),
            ({"reason_code": "because"}, "is not one of"),
            ({"reason_code": "other"}, "required with reason code 'other'"),
        ):
            data = {"amount_cents": "600.00", "practitioner_id": str(pid), **bad}
            response = await asyncio.to_thread(second.post, reject_url, data=data)
            assert response.status_code == 422, bad
            assert message in _text(response), bad
        assert gw.calls == calls  # nothing above reached Temporal
        assert _approvals(app) == []
        assert _payout(app).status == "pending_approval"
        # The form shown again after a refusal returns to the page it came from, not to
        # the POST's URL (following that after a fixed reject answered 405).
        refused = await asyncio.to_thread(
            second.post,
            reject_url,
            data={"amount_cents": "600.00", "practitioner_id": str(pid), "next": "/approvals/"},
        )
        nexts = set(re.findall(r'name="next" value="([^"]*)"', _text(refused)))
        assert nexts == {"/approvals/"}, nexts

        # Mass assignment: a server-filled field (who acts) is refused by name ...
        typed = await asyncio.to_thread(second.post, url, data={**seen, "actor": req_user.email})
        assert typed.status_code == 422
        assert "actor: is filled in by the server" in _text(typed)
        assert _approvals(app) == [] and gw.calls == calls
        # ... and fields no form declares (status, approver, ...) are ignored.
        ok = await asyncio.to_thread(
            second.post,
            url,
            data={
                **seen,
                "status": "paid",
                "approver": req_user.email,
                "approvals_required": "0",
            },
        )
        assert ok.status_code == 303, _text(ok)[:1500]
        assert _approvals(app) == [(second_user.email, "approve")]
        event = audit_events(app, action="approvals.approve")[-1]
        assert event.outcome == "success" and event.actor == second_user.email
        assert json.loads(event.params_json)["actor"] == second_user.email
        await wait_for(lambda: _payout(app).status == "paid", what="the payout paid")

        # Approving again: already decided.
        again = await asyncio.to_thread(second.post, url, data=seen)
        assert again.status_code == 409 and "already decided" in _text(again)

    outcomes = [(e.actor, e.outcome) for e in audit_events(app, action="approvals.approve")]
    assert (req_user.email, "denied") in outcomes
    assert (limited_user.email, "denied") in outcomes
    assert sum(1 for _, o in outcomes if o == "invalid") == 7  # 6 bad inputs, 1 typed actor
    assert [e.outcome for e in audit_events(app, action="approvals.reject")] == ["invalid"] * 4


async def test_reject_needs_a_reason_code_and_is_recorded(app, local_env):
    pid = seed_practitioner(app, balance_cents=90_000)
    operator, _ = login(app, "operator")
    approver, ap_user = login(app, "approver")
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        payout = await _request_payout(app, operator, pid, "550.00")
        response = await asyncio.to_thread(
            approver.post,
            f"/approvals/{payout.id}/reject",
            data={
                "amount_cents": "550.00",
                "practitioner_id": str(pid),
                "reason_code": "duplicate",
                "note": "already paid by hand",
            },
        )
        assert response.status_code == 303, _text(response)[:1500]
        await wait_for(lambda: _payout(app).status == "rejected", what="rejected")
        event = audit_events(app, action="approvals.reject")[-1]
        assert event.outcome == "success"
        assert event.reason == "duplicate: already paid by hand"
        assert _approvals(app) == [(ap_user.email, "reject")]
        queue = _text(await asyncio.to_thread(approver.get, "/approvals/"))
        assert 'data-testid="approvals-empty"' in queue


async def test_two_approvers_clicking_at_once_give_one_decision(app, local_env):
    """Threads against a live console: both approvals are sent at the same moment."""
    pid = seed_practitioner(app, balance_cents=90_000)
    operator, _ = login(app, "operator")
    first_user = login(app, "approver")[1]
    second_user = login(app, "approver")[1]
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        payout = await _request_payout(app, operator, pid, "700.00")
        app.config["WTF_CSRF_ENABLED"] = True
        with live_console(app) as base_url:
            sessions = []
            for user in (first_user, second_user):
                s = HttpSession(base_url)
                await asyncio.to_thread(s.sign_in, user.email)
                sessions.append(s)
            tokens = [await asyncio.to_thread(s.token, "/approvals/") for s in sessions]
            barrier = threading.Barrier(2)
            results: list[tuple[int, str]] = [(0, ""), (0, "")]

            def click(i: int) -> None:
                data = {
                    "amount_cents": "700.00",
                    "practitioner_id": str(pid),
                    "csrf_token": tokens[i],
                }
                barrier.wait()
                results[i] = sessions[i].request(f"/approvals/{payout.id}/approve", data)

            threads = [threading.Thread(target=click, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            await asyncio.to_thread(lambda: [t.join(30) for t in threads])

        statuses = sorted(code for code, _ in results)
        assert statuses == [303, 409], results
        loser = next(body for code, body in results if code == 409)
        assert "already decided" in html.unescape(loser) or "already approved" in html.unescape(
            loser
        )
        assert [d for _, d in _approvals(app)] == ["approve"]
        events = audit_events(app, action="approvals.approve")
        assert sorted(e.outcome for e in events) == ["denied", "success"]
        await wait_for(lambda: _payout(app).status == "paid", what="paid once")
        assert count_rows(app, PayoutApproval) == 1


async def test_first_of_two_approvals_says_it_waits_for_a_second_approver(app, local_env):
    pid = seed_practitioner(app, balance_cents=700_000, name="Rafael Duarte")
    requester, _ = login(app, "approver")
    first, _ = login(app, "approver")
    second, _ = login(app, "approver")
    async with running_workers(local_env.client, app, ["payments"]) as prefix:
        counting_gateway_for(app, local_env, prefix)
        payout = await _request_payout(app, requester, pid, "5200.00")  # above the dual tier
        assert payout.approvals_required == 2
        url = f"/approvals/{payout.id}/approve"
        seen = {"amount_cents": "5200.00", "practitioner_id": str(pid)}
        once = await asyncio.to_thread(first.post, url, data=seen, follow_redirects=True)
        flashed = _text(once)
        assert (
            f"Approved — waiting for a second approver: payout #{payout.id}, 5,200.00 USD to "
            "Rafael Duarte (1 of 2 approvals)." in flashed
        )
        assert "is being paid" not in flashed
        twice = await asyncio.to_thread(second.post, url, data=seen, follow_redirects=True)
        assert (
            f"Approved payout #{payout.id}, 5,200.00 USD to Rafael Duarte: it has the "
            "approvals it needs and is being paid." in _text(twice)
        )
        await wait_for(lambda: _payout(app).status == "paid", what="the payout paid")
