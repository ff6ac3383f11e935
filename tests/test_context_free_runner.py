"""The workers' runner skips the sandbox's per-payload serialization-context question only
for converters that use no context (workers/temporal/context_free.py). Every workflow test
of the suite runs through it (`build_worker`); these pin when it applies."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import SimpleNamespace

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from temporal_gateway.codec import data_converter, new_key_entry
from workers.temporal import context_free
from workers.temporal.worker import workflow_runner


class SigningCodec(PayloadCodec, WithSerializationContext):
    """A codec that would sign payloads with the workflow id: it needs the context."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        self.context = context

    def with_context(self, context: SerializationContext) -> SigningCodec:
        return SigningCodec(context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def test_our_converters_use_no_context_and_get_the_context_free_runner():
    for converter in (data_converter({}), data_converter({"PAYLOAD_KEYS": new_key_entry("k")})):
        assert not context_free.uses_serialization_context(converter)
        runner = workflow_runner(converter)
        assert isinstance(runner, context_free.ContextFreeRunner)
        assert isinstance(runner.inner, SandboxedWorkflowRunner)


def test_a_converter_that_takes_a_context_keeps_the_sdk_runner():
    signing = dataclasses.replace(DataConverter.default, payload_codec=SigningCodec())
    assert context_free.uses_serialization_context(signing)
    assert type(workflow_runner(signing)) is SandboxedWorkflowRunner
    # Without a converter to look at (the replay test), the sandbox as it is.
    assert type(workflow_runner()) is SandboxedWorkflowRunner


def test_the_instance_is_the_sandboxed_one_apart_from_the_context_answers():
    info = SimpleNamespace(
        workflow_id="payments-payout-7", run_id="r1", workflow_type="Payout", namespace="ns"
    )
    calls: list[str] = []

    class Inner:
        def activate(self, act):
            calls.append("activate")
            return ("done", act)

        def get_info(self):
            return info

        def get_thread_id(self):
            return 42

        def get_serialization_context(self, command_info):  # never asked
            raise AssertionError("the sandbox was asked for a context")

        def get_external_store_context(self, command_info):  # never asked
            raise AssertionError("the sandbox was asked for a store context")

    instance = context_free.ContextFreeInstance(Inner())  # type: ignore[arg-type]
    assert instance.activate("act") == ("done", "act") and calls == ["activate"]
    assert instance.get_info() is info and instance.get_thread_id() == 42
    assert instance.get_serialization_context(None) is None
    target = instance.get_external_store_context(None).target
    assert (target.id, target.run_id, target.type, target.namespace) == (
        "payments-payout-7",
        "r1",
        "Payout",
        "ns",
    )
