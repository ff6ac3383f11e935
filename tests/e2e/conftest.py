"""Browser tests: a live console (werkzeug server thread), real workers (own thread and
event loop) and the Temporal dev server (`local_env`), driven by Playwright with
Debian's /usr/bin/chromium (never `playwright install`).

`live_stack` is package-scoped: one console, one set of workers for all browser tests.
Each test makes its own staff users and data (unique emails) so tests do not depend on
each other's state.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from flask import Flask
from temporalio.client import Client
from werkzeug.serving import make_server

from config import TestingConfig
from estuary.db import db
from estuary.models import StaffUser
from estuary_ops import create_app
from tests.conftest import _reset_database, gateway_for
from workers.temporal import registry
from workers.temporal.base_activities import bind_app, bind_client
from workers.temporal.worker import build_worker

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.e2e


@dataclass
class LiveStack:
    app: Flask
    base_url: str
    prefix: str
    temporal_address: str

    def make_staff(self, role: str, name: str | None = None) -> StaffUser:
        """A new staff user with PASSWORD and a unique email."""
        with self.app.app_context():
            user = StaffUser(
                email=f"{role}-{uuid.uuid4().hex[:8]}@e2e.local",
                name=name or f"E2E {role.title()}",
                role=role,
            )
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user


class _WorkerThread(threading.Thread):
    """All domain workers on their own event loop, stopped at the end of the package."""

    def __init__(self, app: Flask, address: str, namespace: str, prefix: str) -> None:
        super().__init__(name="e2e-workers", daemon=True)
        self.app, self.address, self.namespace, self.prefix = app, address, namespace, prefix
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.loop = asyncio.new_event_loop()
        self._stop_event: asyncio.Event | None = None

    def run(self) -> None:
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to the fixture
            self.error = exc
            self.ready.set()
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        client = await Client.connect(self.address, namespace=self.namespace)
        bind_app(self.app)
        bind_client(client)
        domains = list(registry.domains())
        executor = ThreadPoolExecutor(max_workers=20 * len(domains))
        workers = [
            build_worker(client, d, task_queue=f"{self.prefix}{d}", executor=executor)
            for d in domains
        ]
        tasks = [asyncio.create_task(w.run()) for w in workers]
        self.ready.set()
        await self._stop_event.wait()
        await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
        executor.shutdown(wait=False)

    def stop(self) -> None:
        if self._stop_event is not None:
            self.loop.call_soon_threadsafe(self._stop_event.set)
        self.join(timeout=30)


@pytest.fixture(scope="package")
def live_stack(local_env, database_url: str) -> Iterator[LiveStack]:
    prefix = f"e2e{uuid.uuid4().hex[:6]}-"
    app = create_app(
        TestingConfig,
        SQLALCHEMY_DATABASE_URI=database_url,
        TEMPORAL_TASK_QUEUE_PREFIX=prefix,
        WTF_CSRF_ENABLED=True,
    )
    with app.app_context():
        _reset_database(database_url)
    address = local_env.client.service_client.config.target_host
    gateway_for(app, local_env, prefix)
    workers = _WorkerThread(app, address, local_env.client.namespace, prefix)
    workers.start()
    workers.ready.wait(30)
    if workers.error:
        raise workers.error
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-console", daemon=True)
    thread.start()
    yield LiveStack(app, f"http://127.0.0.1:{server.server_port}", prefix, address)
    server.shutdown()
    workers.stop()
    app.extensions["temporal"].close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture(scope="package")
def browser():
    if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser, live_stack):
    context = browser.new_context(
        base_url=live_stack.base_url, viewport={"width": 1366, "height": 800}
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def sign_in(page, user: StaffUser, password: str = PASSWORD) -> None:
    page.goto("/auth/login")
    page.fill("input[name=email]", user.email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/auth/login" not in url)


# The page has loaded and htmx has nothing under way: every part it loads right after the
# page (`hx-trigger="load"`, the home page's chart) has been asked for, and no request,
# swap or settle is in flight (a poll that happens to be on its way is waited for too).
SETTLED = """() => document.readyState === 'complete'
  && !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')
  && Array.from(document.querySelectorAll('[hx-trigger]')).every(el =>
       !/(^|,)\\s*load(\\s|,|$)/.test(el.getAttribute('hx-trigger'))
       || (el['htmx-internal-data'] || {}).loaded)"""


def settle(page, timeout_ms: int = 10_000) -> None:
    """Wait until htmx has loaded what a page loads after itself (charts); polls come
    later and only refresh what is there. This waits on htmx's own state, not for the
    network to be quiet for 500 ms (networkidle), which every page view paid."""
    page.wait_for_function(SETTLED, timeout=timeout_ms)
