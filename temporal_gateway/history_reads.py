"""Reading a run's event history through the gateway: forward pages, a streamed read of
the whole history, the newest events read from the end, and JSON-ready pages.

`HistoryReads` is a part of `TemporalGateway` (`temporal_gateway.gateway`): its methods
use the gateway's `run`, so every read goes through the same loop, circuit breaker,
error mapping and metrics as the rest.
"""

from __future__ import annotations

import concurrent.futures
import queue
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from google.protobuf import json_format
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from temporal_gateway.codec import decode_in_place
from temporal_gateway.gateway_part import GatewayPart
from temporal_gateway.records import HistoryPage

# Threads that wait for a gateway call whose results arrive in parts (`history_pages`),
# and that refresh cached reads in the background.
background_threads = concurrent.futures.ThreadPoolExecutor(
    max_workers=8, thread_name_prefix="gateway-stream"
)


async def decode_history_events(client: Client, events: list[Any]) -> None:
    """Decrypt the payloads of raw history events (or other raw messages, such as pending
    activities) in place with the client's codec.

    Raw messages are what the console shows (timeline, event JSON, downloads, pending
    activities); the SDK only decodes values it converts itself, so without this staff
    would see ciphertext.
    """
    await decode_in_place(events, client.data_converter.payload_codec)


async def _forward_page(
    client: Client,
    workflow_id: str,
    run_id: str,
    *,
    page_size: int,
    token: bytes,
    timeout: timedelta,
) -> tuple[list[Any], bytes]:
    """One forward page of history events, payloads decoded, and the next page's token."""
    response = await client.workflow_service.get_workflow_execution_history(
        GetWorkflowExecutionHistoryRequest(
            namespace=client.namespace,
            execution={"workflow_id": workflow_id, "run_id": run_id},
            maximum_page_size=page_size,
            next_page_token=token,
        ),
        timeout=timeout,
    )
    events = list(response.history.events)
    await decode_history_events(client, events)
    return events, response.next_page_token


class HistoryReads(GatewayPart):
    """The history-reading methods of `TemporalGateway`."""

    def history_events(
        self,
        workflow_id: str,
        run_id: str,
        *,
        next_page_token: bytes = b"",
        page_size: int = 1000,
    ) -> tuple[list[Any], bytes]:
        """One page of history events (protobuf, payloads decoded) and the next page's token."""

        async def call(client: Client) -> tuple[list[Any], bytes]:
            return await _forward_page(
                client,
                workflow_id,
                run_id,
                page_size=page_size,
                token=next_page_token,
                timeout=self.rpc_timeout(),
            )

        return self.run(call)

    def history_pages(
        self,
        workflow_id: str,
        run_id: str,
        *,
        page_size: int = 1000,
        until_event_id: int | None = None,
    ) -> Iterator[list[Any]]:
        """The history from its start (to its end, or to the page holding
        `until_event_id`), page by page as protobuf events with payloads decoded.

        The pages are read on the gateway's loop one after the other as fast as the
        server answers, while the caller works on the ones already here: no thread
        hand-off per page (with `history_events` in a loop, each page waits for the
        caller to ask for it). One gateway call, counted once in the metrics.
        """
        pages: queue.Queue[list[Any] | None] = queue.Queue()

        async def call(client: Client) -> None:
            token = b""
            while True:
                events, token = await _forward_page(
                    client,
                    workflow_id,
                    run_id,
                    page_size=page_size,
                    token=token,
                    timeout=self.rpc_timeout(),
                )
                pages.put(events)
                if not token or not events:
                    return
                if until_event_id is not None and events[-1].event_id >= until_event_id:
                    return

        reading = background_threads.submit(self.run, call, self.timeout * 3)
        # The last word, however the reading ended (done, failed, refused by the breaker).
        reading.add_done_callback(lambda _: pages.put(None))
        while (page := pages.get()) is not None:
            yield page
        reading.result()  # raises the gateway error that ended the reading, if any

    def newest_history_events(
        self, workflow_id: str, run_id: str, *, after_event_id: int, expected: int
    ) -> list[Any] | None:
        """The events after `after_event_id`, oldest first, read newest first from the end.

        A run's live view knows from `describe` how many events it has not seen (`expected`),
        so one reverse page usually holds them all. None when the server has no reverse
        history (the time-skipping test server): the caller reads forward instead.
        """

        async def call(client: Client) -> list[Any] | None:
            found: list[Any] = []
            token = b""
            while True:
                try:
                    response = await client.workflow_service.get_workflow_execution_history_reverse(
                        GetWorkflowExecutionHistoryReverseRequest(
                            namespace=client.namespace,
                            execution={"workflow_id": workflow_id, "run_id": run_id},
                            maximum_page_size=max(1, min(expected, 1000)),
                            next_page_token=token,
                        ),
                        timeout=self.rpc_timeout(),
                    )
                except RPCError as exc:
                    if exc.status == RPCStatusCode.UNIMPLEMENTED:
                        return None
                    raise
                batch = list(response.history.events)
                found.extend(e for e in batch if e.event_id > after_event_id)
                token = response.next_page_token
                if not token or not batch or batch[-1].event_id <= after_event_id + 1:
                    break
            found.sort(key=lambda e: e.event_id)
            await decode_history_events(client, found)
            return found

        return self.run(call)

    def history_page(
        self,
        workflow_id: str,
        run_id: str | None = None,
        *,
        page_size: int = 1000,
        next_page_token: bytes | None = None,
    ) -> HistoryPage:
        """One page of raw history events as JSON-ready dicts."""

        async def call(client: Client) -> HistoryPage:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            it = handle.fetch_history_events(
                page_size=page_size,
                next_page_token=next_page_token,
                rpc_timeout=self.rpc_timeout(),
            )
            await it.fetch_next_page()
            page = list(it.current_page or [])
            await decode_history_events(client, page)
            events = [json_format.MessageToDict(e) for e in page]
            return HistoryPage(events, it.next_page_token)

        return self.run(call, timeout=self.timeout * 3)
