"""The gateway's small pieces: reads that may be a few seconds old (refreshed ahead of
their deadline, in the background) and how RPC errors are classed for the breaker."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from temporal_gateway.cache import TTLCache
from temporal_gateway.errors import map_rpc_error
from temporal_gateway.gateway import (
    GatewayError,
    RunInfo,
    RunPage,
    TemporalGateway,
    TemporalTimedOut,
    TemporalUnavailable,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_value_past_half_its_life_is_returned_and_refreshed_once_in_the_background():
    clock, later = Clock(), []
    cache = TTLCache(clock=clock)
    answers = iter(["first", "second", "third"])

    def get() -> str:
        return cache.get_or_compute("k", 4, lambda: next(answers), refresh=later.append)

    assert get() == "first"
    clock.now = 1.0
    assert get() == "first" and later == []  # young: nothing to do
    clock.now = 2.5
    assert get() == "first" and len(later) == 1  # old: still answered, refresh queued
    assert get() == "first" and len(later) == 1  # one refresh per key at a time
    later.pop()()
    clock.now = 3.0
    assert get() == "second" and later == []  # the refreshed value, young again
    clock.now = 20.0
    assert get() == "third"  # past its deadline: computed while the request waits


def test_a_failed_refresh_keeps_the_value_and_allows_the_next_refresh():
    clock, later = Clock(), []
    cache = TTLCache(clock=clock)
    calls = []

    def compute() -> str:
        calls.append(clock.now)
        if len(calls) == 2:
            raise RuntimeError("Temporal hiccup")
        return f"v{len(calls)}"

    def get() -> str:
        return cache.get_or_compute("k", 4, compute, refresh=later.append)

    assert get() == "v1"
    clock.now = 3.0
    assert get() == "v1"
    with pytest.raises(RuntimeError):
        later.pop()()
    assert get() == "v1" and len(later) == 1  # still fresh enough; refresh queued again
    later.pop()()
    assert get() == "v3"


class ListingGateway(TemporalGateway):
    """The real caching path over a stand-in for the RPC itself."""

    def __init__(self) -> None:
        super().__init__({"TEMPORAL_ADDRESS": "127.0.0.1:9"})
        self.rpcs = 0

    def run(self, fn, timeout=None, *, rpc=None):  # type: ignore[override]
        self.rpcs += 1
        info = RunInfo("wf", f"r{self.rpcs}", "T", "Running", "q", None, None, None, 1,
                       None, None, None, None)  # fmt: skip
        return RunPage([info], None)


def test_cached_runs_pages_are_shared_but_each_caller_gets_its_own_list():
    gw = ListingGateway()
    first = gw.list_runs("q", page_size=50, fresh_for=30)
    first.runs.clear()  # a caller sorting or trimming its page
    second = gw.list_runs("q", page_size=50, fresh_for=30)
    assert gw.rpcs == 1 and [r.run_id for r in second.runs] == ["r1"]
    gw.list_runs("q", page_size=25, fresh_for=30)  # another page size: another read
    gw.list_runs("q", page_size=50)  # no fresh_for: always read
    assert gw.rpcs == 3
    gw.close()


def test_timeouts_and_refusals_are_told_apart_for_the_breaker():
    timed_out = map_rpc_error(RPCError("Timeout expired", RPCStatusCode.CANCELLED, b""))
    deadline = map_rpc_error(RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b""))
    refused = map_rpc_error(RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""))
    cancelled = map_rpc_error(RPCError("by the caller", RPCStatusCode.CANCELLED, b""))
    assert isinstance(timed_out, TemporalTimedOut) and isinstance(deadline, TemporalTimedOut)
    assert isinstance(refused, TemporalUnavailable) and not isinstance(refused, TemporalTimedOut)
    assert type(cancelled) is GatewayError
