"""CSRF: every state-changing endpoint refuses a missing, wrong or other-session token
(audited, nothing changed); htmx's header token is accepted; GET never changes state."""

from __future__ import annotations

import pytest

from tests.console.write_support import (
    ENDPOINTS,
    Endpoint,
    audit_events,
    csrf_token,
    login,
    make_world,
    snapshot,
    unreachable_gateway,
)


def _admin_with_csrf(app):
    client, user = login(app, "admin", csrf=True)
    return client, user, csrf_token(client, "/staff/")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.endpoint)
def test_missing_wrong_and_foreign_tokens_are_refused(app, endpoint: Endpoint):
    gw = unreachable_gateway(app)
    world = make_world(app)
    client, user, own_token = _admin_with_csrf(app)
    other_client, _, other_token = _admin_with_csrf(app)
    assert other_token != own_token
    before = snapshot(app)
    path = endpoint.path(world)
    for token in (None, "not-a-token", other_token, own_token[:-4] + "AAAA"):
        data = endpoint.data(world)
        if token is not None:
            data["csrf_token"] = token
        response = client.post(path, data=data)
        assert response.status_code == 400, (token, response.status_code)
        assert "did not come from this console" in response.get_data(as_text=True)
    # A token in the header is checked the same way (htmx sends it there).
    response = client.post(path, data=endpoint.data(world), headers={"X-CSRFToken": "nope"})
    assert response.status_code == 400
    assert snapshot(app) == before
    assert gw.calls == 0
    refused = [e for e in audit_events(app, outcome="denied") if "CSRF" in e.detail]
    assert len(refused) == 5
    assert {e.actor for e in refused} == {user.email}
    assert {e.target for e in refused} == {path}

    # The right token passes the CSRF check (whatever the action then says).
    ok = client.post(path, data={**endpoint.data(world), "csrf_token": own_token})
    assert ok.status_code != 400 or "did not come from this console" not in ok.get_data(
        as_text=True
    )
    header = other_client.post(
        path, data=endpoint.data(world), headers={"X-CSRFToken": other_token}
    )
    assert "did not come from this console" not in header.get_data(as_text=True)


def test_anonymous_post_without_token_is_refused_and_audited(app):
    unreachable_gateway(app)
    app.config["WTF_CSRF_ENABLED"] = True
    response = app.test_client().post("/staff/create", data={"email": "x@test.local"})
    assert response.status_code == 400
    event = audit_events(app, outcome="denied")[-1]
    assert event.actor == "anonymous" and "CSRF" in event.detail


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.endpoint)
def test_get_never_changes_state(app, endpoint: Endpoint):
    unreachable_gateway(app)
    world = make_world(app)
    client, _, _ = _admin_with_csrf(app)
    before = snapshot(app)
    successes = len(audit_events(app, outcome="success"))
    path = endpoint.path(world)
    query = "&".join(f"{k}={v}" for k, v in endpoint.data(world).items())
    response = client.get(f"{path}?{query}")
    if endpoint.endpoint in ("catalog.start", "runs.bulk_retry"):
        # Pages with a form (GET) or a preview: they show, and change nothing.
        assert response.status_code in (200, 503)
    else:
        assert response.status_code >= 400
    assert snapshot(app) == before
    assert len(audit_events(app, outcome="success")) == successes
