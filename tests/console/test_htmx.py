"""One truth for "is this an htmx request": htmx-flask's `request.htmx` (the `HX-Request`
header equal to `true`, any case). Error pages and action forms answer htmx with a
fragment and everything else with a whole page; a success answers htmx with
`HX-Redirect`; every response says it varies by `HX-Request`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask

from temporal_gateway.access import set_gateway
from temporal_gateway.gateway import RunInfo, TemporalGateway
from tests.console.write_support import audit_events, login, unreachable_gateway

LIFECYCLE = "BookingLifecycleWorkflow"
WORKFLOW_ID = "bookings-lifecycle-424242"
HTMX = {"true": True, "TRUE": True, "false": False, "": False, None: False}


def _headers(value: str | None) -> dict[str, str]:
    return {} if value is None else {"HX-Request": value}


class RunningLifecycle(TemporalGateway):
    """A gateway whose one run is a running booking lifecycle; signals are kept."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self.signals: list[tuple[str, str, Any]] = []

    def describe(self, workflow_id: str, run_id: str | None = None) -> RunInfo:
        now = datetime.now(UTC)
        return RunInfo(
            workflow_id, "run-1", LIFECYCLE, "Running", "bookings", now, None, now, 12,
            "bookings", "booking", "424242", "test",
        )  # fmt: skip

    def signal(self, workflow_id: str, name: str, arg: Any = None) -> None:
        self.signals.append((workflow_id, name, arg))


@pytest.mark.parametrize("header", list(HTMX))
def test_error_pages_are_fragments_for_htmx_only(app: Flask, header: str | None) -> None:
    viewer, _ = login(app, "viewer")
    response = viewer.get("/practitioners/999999", headers=_headers(header))
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert 'data-testid="error-page"' in body
    assert ("<html" not in body) is HTMX[header]
    assert "HX-Request" in response.headers.get("Vary", "")


@pytest.mark.parametrize("header", list(HTMX))
def test_a_refused_action_form_is_a_fragment_for_htmx_only(app: Flask, header: str | None) -> None:
    gw = unreachable_gateway(app)
    operator, _ = login(app, "operator")
    response = operator.post(
        f"/runs/{WORKFLOW_ID}/signal/feedback_received",
        data={"workflow_type": LIFECYCLE, "rating": "9"},
        headers=_headers(header),
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert body.lstrip().startswith("<form") is HTMX[header]
    assert ("<html" in body) is not HTMX[header]
    assert "Nothing was sent" in body
    assert gw.calls == 0  # field errors are found before Temporal is asked
    assert [e.outcome for e in audit_events(app, action="runs.signal")] == ["invalid"]


@pytest.mark.parametrize("header", list(HTMX))
def test_a_sent_signal_redirects_htmx_by_header_and_others_by_303(
    app: Flask, header: str | None
) -> None:
    gw = RunningLifecycle(app.config)
    set_gateway(app, gw)
    operator, user = login(app, "operator")
    back = "/bookings/424242"
    response = operator.post(
        f"/runs/{WORKFLOW_ID}/signal/feedback_received",
        data={"workflow_type": LIFECYCLE, "rating": "4", "next": back},
        headers=_headers(header),
    )
    if HTMX[header]:
        assert response.status_code == 200
        assert response.headers["HX-Redirect"] == back
        assert "Location" not in response.headers
    else:
        assert response.status_code == 303
        assert response.headers["Location"].endswith(back)
        assert "HX-Redirect" not in response.headers
    [(workflow_id, name, arg)] = gw.signals
    assert (workflow_id, name, arg.rating, arg.actor) == (
        WORKFLOW_ID,
        "feedback_received",
        4,
        user.email,
    )
    assert audit_events(app, action="runs.signal")[-1].outcome == "success"
