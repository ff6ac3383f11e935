"""The browser can sign in and out against the live console."""

from tests.e2e.conftest import sign_in


def test_sign_in_and_out(page, live_stack):
    user = live_stack.make_staff("viewer", name="Vera Viewer")
    page.goto("/")
    assert "/auth/login" in page.url
    sign_in(page, user)
    assert page.locator("h1").first.inner_text() == "What needs attention"
    assert "Vera Viewer" in page.locator(".topbar").inner_text()
    page.click("[data-testid=sign-out]")
    page.wait_for_url("**/auth/login")
    page.goto("/")
    assert "/auth/login" in page.url


def test_wrong_password_is_refused(page, live_stack):
    user = live_stack.make_staff("viewer")
    page.goto("/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "not right" in page.locator("[role=alert]").inner_text()
