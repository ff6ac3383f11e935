"""Issue 14's defects, each as staff saw it in the browser (the Flask test-client tests in
tests/console/ show the same fixes from the inside):

1. every domain list with 51 rows: page 1 shows 50 and a pager, Next shows the rest (the
   pager macro once answered 500 as soon as a list had a second page);
2. a reject refused for its missing reason code, fixed and sent again, is recorded and
   lands back on the approvals page (the re-shown form once posted to the wrong place: 405);
3. the first of two approvals says it waits for a second approver;
4. retry and reset offer their own reason codes, not the payout rejection codes, and reset
   on a completed run does not default to "the last failure point";
5. with Temporal unreachable the runs page shows the banner, and the next load is fast.
"""

from __future__ import annotations

import re
import socket
import time
import uuid

from estuary.contracts.approval_rules import reason_codes_for
from estuary.db import db
from estuary.models import Booking, Client, Notification, Payout, Practitioner, Service
from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import TemporalGateway
from tests.conftest import gateway_for
from tests.console.test_list_paging import LISTS, seed_rows
from tests.console.write_support import seed_practitioner
from tests.e2e.clicks import payout_status, start_payout, wait_for
from tests.e2e.conftest import sign_in

ROWS = "main table tbody tr"
SEEDED = re.compile("paging", re.IGNORECASE)  # every row seed_rows makes says so


def _tag() -> str:
    return uuid.uuid4().hex[:4]


def _options(page, select: str) -> list[str]:
    return [v for v in page.locator(f"{select} option").evaluate_all("os => os.map(o => o.value)")]


def _remove_seeded_rows(app) -> None:
    """Take seed_rows' rows out again: the live stack's database is shared with the other
    browser tests, which look up practitioner 6, payout 4 or the approvals queue."""
    with app.app_context():
        practitioners = db.select(Practitioner.id).where(Practitioner.email.like("paging%@p.test"))
        db.session.execute(db.delete(Notification).where(Notification.key.like("paging-%")))
        db.session.execute(db.delete(Payout).where(Payout.idempotency_key.like("paging-payout-%")))
        db.session.execute(db.delete(Booking).where(Booking.practitioner_id.in_(practitioners)))
        db.session.execute(db.delete(Service).where(Service.practitioner_id.in_(practitioners)))
        db.session.execute(db.delete(Practitioner).where(Practitioner.email.like("paging%@p.test")))
        db.session.execute(db.delete(Client).where(Client.email == "paging@clients.test"))
        db.session.commit()


def test_every_list_with_51_rows_pages_to_the_51st(page, live_stack):
    seed_rows(live_stack.app, 51)
    try:
        _walk_every_list(page, live_stack)
    finally:
        _remove_seeded_rows(live_stack.app)


def _walk_every_list(page, live_stack) -> None:
    sign_in(page, live_stack.make_staff("viewer"))
    for url in LISTS:
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        assert page.locator(ROWS).count() == 50, url
        seen = sum(1 for t in page.locator(ROWS).all_inner_texts() if SEEDED.search(t))
        pages = 1
        while page.locator("[data-testid=next-page]").count():
            with page.expect_navigation() as nav:
                page.click("[data-testid=next-page]")
            assert nav.value is not None and nav.value.status == 200, (url, page.url)
            assert "Internal Server Error" not in page.inner_text("body"), url
            rows = page.locator(ROWS).all_inner_texts()
            assert 0 < len(rows) <= 50, (url, page.url, len(rows))
            seen += sum(1 for t in rows if SEEDED.search(t))
            pages += 1
            assert pages <= 5, f"{url}: the pager never ends"
        assert pages >= 2, f"{url}: no pager with more than 50 rows"
        assert seen == 51, (url, seen)


def test_a_refused_reject_fixed_and_sent_again_is_recorded(page, live_stack):
    pid = seed_practitioner(live_stack.app, balance_cents=120_000, name=f"Remi Refused {_tag()}")
    _, payout_id = start_payout(live_stack, pid, 70_000, "operator@e2e.local")
    sign_in(page, live_stack.make_staff("approver"))
    page.goto("/approvals/")

    page.click(f"#decision-{payout_id} details.reject > summary")
    page.click(f"[data-testid=reject-{payout_id}]")  # no reason code: refused
    page.locator(f"#reject-code-{payout_id}").wait_for()
    assert "Reason code: is required" in page.inner_text("main")
    assert payout_status(live_stack, payout_id) == "pending_approval"

    if not page.locator(f"#reject-code-{payout_id}").is_visible():
        page.click(f"#decision-{payout_id} details.reject > summary")
    page.select_option(f"#reject-code-{payout_id}", "duplicate")
    page.fill(f"#reject-note-{payout_id}", "paid twice by mistake")
    with page.expect_navigation() as nav:
        page.click(f"[data-testid=reject-{payout_id}]")
    assert nav.value is not None and nav.value.status == 200, nav.value and nav.value.status
    body = page.inner_text("body")
    assert "405" not in body and "not allowed" not in body, body[:500]
    assert re.search(rf"/(approvals|payouts/{payout_id})", page.url), page.url
    assert "Reject" in page.inner_text(".flashes"), page.inner_text(".flashes")
    wait_for(
        lambda: payout_status(live_stack, payout_id) == "rejected", "the payout to be rejected"
    )


