"""A whole onboarding on the real Temporal dev server (not time skipping), with the local
background-check provider answering by signal after its delay."""

from __future__ import annotations

import pytest

from estuary.contracts.practitioners import ServiceConfiguredSignal, SubscriptionSelectedSignal
from tests.practitioners.conftest import (
    complete_training,
    pass_documents,
    practitioner_workers,
    start_onboarding,
    wait_for,
    waiting_on_step,
)


@pytest.mark.live
async def test_onboarding_on_the_dev_server_with_the_local_provider(app, local_env, data):
    app.config["BACKGROUND_CHECK_PROVIDER"] = "local"
    app.config["BACKGROUND_CHECK_DELAY_SECONDS"] = 1
    data.modules()
    pid = data.practitioner(profile_complete=True)
    email = data.email(pid)
    service_id = data.service(pid)
    client = local_env.client
    async with practitioner_workers(app, local_env) as prefix:
        handle = await start_onboarding(client, prefix, pid)
        await pass_documents(handle, email)
        # Nobody signals the result here: the provider run answers after one second.
        await complete_training(handle, email)
        await wait_for(handle, waiting_on_step("subscription"), what="subscription step")
        await handle.signal("subscription_selected", SubscriptionSelectedSignal(email, "premium"))
        await wait_for(handle, waiting_on_step("services"), what="services step")
        await handle.signal("service_configured", ServiceConfiguredSignal(email, service_id))
        result = await handle.result()
        progress = await handle.query("progress")
    assert result.outcome == "completed"
    assert progress["background_check"]["recorded_by"] == "provider:local"
    assert data.practitioner_row(pid)["tier"] == "premium"
