"""Every page, for every role (issue 14, item 11): axe-core finds no serious or critical
violation, and at 1280x800 no page scrolls sideways. The pages come from the url_map
(tests/console/page_list.py) filled with a world that has something on each of them
(tests/e2e/every_page.py), so a page added later is walked without being listed here.

axe-core is the copy `axe-playwright-python` ships: nothing is downloaded at run time.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.e2e.every_page import ROLES, World, build_world, settle, signed_in_context, walk

BLOCKING = ("serious", "critical")
LAPTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def world(live_stack) -> World:
    return build_world(live_stack)


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


def _report(problems: list[tuple[str, str]]) -> str:
    """Each distinct violation once, with how many page views show it and the first."""
    seen: dict[str, list[str]] = {}
    for what, where in problems:
        seen.setdefault(what, []).append(where)
    return "\n".join(
        f"{what}\n    on {len(wheres)} page views, first {wheres[0]}"
        for what, wheres in seen.items()
    )


def test_every_page_passes_axe_for_every_role(browser, live_stack, world):
    axe = Axe()
    problems: list[tuple[str, str]] = []
    checked = 0

    context = browser.new_context(base_url=live_stack.base_url, viewport=LAPTOP)
    try:
        login = context.new_page()
        login.goto("/auth/login")
        settle(login)
        problems += _blocking_violations(axe, login, "signed out: /auth/login")
        checked += 1
    finally:
        context.close()

    for role in ROLES:
        context, page = signed_in_context(browser, live_stack, role, LAPTOP)
        try:
            for item, status in walk(page, world):
                problems += _blocking_violations(axe, page, f"{role}: {item} [{status}]")
                checked += 1
        finally:
            context.close()
    print(f"axe-core: {checked} page views checked ({len(world.pages)} pages x {len(ROLES)} roles)")
    assert not problems, f"{len(problems)} serious/critical violations:\n" + _report(problems)


def test_no_page_scrolls_sideways_at_1280(browser, live_stack, world):
    wide: list[str] = []
    for role in ROLES:
        context, page = signed_in_context(browser, live_stack, role, LAPTOP)
        try:
            for item, _status in walk(page, world):
                size = page.evaluate(
                    """() => { const e = document.scrollingElement;
                               return [e.scrollWidth, e.clientWidth]; }"""
                )
                if size[0] > size[1]:
                    widest = page.evaluate(
                        """() => { const w = document.scrollingElement.clientWidth;
                          const out = [];
                          for (const el of document.querySelectorAll('body *')) {
                            const r = el.getBoundingClientRect();
                            if (r.right > w + 1 && out.length < 3) {
                              let p = el.parentElement, clipped = false;
                              for (; p; p = p.parentElement) {
                                const o = getComputedStyle(p).overflowX;
                                if (o !== 'visible') { clipped = true; break; }
                              }
                              if (!clipped) out.push(el.tagName.toLowerCase() +
                                (el.className ? '.' + String(el.className).split(' ')[0] : '') +
                                ' right=' + Math.round(r.right));
                            }
                          }
                          return out; }"""
                    )
                    wide.append(f"{role}: {item} is {size[0]} px wide in {size[1]}: {widest}")
        finally:
            context.close()
    assert not wide, "pages that scroll sideways at 1280x800:\n" + "\n".join(wide)
