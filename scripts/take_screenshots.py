"""Retake docs/screenshots/ from a running console with the living demo (`make run`).

    .venv/bin/python scripts/take_screenshots.py --base-url http://127.0.0.1:5000 \\
        --email shots@estuary.local --password '…' [--out docs/screenshots]

The account must exist (`flask users create --role admin --email … --password …`) and be new
(no time zone saved yet): the last pictures are taken by a browser in Asia/Kolkata, whose
zone the first page saves. Every page is shown at 1366x800, the laptop size staff use; the
script fails, naming the page, when a page it needs is missing from the demo (for example,
the demo's workflows have not started yet). Debian's chromium drives it, like the browser
tests.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1366, "height": 800}
WHOLE_PAGE = {
    "onboarding-progress.png",
    "package-progress.png",
    "batch-dry-run-confirm.png",
    "batch-dry-run.png",
    "payout.png",
}


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/auth/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)
    # The first page saves the browser's zone and reloads itself; wait for that.
    page.wait_for_selector("body:not([data-time-zone-unset])", state="attached")
    page.wait_for_load_state()


def first_link(page: Page, pattern: str, text: str = "") -> str:
    """The href of the first link whose href matches `pattern` (and whose row or text holds
    `text`), or an error naming what was looked for."""
    links = page.locator("a[href]")
    for i in range(links.count()):
        link = links.nth(i)
        href = link.get_attribute("href") or ""
        if not re.search(pattern, href):
            continue
        if text:
            row = link.locator("xpath=ancestor-or-self::tr[1]")
            around = row.inner_text() if row.count() else link.inner_text()
            if text.lower() not in around.lower():
                continue
        return href
    raise SystemExit(f"{page.url}: no link to {pattern!r} {('with ' + repr(text)) if text else ''}")


def _shots(page: Page, out: Path) -> list[tuple[str, Callable[[], None]]]:
    def at(url: str) -> Callable[[], None]:
        return lambda: page.goto(url)

    def follow(list_url: str, pattern: str, text: str = "") -> Callable[[], None]:
        def go() -> None:
            page.goto(list_url)
            page.goto(first_link(page, pattern, text))

        return go

    def batch_dry_run_confirm() -> None:
        page.goto("/workflows/BatchPractitionerPayoutWorkflow/start")
        page.get_by_label("Min amount").fill("10.00")
        dry = page.get_by_label("Dry run")
        if dry.evaluate("e => e.tagName") == "SELECT":
            dry.select_option(label="yes")
        else:
            dry.check()
        page.get_by_label("Reason").fill("Weekly payout, checking the amounts first")
        page.locator("form [type=submit]").last.click()
        page.wait_for_load_state()

    def batch_dry_run_result() -> None:
        # From the confirmation page: confirm, and wait for the dry run's result.
        page.click("[data-testid=confirm-start]")
        page.wait_for_url(re.compile(r"/runs/[^/]+/[^/]+$"))
        page.wait_for_selector("[data-status=Completed]", timeout=60_000)

    return [
        ("home.png", at("/")),
        ("runs.png", at("/runs")),
        ("runs-search.png", at("/runs?q=practitioner+1")),
        ("approvals.png", at("/approvals/")),
        ("payouts.png", at("/payouts")),
        ("payout.png", follow("/payouts", r"^/payouts/\d+$")),
        ("practitioner-onboarding.png", follow("/practitioners", r"^/practitioners/\d+$", "Ines")),
        ("onboarding-progress.png", follow("/runs?q=Ines", r"^/runs/[^/]+/[^/]+$", "nboarding")),
        (
            "package-progress.png",
            follow("/runs?entity_type=package_purchase", r"^/runs/[^/]+/[^/]+$"),
        ),
        ("booking.png", follow("/bookings", r"^/bookings/\d+$")),
        ("batch-dry-run-confirm.png", batch_dry_run_confirm),
        ("batch-dry-run.png", batch_dry_run_result),
        ("workers.png", at("/workers")),
        ("reconciliation.png", at("/reconciliation/")),
        ("audit-log-asia-kolkata.png", at("/audit/")),
    ]


def take(browser: Browser, base_url: str, email: str, password: str, out: Path) -> list[str]:
    context = browser.new_context(base_url=base_url, viewport=VIEWPORT, timezone_id="Asia/Kolkata")
    page = context.new_page()
    page.set_default_timeout(20_000)
    taken = []
    try:
        sign_in(page, email, password)
        for name, go in _shots(page, out):
            go()
            page.wait_for_load_state("networkidle")
            # Run pages are long: their progress is below the fold, so take the whole page.
            whole = name in WHOLE_PAGE
            page.screenshot(path=str(out / name), full_page=whole)
            taken.append(f"{name}  {page.url}")
    finally:
        context.close()
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", default="docs/screenshots", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for line in take(browser, args.base_url, args.email, args.password, args.out):
                print(line)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
