"""The sandbox runner, without the per-payload context question when no converter asks.

Before and after every workflow activation the SDK walks its payloads six times (codec,
external storage and references, each way), and for every payload sequence it asks the
workflow instance which serialization context applies (the workflow's, or an activity's
for a scheduled activity). The sandboxed instance answers by compiling and executing a
small piece of code inside the sandbox (`exec` of a string, with the sandbox's modules
and import hook swapped in): about 40 µs a question. In a payout that was 10-11 % of the
payments worker's busy time (py-spy, 1,000 payouts, 2026-12-02).

The answer only matters to converters that use a context: a payload converter, failure
converter or codec that implements `WithSerializationContext` (one that signs payloads
with the workflow id, say), or external payload storage. `DataConverter.with_context`
returns the converter itself when none of its parts does. So for such a converter this
runner's instances answer "no context" (the SDK then uses the worker's converter as it
is, which is what the context would have given) and say where external storage would go
without entering the sandbox; everything else (activations, the workflow's info, its
thread) is the sandboxed instance's. A converter that does use a context gets the SDK's
runner unchanged (`workflow_runner`), so nothing is lost if one is configured later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import temporalio.workflow
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
    WorkflowSerializationContext,
)
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner

# One context of each kind the SDK gives a workflow's payloads.
_SAMPLE_CONTEXTS: tuple[SerializationContext, ...] = (
    WorkflowSerializationContext(namespace="default", workflow_id="sample"),
    ActivitySerializationContext(
        namespace="default",
        workflow_id="sample",
        workflow_type="Sample",
        activity_id="1",
        activity_type="sample",
        activity_task_queue="sample",
        is_local=False,
    ),
)


def uses_serialization_context(converter: DataConverter) -> bool:
    """True if a context can change what `converter` does: a part of it takes one
    (`with_context` gives another converter), or payloads may be stored outside."""
    if converter.external_storage is not None:
        return True
    return any(converter.with_context(context) is not converter for context in _SAMPLE_CONTEXTS)


class ContextFreeInstance(WorkflowInstance):
    """A workflow instance of another runner, answering the context questions itself."""

    def __init__(self, inner: WorkflowInstance) -> None:
        self.inner = inner

    def activate(self, act: Any) -> Any:
        return self.inner.activate(act)

    def get_info(self) -> temporalio.workflow.Info:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        # None: the worker's converter as it is, the same converter any context gives.
        return None

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        # Only asked for when there is no external storage (see ContextFreeRunner), where
        # the target is not used: the current run, as the SDK gives for most commands.
        info = self.inner.get_info()
        return StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id,
                run_id=info.run_id,
                type=info.workflow_type,
                namespace=info.namespace,
            )
        )


class ContextFreeRunner(WorkflowRunner):
    """`inner` (the sandbox), with instances that answer the context questions for a
    converter that uses no context (check with `uses_serialization_context`)."""

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner

    def prepare_workflow(self, defn: Any) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return ContextFreeInstance(self.inner.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)