def test_the_first_of_two_approvals_says_it_waits_for_a_second(page, live_stack):
    name = f"Wen Waiting {_tag()}"
    pid = seed_practitioner(live_stack.app, balance_cents=900_000, name=name)
    _, payout_id = start_payout(live_stack, pid, 520_000, "operator@e2e.local")  # dual tier
    sign_in(page, live_stack.make_staff("approver"))
    page.goto("/approvals/")
    page.click(f"[data-testid=approve-{payout_id}]")
    page.wait_for_url(re.compile(r"/approvals/"))
    flashed = page.inner_text(".flashes")
    assert (
        f"Approved — waiting for a second approver: payout #{payout_id}, 5,200.00 USD to "
        f"{name} (1 of 2 approvals)." in flashed
    ), flashed
    assert "is being paid" not in flashed
    assert "1 of 2" in page.inner_text(f"#payout-{payout_id}")
    assert payout_status(live_stack, payout_id) == "pending_approval"


def test_retry_and_reset_offer_their_own_reason_codes(page, live_stack):
    app = live_stack.app
    gw = app.extensions["temporal"]
    rejection_only = set(reason_codes_for("reject_payout")) - set(reason_codes_for("retry"))
    rejection_only -= set(reason_codes_for("reset"))
    assert rejection_only  # the test means something only while the lists differ
    sign_in(page, live_stack.make_staff("admin"))

    # A payout below the threshold is paid at once: a completed money run.
    pid = seed_practitioner(app, balance_cents=50_000, name=f"Cole Completed {_tag()}")
    small, _ = start_payout_below_threshold(live_stack, pid)
    with app.app_context():
        wait_for(lambda: gw.describe(small.workflow_id).status == "Completed", "payout paid")
    page.goto(f"/runs/{small.workflow_id}/{small.run_id}")
    page.click("[data-testid=reset-form] > summary")
    select = "[data-testid=reset-form] select[name=action_reason_code]"
    assert [v for v in _options(page, select) if v] == list(reason_codes_for("reset"))
    point = page.locator("[data-testid=reset-form] select[name=point]")
    assert point.input_value() != "last_failure"
    assert "last failure" not in point.evaluate("s => s.options[s.selectedIndex].text")

    # A payout cancelled while it waited for approval: a money run to retry.
    pid = seed_practitioner(app, balance_cents=120_000, name=f"Cara Cancelled {_tag()}")
    run, _ = start_payout(live_stack, pid, 65_000, "operator@e2e.local")
    with app.app_context():
        gw.cancel(run.workflow_id, run.run_id)
        wait_for(lambda: gw.describe(run.workflow_id).status == "Canceled", "the run cancelled")
    page.goto(f"/runs/{run.workflow_id}/{run.run_id}")
    page.click("[data-testid=retry-rerun]")  # a money run: the confirmation asks why
    codes = [v for v in _options(page, "select[name=action_reason_code]") if v]
    assert codes == list(reason_codes_for("retry")), codes
    assert not rejection_only & set(codes)


def start_payout_below_threshold(live_stack, practitioner_id: int):
    """A payout under the approval threshold, started like `start_payout`, and its run."""
    from estuary.contracts.payments import PractitionerPayoutInput
    from estuary.services import payout_policy

    app = live_stack.app
    with app.app_context():
        policy = payout_policy.policy_from_config(app.config)
        amount = max(1, policy.approval_threshold_cents // 2)
        run = app.extensions["temporal"].start(
            "PractitionerPayoutWorkflow",
            PractitionerPayoutInput(
                practitioner_id=practitioner_id,
                amount_cents=amount,
                requested_by="operator@e2e.local",
                reason="browser test",
                approval_threshold_cents=policy.approval_threshold_cents,
                dual_approval_threshold_cents=policy.dual_approval_threshold_cents,
                approval_timeout_seconds=policy.approval_timeout_seconds,
            ),
            triggered_by="operator@e2e.local",
            reason="browser test",
        )
    return run, amount


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _second_load_of_runs_is_fast(page, app, address: str, how: str) -> None:
    """The gateway pointed at `address` with the console's own timeouts (RPC 5 s,
    connect 3 s: once waited on every request): the first load finds out, the second
    shows the unreachable banner at once."""
    set_gateway(app, TemporalGateway({**app.config, "TEMPORAL_ADDRESS": address}))
    first = page.goto("/runs", timeout=30_000)
    assert first is not None and first.status in (200, 503), how
    page.locator("[data-testid=temporal-down]").wait_for()
    started = time.monotonic()
    again = page.goto("/runs")
    elapsed = time.monotonic() - started
    assert again is not None and again.status in (200, 503), how
    assert page.locator("[data-testid=temporal-down]").is_visible(), how
    assert "Temporal error (" not in page.inner_text("body"), how
    assert elapsed < 1.0, f"Temporal {how}: the second load took {elapsed:.2f} s"


def test_runs_page_with_temporal_unreachable_shows_the_banner_fast(page, live_stack, local_env):
    """Stopped (a closed port: connections refused) and hung (a socket that accepts
    connections and never answers, like a SIGSTOPped server)."""
    app = live_stack.app
    sign_in(page, live_stack.make_staff("operator"))
    hung = socket.socket()
    try:
        _second_load_of_runs_is_fast(page, app, f"127.0.0.1:{_closed_port()}", "stopped")
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)  # the kernel completes the handshakes; nothing ever reads
        _second_load_of_runs_is_fast(page, app, f"127.0.0.1:{hung.getsockname()[1]}", "hung")
    finally:
        hung.close()
        gateway_for(app, local_env, live_stack.prefix)  # the live stack's own gateway again
