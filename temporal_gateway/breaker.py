"""The gateway's circuit breaker: once Temporal is known to be unreachable, calls fail at
once instead of each waiting for its own timeout.

It opens on a refused or failed connection, or on a call that ran into its deadline
followed by a short probe that got no answer either (so a hung server, which accepts
connections and answers nothing, looks the same as a stopped one). Opening it releases
every call still waiting. While it is open, a task on the gateway's event loop probes the
server every `every` seconds; the first answered probe closes it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

log = logging.getLogger("estuary.gateway")


class CircuitBreaker:
    """Whether Temporal is known to be unreachable from this process, and since when.

    `probe` is a coroutine function answering whether the server answers a cheap call
    within a short deadline; it runs on the gateway's loop."""

    def __init__(self, probe: Callable[[], Awaitable[bool]], *, every: float, address: str):
        self.every = every
        self._probe = probe
        self._address = address
        self._lock = threading.Lock()
        self._down: tuple[str, datetime] | None = None
        self._waiting: set[concurrent.futures.Future] = set()
        self._confirming: concurrent.futures.Future | None = None
        self._prober: asyncio.Task | None = None

    def message(self) -> str | None:
        """Why Temporal is known to be unreachable, or None while it is not."""
        down = self._down
        if down is None:
            return None
        reason, since = down
        return (
            f"{reason} (unreachable since {since:%H:%M:%S} UTC; "
            f"checked again every {self.every:g} s)"
        )

    @contextlib.contextmanager
    def waiting(self, future: concurrent.futures.Future) -> Iterator[None]:
        """While a caller waits for `future`: opening the breaker cancels it."""
        with self._lock:
            self._waiting.add(future)
        try:
            yield
        finally:
            with self._lock:
                self._waiting.discard(future)

    def open(self, reason: str, loop: asyncio.AbstractEventLoop | None) -> None:
        """Temporal is unreachable: release every waiting call, probe in the background."""
        with self._lock:
            if self._down is not None:
                return
            self._down = (reason, datetime.now(UTC))
            waiting = list(self._waiting)
        log.warning("Temporal unreachable, console calls fail fast until it answers: %s", reason)
        for future in waiting:
            future.cancel()
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._start_prober)

    def confirm(self, reason: str, loop: asyncio.AbstractEventLoop, limit: float) -> bool:
        """After a call timed out: probe the server once (callers timing out together
        share the probe). True, with the breaker open, when the probe fails as well."""
        with self._lock:
            probe = self._confirming
            if probe is None:
                probe = asyncio.run_coroutine_threadsafe(self._probe(), loop)
                self._confirming = probe
        try:
            answered = probe.result(limit)
        except (TimeoutError, concurrent.futures.CancelledError):
            answered = False
        finally:
            with self._lock:
                if self._confirming is probe:
                    self._confirming = None
        if not answered:
            self.open(reason, loop)
        return not answered

    async def stop(self) -> None:
        """End the background probing (on the loop, before it stops). A probe inside a
        first connection may finish its connect timeout before it sees the cancel: wait
        for that a little, never for long (the gateway is closing)."""
        prober, self._prober = self._prober, None
        if prober is not None and not prober.done():
            prober.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({prober}, timeout=2)

    def _close(self) -> None:
        with self._lock:
            was_down, self._down = self._down, None
        if was_down is not None:
            log.warning("Temporal answers again (%s)", self._address)

    def _start_prober(self) -> None:  # on the loop
        if self._prober is None or self._prober.done():
            self._prober = asyncio.get_running_loop().create_task(self._probe_until_up())

    async def _probe_until_up(self) -> None:
        while self._down is not None:
            await asyncio.sleep(self.every)
            if await self._probe():
                self._close()
