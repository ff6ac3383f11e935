"""Workers: one per domain task queue, with run monitoring and graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from flask import Flask
from temporalio import workflow
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    Worker,
    WorkerDeploymentConfig,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from estuary.app import freeze_long_lived_objects
from estuary.contracts import catalogue
from estuary.database import activity_threads
from estuary.logs import defer_records_of_this_thread
from temporal_gateway.client import connect
from temporal_gateway.telemetry import worker_runtime
from workers.temporal import code_cache, context_free, failures, registry
from workers.temporal.base_activities import bind_app, bind_client
from workers.temporal.heartbeat import ActivitySlots, HeartbeatWriter, build_id_of, process_identity
from workers.temporal.versioning import deployment_config

log = logging.getLogger("estuary.worker")

# Modules passed through the workflow sandbox: imported once per worker process and shared
# by every workflow run, instead of re-imported (and, without .pyc files, recompiled) for
# each new run. Re-importing the payments contracts cost about 25 ms of CPU per payout,
# more than the rest of a payout's workflow code together.
#
# Why this keeps workflows deterministic (docs/performance.md, "The sandbox"): the sandbox
# re-imports modules so that one run cannot see state another run left in a module, and so
# that a module's import-time work cannot differ between the first run and a replay. These
# modules have neither: they hold constants, frozen or per-run dataclasses, retry policies
# and pure functions of their arguments; importing them reads no clock, environment,
# file or database, and no workflow writes to their module state (tuples, frozensets and
# dicts that are only read). They import nothing but the standard library, temporalio and
# each other (tests/test_sandbox_passthrough.py checks the imports). The workflow modules
# themselves stay sandboxed, and the sandbox's runtime checks still apply to workflow code.
WORKFLOW_PASSTHROUGH_MODULES = (
    # The contracts (estuary.contracts, but not the catalogue and its specs, which no
    # workflow imports): names, dataclasses, policies, approval rules, input checks.
    "estuary.contracts.approval_rules",
    "estuary.contracts.bookings",
    "estuary.contracts.checks",
    "estuary.contracts.commissions",
    "estuary.contracts.domains",
    "estuary.contracts.failures",
    "estuary.contracts.field_types",
    "estuary.contracts.inputs",
    "estuary.contracts.maintenance",
    "estuary.contracts.money",
    "estuary.contracts.package_payouts",
    "estuary.contracts.payments",
    "estuary.contracts.payout_upkeep",
    "estuary.contracts.policies",
    "estuary.contracts.practitioner_upkeep",
    "estuary.contracts.practitioners",
    "estuary.contracts.search_attributes",
    # Workflow helpers of our own with the same properties.
    "workers.payments.workflow_support",
    "workers.temporal.base_workflows",
    "workers.temporal.failures",
)


# As many threads as the SDK's own default pool (one per workflow task in progress; they
# are started only when needed).
WORKFLOW_TASK_THREADS = 500


def workflow_task_executor() -> ThreadPoolExecutor:
    """The threads a worker runs workflow activations in: the SDK's default pool, except
    that each thread is marked so that what it logs is written by another thread
    (`estuary.logs.EstuaryLogHandler`). The SDK raises an exception into an activation
    thread that does not yield within 2 s; if that thread was waiting for the log
    handler's lock, it was raised just after the thread got it and the lock stayed held:
    every later log call of the worker, the event loop's included, then blocked for good
    (seen at 3,214 payouts of a 10,000 batch; tests/payments/test_log_lock_interruption.py).
    The caller shuts it down after the worker (`_serve`), or drops it with the worker."""
    return ThreadPoolExecutor(
        max_workers=WORKFLOW_TASK_THREADS,
        thread_name_prefix="workflow_task",
        initializer=defer_records_of_this_thread,
    )


def workflow_runner(converter: DataConverter | None = None) -> WorkflowRunner:
    """The sandbox every worker (and the replay test) runs workflows in; for a worker
    whose `converter` uses no serialization context, without asking the sandbox for one
    on every payload (workers/temporal/context_free.py)."""
    sandbox = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            *WORKFLOW_PASSTHROUGH_MODULES
        )
    )
    if converter is None or context_free.uses_serialization_context(converter):
        return sandbox
    return context_free.ContextFreeRunner(sandbox)


class _MonitoredWorkflowInbound(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        started = workflow.now()
        workflow.logger.info("workflow start %s id=%s", info.workflow_type, info.workflow_id)

        def ended(how: str, *more: object, log_line: Callable[..., None] | None = None) -> None:
            """One line saying how the run ended (`how` is the rest of the format after
            "workflow "), with its type, id and seconds taken, then `more`."""
            (log_line or workflow.logger.info)(
                f"workflow {how}",
                info.workflow_type,
                info.workflow_id,
                (workflow.now() - started).total_seconds(),
                *more,
            )

        try:
            result = await super().execute_workflow(input)
        except workflow.ContinueAsNewError:
            ended("continued as new %s id=%s after %ss")
            raise
        except GeneratorExit:
            # The coroutine is being closed outside its event loop (garbage collected
            # after an eviction at shutdown): no workflow API may run here, or it raises
            # `_NotInWorkflowEventLoopError` and prints a traceback on every stop.
            raise
        except asyncio.CancelledError:
            ended("cancelled %s id=%s after %ss")
            raise
        except BaseException as exc:
            # One line with the reason; an unexpected error (a bug) also gets the SDK's
            # "Failed activation" record with its traceback, an expected one does not.
            reason = failures.expected_reason(exc)
            log_line = workflow.logger.warning if reason is not None else workflow.logger.error
            ended(
                "failed %s id=%s after %ss: %s",
                reason or failures.failure_summary(exc),
                log_line=log_line,
            )
            raise
        ended("done %s id=%s in %ss")
        return result


class MonitoringInterceptor(Interceptor):
    """Logs start, end, duration and failure of every run a worker executes."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _MonitoredWorkflowInbound


