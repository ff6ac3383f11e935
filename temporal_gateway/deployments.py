"""Worker-side reads and settings through the gateway: Worker Deployments (their
versions, which one is current) and the workers polling a task queue.

`WorkerReads` is a part of `TemporalGateway` (`temporal_gateway.gateway`): its methods
use the gateway's `run`, so they share its loop, circuit breaker, errors and metrics.
"""

from __future__ import annotations

from datetime import UTC

from temporalio.api.enums.v1 import (
    TaskQueueType,
    VersionDrainageStatus,
    WorkerDeploymentVersionStatus,
)
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client

from temporal_gateway.errors import RunNotFound
from temporal_gateway.gateway_part import GatewayPart
from temporal_gateway.records import DeploymentInfo, DeploymentVersion, Poller, enum_suffix


class WorkerReads(GatewayPart):
    """The worker-deployment and task-queue methods of `TemporalGateway`."""

    def describe_deployment(self, deployment_name: str) -> DeploymentInfo:
        """A Worker Deployment's current/ramping version and every version's status."""

        async def call(client: Client) -> DeploymentInfo:
            resp = await client.workflow_service.describe_worker_deployment(
                DescribeWorkerDeploymentRequest(
                    namespace=client.namespace, deployment_name=deployment_name
                ),
                timeout=self.rpc_timeout(),
            )
            info = resp.worker_deployment_info
            routing = info.routing_config
            versions = [
                DeploymentVersion(
                    build_id=v.deployment_version.build_id,
                    status=enum_suffix(
                        WorkerDeploymentVersionStatus,
                        v.status,
                        "WORKER_DEPLOYMENT_VERSION_STATUS_",
                    ),
                    drainage=enum_suffix(
                        VersionDrainageStatus, v.drainage_status, "VERSION_DRAINAGE_STATUS_"
                    ),
                )
                for v in info.version_summaries
            ]
            return DeploymentInfo(
                name=info.name,
                current_build_id=routing.current_deployment_version.build_id or None,
                ramping_build_id=routing.ramping_deployment_version.build_id or None,
                ramping_percentage=routing.ramping_version_percentage,
                versions=versions,
            )

        try:
            return self.run(call)
        except RunNotFound:
            raise RunNotFound(
                f"no worker deployment {deployment_name!r}: it appears when its first "
                "versioned worker polls"
            ) from None

    def set_current_version(self, deployment_name: str, build_id: str) -> None:
        """Make `build_id` the deployment's current version: new runs (and auto-upgrade
        runs at their next task) go to its workers. Refused while none of them polls."""

        async def call(client: Client) -> None:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace,
                    deployment_name=deployment_name,
                    build_id=build_id,
                    identity=self.identity,
                ),
                timeout=self.rpc_timeout(),
            )

        self.run(call)

    def task_queue_pollers(self, task_queue: str) -> list[Poller]:
        """Workers polling a task queue (workflow and activity pollers)."""

        async def call(client: Client) -> list[Poller]:
            out: list[Poller] = []
            for kind, tq_type in (
                ("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
            ):
                resp = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=client.namespace,
                        task_queue=TaskQueue(name=task_queue),
                        task_queue_type=tq_type,
                    ),
                    timeout=self.rpc_timeout(),
                )
                for p in resp.pollers:
                    last = (
                        p.last_access_time.ToDatetime(UTC)
                        if p.HasField("last_access_time")
                        else None
                    )
                    out.append(Poller(p.identity, last, kind))
            return out

        return self.run(call)
