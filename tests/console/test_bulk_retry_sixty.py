"""Bulk retry reaches every failed run (issue 14): with 60 failed runs and a cap of 25 a
pass, three passes through the page (preview, tick all, confirm) retry all 60, each once;
a retried run is never offered again, and the last pass offers nothing. (Bulk retry once
only ever saw the 25 newest failed runs.)"""

from __future__ import annotations

import asyncio
import html
import re

from dashboard import visibility
from dashboard.run_actions import bulk_retry
from estuary.contracts.bookings import BookingLifecycleInput
from estuary.db import db
from estuary.models import Booking
from tests.conftest import running_workers
from tests.console.write_support import counting_gateway_for, login, seed_booking

LIFECYCLE = "BookingLifecycleWorkflow"
FAILED_RUNS = 60
URL = f"/runs/bulk-retry?workflow_type={LIFECYCLE}&status=Failed"


def _offered(client) -> list[str]:
    body = html.unescape(client.get(URL).get_data(as_text=True))
    return re.findall(r'name="run" value="([^"]+)"', body)


async def _until(check, seconds: float, what: str):
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await asyncio.to_thread(check)
        if found:
            return found
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.5)


async def test_bulk_retry_reaches_all_sixty_failed_runs(app, local_env):
    bookings = [seed_booking(app, status="completed") for _ in range(FAILED_RUNS)]
    operator, _ = login(app, "operator")
    async with running_workers(local_env.client, app, ["bookings"]) as prefix:
        gw = counting_gateway_for(app, local_env, prefix)
        with app.app_context():
            for booking in bookings:
                gw.start(
                    LIFECYCLE,
                    BookingLifecycleInput(booking_id=booking),
                    triggered_by="tests",
                    reason="bulk retry of sixty",
                )
        failed = f"WorkflowType = '{LIFECYCLE}' AND ExecutionStatus = 'Failed'"
        scope = visibility.console_scope(gw.prefix)

        def all_failed() -> bool:
            return gw.count(f"{failed} AND {scope}") >= FAILED_RUNS

        await _until(all_failed, 90, "the 60 lifecycles to fail")
        with app.app_context():
            for booking in bookings:
                db.session.get(Booking, booking).status = "confirmed"  # the data is fixed
            db.session.commit()

        retried: list[str] = []
        passes = 0
        while True:
            # A retried run's new run reaches the lists a moment later: until then the
            # preview cannot tell it was retried, so wait for none of them to be offered.
            def settled() -> tuple[list[str]] | None:
                offered = _offered(operator)
                workflow_ids = {o.split("|")[0] for o in offered}
                return None if workflow_ids & set(retried) else (offered,)

            (offered,) = await _until(settled, 30, "the lists to show the retried runs")
            if not offered:
                break
            passes += 1
            assert len(offered) <= bulk_retry.BULK_RETRY_CAP
            form = {
                "workflow_type": LIFECYCLE,
                "status": "Failed",
                "run": offered,
                "action_reason": "bookings fixed",
            }
            done = await asyncio.to_thread(operator.post, "/runs/bulk-retry", data=form)
            text = html.unescape(done.get_data(as_text=True))
            assert done.status_code == 200, text[:2000]
            assert f"{len(offered)} of {len(offered)} runs started again" in text
            retried.extend(o.split("|")[0] for o in offered)
            assert passes <= 4, "bulk retry keeps offering runs"

        assert passes == 3  # 25 + 25 + 10
        assert len(retried) == len(set(retried)) == FAILED_RUNS