def build_worker(
    client: Client,
    domain_name: str,
    *,
    task_queue: str,
    executor: ThreadPoolExecutor,
    max_concurrent_activities: int = 20,
    identity: str | None = None,
    extra_interceptors: Sequence[Interceptor] = (),
    deployment: WorkerDeploymentConfig | None = None,
) -> Worker:
    d = registry.domain(domain_name)
    failures.install_log_filter()
    # The sandbox re-imports each workflow module per run: compile it once (code_cache).
    code_cache.install()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[w.cls for w in d.workflows.values()],
        activities=d.activities,
        activity_executor=executor,
        max_concurrent_activities=max_concurrent_activities,
        workflow_task_executor=workflow_task_executor(),
        workflow_runner=workflow_runner(client.data_converter),
        interceptors=[MonitoringInterceptor(), *extra_interceptors],
        graceful_shutdown_timeout=timedelta(seconds=20),
        identity=identity,
        deployment_config=deployment,
    )


async def run_workers(
    app: Flask, domain_names: Sequence[str], task_queue: str | None = None
) -> None:
    """Run workers for the given domains until SIGINT/SIGTERM, then shut down gracefully.

    In-flight activities get the graceful-shutdown window to finish; after that they are
    cancelled and Temporal retries them on another worker.
    """
    for name in domain_names:
        registry.domain(name)  # unknown domain: LookupError before connecting
    # Bad versioning settings: VersioningSettingsError before connecting.
    deployments = {name: deployment_config(app.config, name) for name in domain_names}
    # On SQLite, activity transactions take the write lock when they begin, so a
    # read-then-write never fails on a stale snapshot (see estuary/database.py).
    app.config["SQLITE_BEGIN_IMMEDIATE"] = True
    bind_app(app)
    config = app.config
    identity = process_identity()
    # The SDK's Prometheus exporter binds WORKER_METRICS_ADDRESS when the runtime is made
    # (a bad or taken address stops the start here, before connecting).
    runtime = worker_runtime(config)
    client = await connect(config, identity=identity, runtime=runtime)
    bind_client(client)
    try:
        await _serve(app, client, identity, domain_names, task_queue, deployments)
    finally:
        # Release the client (and with it the SDK core's native handles) while the
        # interpreter is fully alive. Left to interpreter shutdown, the core's threads
        # can call into a half-finalised Python: "Fatal Python error: PyGILState_Release".
        bind_client(None)
        del client
        gc.unfreeze()  # a frozen client is never collected
        gc.collect()


