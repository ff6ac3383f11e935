"""Every page, for every role (issue 14, item 11): axe-core finds no serious or critical
violation, and at 1280x800 no page scrolls sideways. The pages come from the url_map
(tests/console/page_list.py) filled with a world that has something on each of them
(tests/e2e/every_page.py), so a page added later is walked without being listed here.

The pages are walked once per role (and the sign-in page once signed out); both tests
read what that walk found, so each says what is wrong on its own.

axe-core is the copy `axe-playwright-python` ships: nothing is downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.every_page import ROLES, build_world, settle, signed_in_context, walk

BLOCKING = ("serious", "critical")
LAPTOP = {"width": 1280, "height": 800}

# What sticks out of the viewport without a scrolling box around it (the first three).
STICKING_OUT = """() => {
  const w = document.scrollingElement.clientWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (out.length >= 3) break;
    const r = el.getBoundingClientRect();
    if (r.right <= w + 1) continue;
    let p = el.parentElement, clipped = false;
    for (; p && !clipped; p = p.parentElement)
      clipped = getComputedStyle(p).overflowX !== 'visible';
    const name = el.className ? '.' + String(el.className).split(' ')[0] : '';
    if (!clipped) out.push(el.tagName.toLowerCase() + name + ' right=' + Math.round(r.right));
  }
  return out;
}"""


@dataclass
class Walked:
    views: int = 0
    pages: int = 0
    violations: list[tuple[str, str]] = field(default_factory=list)
    wide: list[str] = field(default_factory=list)


def _blocking_violations(axe: Axe, page, where: str) -> list[tuple[str, str]]:
    """(what is wrong where on the page, which page view) for each serious or critical
    node axe-core finds."""
    found = []
    for v in axe.run(page).response["violations"]:
        if v.get("impact") not in BLOCKING:
            continue
        for node in v["nodes"]:
            target = " ".join(map(str, node["target"]))
            summary = " ".join(node.get("failureSummary", "").split())
            found.append((f"{v['impact']} {v['id']} at {target}: {summary}", where))
    return found


def _too_wide(page, where: str) -> list[str]:
    scroll, client = page.evaluate(
        "() => [document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]"
    )
    if scroll <= client:
        return []
    return [f"{where} is {scroll} px wide in {client}: {page.evaluate(STICKING_OUT)}"]


def _check(axe: Axe, page, where: str, walked: Walked) -> None:
    walked.wide += _too_wide(page, where)
    # axe-core skips what is hidden: open every fold (reject, cancel, reset forms) first.
    page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
    walked.violations += _blocking_violations(axe, page, where)
    walked.views += 1


@pytest.fixture(scope="module")
def walked(browser, live_stack) -> Walked:
    world = build_world(live_stack)
    axe = Axe()
    result = Walked(pages=len(world.pages) + 1)
    context = browser.new_context(base_url=live_stack.base_url, viewport=LAPTOP)
    try:
        login = context.new_page()
        login.goto("/auth/login")
        settle(login)
        _check(axe, login, "signed out: /auth/login", result)
    finally:
        context.close()
    for role in ROLES:
        context, page = signed_in_context(browser, live_stack, role, LAPTOP)
        try:
            for item, status in walk(page, world):
                _check(axe, page, f"{role}: {item} [{status}]", result)
        finally:
            context.close()
    return result


def _report(problems: list[tuple[str, str]]) -> str:
    """Each distinct violation once, with how many page views show it and the first."""
    seen: dict[str, list[str]] = {}
    for what, where in problems:
        seen.setdefault(what, []).append(where)
    return "\n".join(
        f"{what}\n    on {len(wheres)} page views, first {wheres[0]}"
        for what, wheres in seen.items()
    )


def test_every_page_passes_axe_for_every_role(walked):
    print(f"axe-core: {walked.views} page views ({walked.pages} pages, {len(ROLES)} roles)")
    assert walked.views > len(ROLES) * 20  # the url_map gave the walk its pages
    assert not walked.violations, (
        f"{len(walked.violations)} serious/critical violations:\n" + _report(walked.violations)
    )


def test_no_page_scrolls_sideways_at_1280(walked):
    assert walked.views > len(ROLES) * 20
    assert not walked.wide, "pages that scroll sideways at 1280x800:\n" + "\n".join(walked.wide)
