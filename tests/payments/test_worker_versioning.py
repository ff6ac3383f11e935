"""Worker Deployment Versioning on the dev server: a rolling upgrade with a payout in
flight (it waits for approval while the new build takes over), for both behaviours, and
the `flask deployment` commands."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import VersioningBehavior

from estuary.contracts.payments import ApprovePayoutDecision
from temporal_gateway.gateway import GatewayError, TemporalGateway
from tests.conftest import gateway_for, unique_prefix
from tests.payments.helpers import APPROVER_A, payout_input, start_payout, wait_for_stage
from workers.temporal.base_activities import bind_app, bind_client
from workers.temporal.versioning import (
    VersioningSettingsError,
    deployment_config,
    deployment_name,
)
from workers.temporal.worker import build_worker


@asynccontextmanager
async def versioned_worker(
    client: Client, app: Any, prefix: str, build_id: str
) -> AsyncIterator[None]:
    bind_app(app)
    bind_client(client)
    config = {**app.config, "WORKER_BUILD_ID": build_id}
    with ThreadPoolExecutor(max_workers=20) as executor:
        worker = build_worker(
            client,
            "payments",
            task_queue=f"{prefix}payments",
            executor=executor,
            identity=f"test-worker-{build_id}",
            deployment=deployment_config(config, "payments"),
        )
        async with worker:
            yield


async def make_current(gw: TemporalGateway, deployment: str, build_id: str) -> None:
    """Set the current version once the server has seen the new workers poll."""
    for _ in range(100):
        try:
            await asyncio.to_thread(gw.set_current_version, deployment, build_id)
            return
        except GatewayError as exc:  # the version's pollers are not registered yet
            last = exc.message
        await asyncio.sleep(0.1)
    raise AssertionError(f"could not make {build_id} current: {last}")


async def build_of(handle: WorkflowHandle) -> tuple[str, int]:
    desc = await handle.describe()
    info = desc.raw_description.workflow_execution_info.versioning_info
    return info.deployment_version.build_id, info.behavior


@pytest.fixture
def versioned_app(app):
    app.config["WORKER_DEPLOYMENT_NAME"] = f"t{uuid.uuid4().hex[:8]}"
    return app


@pytest.mark.parametrize("behavior", ["auto_upgrade", "pinned"])
async def test_rolling_upgrade_with_a_payout_in_flight(versioned_app, money, local_env, behavior):
    app = versioned_app
    app.config["WORKER_VERSIONING_BEHAVIOR"] = behavior
    deployment = deployment_name(app.config, "payments")
    prefix = unique_prefix()
    app.config["TEMPORAL_TASK_QUEUE_PREFIX"] = prefix
    gw = gateway_for(app, local_env, prefix)
    client = local_env.client
    waiting = money.practitioner(balance=90_000)
    later = money.practitioner(balance=3_000)

    async with versioned_worker(client, app, prefix, "v1"):
        await make_current(gw, deployment, "v1")
        in_flight = await start_payout(client, prefix, payout_input(waiting))
        await wait_for_stage(in_flight, "waiting for approval")
        expected = {
            "auto_upgrade": VersioningBehavior.AUTO_UPGRADE,
            "pinned": VersioningBehavior.PINNED,
        }[behavior]
        assert await build_of(in_flight) == ("v1", expected.value)

        # The new build starts next to the old one and takes over.
        async with versioned_worker(client, app, prefix, "v2"):
            await make_current(gw, deployment, "v2")
            info = await asyncio.to_thread(gw.describe_deployment, deployment)
            assert info.current_build_id == "v2"
            assert {v.build_id: v.status for v in info.versions}["v2"] == "CURRENT"

            new_run = await start_payout(client, prefix, payout_input(later))
            await new_run.result()
            assert (await build_of(new_run))[0] == "v2"

            await in_flight.execute_update(
                "approve", ApprovePayoutDecision(APPROVER_A, 90_000, waiting)
            )
            result = await in_flight.result()
            assert result.status == "paid"
            # Auto-upgrade moved the waiting run to v2 at its next task; a pinned run
            # stayed on the build it started on (so v1 had to keep running).
            want = "v2" if behavior == "auto_upgrade" else "v1"
            assert (await build_of(in_flight))[0] == want
            info = await asyncio.to_thread(gw.describe_deployment, deployment)
            assert {v.build_id: v.status for v in info.versions}["v1"] in ("DRAINING", "DRAINED")


def test_deployment_commands(versioned_app, runner, local_env):
    app = versioned_app
    gateway_for(app, local_env)
    result = runner.invoke(args=["deployment", "describe", "--domain", "payments"])
    assert result.exit_code == 0, result.output
    assert "no worker deployment" in result.output  # no versioned worker has polled yet
    result = runner.invoke(args=["deployment", "set-current", "--build-id", "v9"])
    assert result.exit_code != 0
    assert deployment_name(app.config, "bookings") in result.output
    app.config["WORKER_DEPLOYMENT_NAME"] = ""
    result = runner.invoke(args=["deployment", "describe"])
    assert result.exit_code != 0 and "WORKER_DEPLOYMENT_NAME is not set" in result.output


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"WORKER_DEPLOYMENT_NAME": "estuary"}, "WORKER_BUILD_ID must be set"),
        ({"WORKER_DEPLOYMENT_NAME": "est uary", "WORKER_BUILD_ID": "b1"}, "may only hold"),
        ({"WORKER_DEPLOYMENT_NAME": "e", "WORKER_BUILD_ID": "b/1"}, "may only hold"),
        (
            {
                "WORKER_DEPLOYMENT_NAME": "e",
                "WORKER_BUILD_ID": "b1",
                "WORKER_VERSIONING_BEHAVIOR": "x",
            },
            "must be one of auto_upgrade, pinned",
        ),
    ],
)
def test_bad_versioning_settings_are_refused(settings, says):
    with pytest.raises(VersioningSettingsError, match=says):
        deployment_config(settings, "payments")


def test_unversioned_without_a_deployment_name():
    assert deployment_config({"WORKER_BUILD_ID": "b1"}, "payments") is None
    config = deployment_config(
        {"WORKER_DEPLOYMENT_NAME": "estuary", "WORKER_BUILD_ID": "b1"}, "payments"
    )
    assert config is not None
    assert config.version.deployment_name == "estuary-payments"
    assert config.default_versioning_behavior == VersioningBehavior.AUTO_UPGRADE


def test_start_worker_refuses_bad_settings_before_connecting(app, runner):
    app.config.update(WORKER_DEPLOYMENT_NAME="estuary", WORKER_BUILD_ID="")
    app.config["TEMPORAL_ADDRESS"] = "127.0.0.1:1"  # never reached
    result = runner.invoke(args=["start-worker", "--domains", "payments"])
    assert result.exit_code != 0
    assert "WORKER_BUILD_ID must be set" in result.output
