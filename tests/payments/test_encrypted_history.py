"""Encryption end to end: a payout run with payload keys on, its raw history read with no
codec (no staff email, practitioner name or note in clear), and the console showing the
same run decoded (it reads raw history through the gateway, which decodes)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html as html_lib
import json
import uuid

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from estuary.contracts.payments import ApprovePayoutDecision
from estuary.contracts.search_attributes import TRIGGERED_BY
from estuary.db import db
from estuary.models import Practitioner
from temporal_gateway.codec import data_converter, decode_in_place, new_key_entry
from tests.conftest import gateway_for, make_user, running_workers
from tests.console.read_support import login
from tests.console.write_support import audit_events
from tests.console.write_support import login as write_login
from tests.payments.helpers import APPROVER_A, wait_for_stage

KEYS = new_key_entry("k1")


def _readable(history_json: str) -> str:
    """The history JSON plus every base64 value in it decoded: protobuf JSON writes payload
    data as base64, so a value in clear is found wherever it sits."""
    out = [history_json]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str) and len(node) >= 8:
            with contextlib.suppress(ValueError):
                out.append(base64.b64decode(node, validate=True).decode("utf-8", "replace"))

    walk(json.loads(history_json))
    return "\n".join(out)


async def test_raw_history_has_no_personal_data_and_the_console_shows_it_decoded(
    app, money, local_env
):
    # On the dev server: the console's history reading follows running histories, which
    # the time-skipping server does not serve the same way.
    app.config["PAYLOAD_KEYS"] = KEYS
    approver = make_user(app, "approver", email=APPROVER_A)
    balance_cents = 80_000
    practitioner = money.practitioner(balance=balance_cents)
    with app.app_context():
        row = db.session.get(Practitioner, practitioner)
        name, email = row.name, row.email
    note = f"checked the bank letter {uuid.uuid4().hex[:6]}"
    reason = f"quarterly payout for {name} <{email}>"
    keyed = Client(**{**local_env.client.config(), "data_converter": data_converter(app.config)})
    operator, requester = write_login(app, "operator")
    async with running_workers(keyed, app, ["payments"]) as prefix:
        gateway_for(app, local_env, prefix)
        # Started the way staff start it: the console's form (payout at/above threshold).
        response = await asyncio.to_thread(
            operator.post,
            "/workflows/PractitionerPayoutWorkflow/start",
            data={
                "practitioner_id": str(practitioner),
                "amount_cents": "800.00",
                "action_reason": reason,
                "confirmed": "yes",
            },
        )
        assert response.status_code in (200, 303), response.get_data(as_text=True)[:500]
        [event] = [e for e in audit_events(app, action="catalog.start") if e.outcome == "success"]
        workflow_id = event.target.removeprefix("workflow:")
        started = await keyed.get_workflow_handle(workflow_id).describe()
        # Search attributes stay in clear (Temporal indexes them): a reference, no email.
        assert started.typed_search_attributes.get(TRIGGERED_BY) == f"staff:{requester.id}"
        handle = keyed.get_workflow_handle(workflow_id)
        await wait_for_stage(handle, "waiting for approval")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                "approve", ApprovePayoutDecision(requester.email, balance_cents, practitioner, note)
            )
        # The refusal names a person; it travels encrypted and the client decodes it.
        assert requester.email in str(refused.value.cause)
        await handle.execute_update(
            "approve", ApprovePayoutDecision(approver.email, balance_cents, practitioner, note)
        )
        await handle.result()

        raw = await local_env.client.get_workflow_handle(workflow_id).fetch_history()
        decoded = await handle.fetch_history()
        await decode_in_place(decoded.events, keyed.data_converter.payload_codec)
        raw_text, decoded_text = _readable(raw.to_json()), _readable(decoded.to_json())
        for secret in (requester.email, approver.email, note, name, email):
            assert secret in decoded_text, f"{secret!r} should be in the run's payloads"
            assert secret not in raw_text, f"{secret!r} is in clear in the raw history"

        # The console reads raw history through the gateway and decodes it there.
        viewer = login(app, "viewer")
        detail = await asyncio.to_thread(viewer.get, f"/runs/{workflow_id}/{started.run_id}")
        page = html_lib.unescape(detail.get_data(as_text=True))
        assert detail.status_code == 200
        assert approver.email in page and name in page and requester.email in page
        assert "binary/encrypted" not in page and "Encoded failure" not in page
        download = await asyncio.to_thread(
            lambda: viewer.get(f"/runs/{workflow_id}/{started.run_id}/history.json").get_data(
                as_text=True
            )
        )
        downloaded = _readable(download)
        assert note in downloaded and requester.email in downloaded
