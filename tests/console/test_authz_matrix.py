"""The authorisation matrix: every state-changing endpoint x anonymous, viewer, operator,
approver, admin. Allowed or denied exactly as `dashboard.permissions.MATRIX` says; every
denial is audited and changes nothing (no row, no call to Temporal)."""

from __future__ import annotations

import pytest

from dashboard.permissions import MATRIX, ROLE_ORDER
from tests.console.write_support import (
    ENDPOINTS,
    Endpoint,
    audit_events,
    login,
    make_world,
    snapshot,
    unreachable_gateway,
)

ROLES = ("anonymous", *ROLE_ORDER)
# Sign-in and sign-out are outside the matrix (anyone may try them), and so is the
# Temporal Web UI's codec: its POSTs convert payloads and change nothing; it requires a
# signed-in staff session itself (tests/test_payload_codec.py).
OUTSIDE_THE_MATRIX = {"auth.login", "auth.logout", "codec.encode", "codec.decode"}


def test_the_table_covers_every_state_changing_endpoint(app):
    posts = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.methods and {"POST", "PUT", "PATCH", "DELETE"} & set(rule.methods)
    }
    covered = {e.endpoint for e in ENDPOINTS}
    assert posts - OUTSIDE_THE_MATRIX == covered, (
        "a state-changing endpoint is missing from tests/console/write_support.ENDPOINTS"
    )
    for e in ENDPOINTS:
        assert e.permission in MATRIX


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.endpoint)
def test_matrix(app, endpoint: Endpoint, role: str):
    gw = unreachable_gateway(app)
    world = make_world(app)
    if role == "anonymous":
        app.config["WTF_CSRF_ENABLED"] = False
        client, email = app.test_client(), "anonymous"
    else:
        client, user = login(app, role)
        email = user.email
    before = snapshot(app)
    denials_before = len(audit_events(app, outcome="denied"))

    response = client.post(endpoint.path(world), data=endpoint.data(world))

    allowed = role in MATRIX[endpoint.permission][0]
    if allowed:
        assert response.status_code != 403, response.get_data(as_text=True)[:600]
        assert "/auth/login" not in response.headers.get("Location", "")
        return
    if role == "anonymous":
        assert response.status_code == 302
        assert "/auth/login" in response.headers["Location"]
    else:
        assert response.status_code == 403
    denials = audit_events(app, outcome="denied")[denials_before:]
    assert len(denials) == 1
    assert denials[0].action == endpoint.endpoint
    assert denials[0].actor == email
    assert denials[0].target == endpoint.path(world)
    assert snapshot(app) == before
    assert gw.calls == 0
