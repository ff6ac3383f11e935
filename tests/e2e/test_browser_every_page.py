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
from axe_playwright_python.base import AXE_SCRIPT

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


# axe-core is put in every document of the walk's contexts (an init script, sent to the
# browser once per context, not once per page view). A check is started in the page and
# its answer read later, so one role's page is checked while the walk opens the next page
# for another role.
START_AXE = """(options) => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  window.__axeRun = new Promise(r => setTimeout(r, 0)).then(() => axe.run(document, options));
}"""


@dataclass
class Walked:
    views: int = 0
    pages: int = 0
    violations: list[tuple[str, str]] = field(default_factory=list)
    wide: list[str] = field(default_factory=list)


def _blocking_violations(response: dict, where: str) -> list[tuple[str, str]]:
    """(what is wrong where on the page, which page view) for each serious or critical
    node axe-core found."""
    found = []
    for v in response["violations"]:
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


def _start_check(page, where: str, walked: Walked) -> None:
    """The width at 1280 px, then axe-core started on the page as it is, every fold
    (reject, cancel, reset forms) opened first: axe-core skips what is hidden (and a live
    region does not refresh while a fold with a form is open)."""
    walked.wide += _too_wide(page, where)
    page.evaluate(START_AXE, {"resultTypes": ["violations"]})


def _finish_check(page, where: str, walked: Walked) -> None:
    walked.violations += _blocking_violations(page.evaluate("() => window.__axeRun"), where)
    walked.views += 1


def _axe_context(browser, live_stack, role: str | None):
    """A context (signed in as a new `role`, or signed out) with axe-core in its pages."""
    if role is None:
        context = browser.new_context(base_url=live_stack.base_url, viewport=LAPTOP)
        page = context.new_page()
    else:
        context, page = signed_in_context(browser, live_stack, role, LAPTOP)
    context.add_init_script(script=AXE_SCRIPT)
    return context, page


@pytest.fixture(scope="module")
def walked(browser, live_stack) -> Walked:
    world = build_world(live_stack)
    result = Walked(pages=len(world.pages) + 1)
    context, login = _axe_context(browser, live_stack, None)
    try:
        login.goto("/auth/login")
        settle(login)
        _start_check(login, "signed out: /auth/login", result)
        _finish_check(login, "signed out: /auth/login", result)
    finally:
        context.close()
    contexts = []
    try:
        walks = []
        for role in ROLES:
            context, page = _axe_context(browser, live_stack, role)
            contexts.append(context)
            walks.append((role, page, walk(page, world)))
        # The roles' walks in turn: a page view's check is read before its page moves on,
        # and runs in the browser while the other roles' pages are opened meanwhile.
        started: dict[str, str] = {}
        while walks:
            for role, page, steps in list(walks):
                if role in started:
                    _finish_check(page, started.pop(role), result)
                step = next(steps, None)
                if step is None:
                    walks.remove((role, page, steps))
                    continue
                item, status = step
                started[role] = f"{role}: {item} [{status}]"
                _start_check(page, started[role], result)
    finally:
        for context in contexts:
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
