"""A workflow task interrupted by the SDK's deadlock detection must not leave a log lock
held (docs/observability.md, "Logs from workflow threads").

The SDK runs each workflow activation in a thread and, when it does not yield within 2 s,
raises an exception into that thread. If the thread was waiting for the log handler's lock
(another thread writing a line), the exception lands just after it gets the lock, before
the handler's try/finally: the lock stays held and every later log call in the worker
blocks. Here a thread holds the handler's lock for longer than the deadlock timeout while
a payout starts (its first activation logs "workflow start")."""

from __future__ import annotations

import asyncio
import logging
import threading

from estuary.logs import EstuaryLogHandler
from tests.conftest import running_workers
from tests.payments.helpers import payout_input, start_payout

DEADLOCK_TIMEOUT_S = 2  # the SDK's, fixed outside debug mode


def _root_handler() -> EstuaryLogHandler:
    return next(h for h in logging.getLogger().handlers if isinstance(h, EstuaryLogHandler))


def _lock_is_free(handler: logging.Handler, timeout: float) -> bool:
    """Whether a fresh thread gets the handler's lock within `timeout` seconds."""
    got: list[bool] = []

    def probe() -> None:
        ok = handler.lock.acquire(timeout=timeout)
        if ok:
            handler.lock.release()
        got.append(ok)

    t = threading.Thread(target=probe)
    t.start()
    t.join(timeout + 1)
    return got == [True]


async def test_a_payout_started_while_the_log_lock_is_busy_completes_and_frees_it(
    app, money, time_env, caplog
):
    caplog.set_level(logging.INFO)
    handler = _root_handler()
    pid = money.practitioner(balance=3_000)
    held = threading.Event()

    def hold_lock() -> None:
        # Longer than the deadlock timeout: a workflow thread waiting for this lock is
        # interrupted before it gets it.
        with handler.lock:
            held.set()
            threading.Event().wait(DEADLOCK_TIMEOUT_S + 1.5)

    holder = threading.Thread(target=hold_lock)
    async with running_workers(time_env.client, app, ["payments"]) as prefix:
        holder.start()
        held.wait(5)
        handle = await start_payout(time_env.client, prefix, payout_input(pid))
        await asyncio.to_thread(holder.join, 10)
        assert _lock_is_free(handler, timeout=5), "a log lock stayed held"
        result = await asyncio.wait_for(handle.result(), timeout=60)
    assert result.status == "paid"
    deadlocks = [r for r in caplog.records if "TMPRL1101" in r.getMessage()]
    assert deadlocks == []