async def _serve(
    app: Flask,
    client: Client,
    identity: str,
    domain_names: Sequence[str],
    task_queue: str | None,
    deployments: dict[str, Any],
) -> None:
    """Run the domain workers until SIGINT/SIGTERM or one of them fails, then shut them
    down in order: workers (in-flight activities finish), heartbeat, thread pool."""
    executor, workers_, heartbeat = _build(
        app, client, identity, domain_names, task_queue, deployments
    )
    # What the worker holds once built (modules, the sandbox's passed-through ones
    # included, the app, the client, the validated workflows: about 155,000 objects)
    # was walked by every full collection, up to 270 ms each on the loop that runs
    # workflow tasks (15 of them in a 2,000-payout batch: 2.2 s in all, 1.2 s frozen).
    frozen = freeze_long_lived_objects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    tasks = [asyncio.create_task(w.run()) for w in workers_]
    _log_polling(domain_names, workers_, deployments)
    log.info("%d startup objects frozen out of the garbage collector's walks", frozen)
    heartbeat_stop = asyncio.Event()
    beating = asyncio.create_task(heartbeat.run(heartbeat_stop))
    stopper = asyncio.create_task(stop.wait())
    _done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down workers (ran %.0fs)", time.monotonic() - started)
    await asyncio.gather(*(w.shutdown() for w in workers_ if w.is_running), return_exceptions=True)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    heartbeat_stop.set()
    await asyncio.gather(beating, return_exceptions=True)
    stopper.cancel()
    executor.shutdown(wait=True)
    for w in workers_:
        pool = w.config().get("workflow_task_executor")
        if pool is not None:
            pool.shutdown(wait=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    # Drop the workers (their cached workflow instances and core handles) here, on the
    # loop, rather than at interpreter exit; frozen objects are never collected, so
    # unfreeze them first.
    del workers_, tasks
    gc.unfreeze()
    gc.collect()
    if errors:
        raise RuntimeError(f"worker failed: {errors[0]}") from errors[0]
    log.info("workers stopped")


def _build(
    app: Flask,
    client: Client,
    identity: str,
    domain_names: Sequence[str],
    task_queue: str | None,
    deployments: dict[str, Any],
) -> tuple[ThreadPoolExecutor, list[Worker], HeartbeatWriter]:
    """One worker per domain sharing one activity thread pool, and the heartbeat writer
    that reports their activity slots."""
    config = app.config
    prefix = config.get("TEMPORAL_TASK_QUEUE_PREFIX", "")
    max_acts = int(config.get("WORKER_MAX_CONCURRENT_ACTIVITIES", 20))
    # The app's database pool is sized from the same number (create_app).
    executor = ThreadPoolExecutor(max_workers=activity_threads(max_acts, len(domain_names)))
    slots = ActivitySlots()
    workers_ = [
        build_worker(
            client,
            name,
            task_queue=task_queue or catalogue.task_queue(name, prefix),
            executor=executor,
            max_concurrent_activities=max_acts,
            extra_interceptors=[slots],
            deployment=deployments[name],
        )
        for name in domain_names
    ]
    heartbeat = HeartbeatWriter(
        app,
        identity=identity,
        task_queues=[w.task_queue for w in workers_],
        build_id=build_id_of(workers_[0]) if workers_ else None,
        slots=slots,
        max_slots=max_acts * len(workers_),
        interval_seconds=int(config.get("WORKER_HEARTBEAT_SECONDS", 15)),
    )
    return executor, workers_, heartbeat


def _log_polling(
    domain_names: Sequence[str], workers_: Sequence[Worker], deployments: dict[str, Any]
) -> None:
    """One line per worker: its task queue and the deployment version it polls as."""
    for name, w in zip(domain_names, workers_, strict=True):
        version = deployments[name]
        log.info(
            "worker polling task queue %s%s",
            w.task_queue,
            f" as {version.version.deployment_name}:{version.version.build_id}"
            if version
            else " (unversioned)",
        )
